"""The state and the manager thread behind one :class:`ProcessExecutor`.

Each worker has its own pipe and runs one task at a time, so the pool always
knows which task a worker holds: that is what makes crash isolation, killing
time-outs and stopping abandoned tasks possible::

    submit() -> Task (pickled once) -> pending --(an idle worker)--> send
    manager thread (its steps in _manager.py): select(pipes, exit sentinels,
    wake-up; next deadline)
        REPLY/CHUNK  -> the task's Future (after the task's output is written)
        OUTPUT/LOG   -> OutputRelay
        exit         -> the worker's task fails (WorkerCrashedError); a chunk
                        keeps the values in its result log; a new worker starts
        deadline     -> the worker is killed (TaskTimeoutError)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import selectors
import sys
import threading
import weakref
from collections import deque
from concurrent.futures._base import RUNNING
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from .._base import SHUTDOWN_MESSAGE
from .._checks import deadline_after
from .._exit import ExitRegistry
from .._forked import forget_children
from .._starting import HelperThread, join_launched
from . import _worker
from ._launch import InheritedFd, WorkerContext
from ._manager import ManagerSteps
from ._outcomes import stopper
from ._output import OutputRelay
from ._records import UNSENT, ResultLog, Task, WorkerRecord

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from .._stats import WorkerFigures

__all__ = ["Pool", "registry"]


def _on_event_loop() -> bool:
    """Whether this thread runs an asyncio or trio event loop just now."""
    if asyncio._get_running_loop() is not None:
        return True
    # Only a trio already imported can run here (and one still being imported
    # by another thread may have no lowlevel yet).
    lowlevel = getattr(sys.modules.get("trio"), "lowlevel", None)
    in_trio_task = getattr(lowlevel, "in_trio_task", None)
    return in_trio_task is not None and bool(in_trio_task())


def _shut_down_pools(live: list[tuple[Pool, Any]]) -> None:
    for pool, _ in live:
        pool.shutdown(wait=True)


#: The pool whose worker this thread is starting (its ``fork`` child is that
#: worker, which keeps its end of the lifeline).
_starting = threading.local()


def _forsake_pools(live: list[Pool]) -> None:
    for pool in live:
        pool.forsake(as_worker=pool is getattr(_starting, "pool", None))


#: Live pools: shut down (waiting for their tasks) at interpreter exit, and
#: forsaken in a forked child.
registry: ExitRegistry[Pool] = ExitRegistry(_shut_down_pools, _forsake_pools)


class Pool(ManagerSteps):
    """Workers, pending tasks and the manager thread of one process executor."""

    def __init__(
        self,
        max_workers: int,
        context: Any,  # a BaseContext; typeshed's lacks Process and Pipe
        settings: dict[str, Any],
    ) -> None:
        self.max_workers = max_workers
        self.context = context
        self.settings = settings
        self.lock = threading.Lock()
        self.workers: list[WorkerRecord] = []
        self.idle: list[WorkerRecord] = []
        self.new: list[WorkerRecord] = []  # started, not yet watched by the manager
        self.pending: deque[Task] = deque()
        self.expired: list[Task] = []  # no time left as they start: see _fail_expired
        # The main thread's hand-over under way, and whether a signal handler's
        # error cut it short (see _feed_idle, ManagerSteps._repair).
        self.handing: tuple[WorkerRecord, Task] | None = None
        self.interrupted = False
        self.ids = itertools.count(1)
        self.numbers = itertools.count()
        self.shutting_down = False
        self.broken: str | None = None
        self.closed = False
        self.started = self.replaced = self.lost = 0  # worker counts
        self.wake_lock = threading.Lock()  # guards the wake-up pipe and `closed`
        self.manager: threading.Thread | None = None
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.lifeline_r, self.lifeline_w = context.Pipe(duplex=False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.relay = OutputRelay(f"ProcessExecutor-{id(self):#x}")
        self._ref = weakref.ref(self)
        registry.add(self)

    # -- called from any thread ---------------------------------------------------

    def wake(self) -> None:
        """Make the manager look at the pool again."""
        with self.wake_lock:
            # After _close() the descriptor number may belong to someone else.
            if self.closed:
                return
            try:
                os.write(self.wake_w, b"\0")
            except OSError:  # full: a wake-up is already pending
                pass

    def submit(self, task: Task) -> None:
        """Queue ``task``; start a worker for it if none is idle."""
        with self.lock:
            if self.broken:
                raise BrokenProcessPool(self.broken)
            if self.shutting_down:  # stopped by terminate()
                raise RuntimeError(SHUTDOWN_MESSAGE)
            task.id = next(self.ids)
            task.queued = True  # right before: see ProcessExecutor._undo_submit
            self.pending.append(task)
            spawn = not self.idle and len(self.workers) < self.max_workers
            if spawn and _on_event_loop():
                # A start would hold up the loop (the fork server's first, about
                # 150 ms): the manager's next step starts the worker instead.
                spawn = False
                self.wake()
            if spawn:
                self._start_worker()
            if self.manager is None:
                manager = HelperThread(
                    target=self._manage, name=f"ProcessExecutor-manager-{id(self):#x}"
                )
                manager.start()  # may fail (no thread left): then no manager is set
                self.manager = manager
            elif spawn:
                self.wake()
        self._feed_idle()

    def shutdown(self, wait: bool, cancel_futures: bool = False) -> None:
        """Stop after the accepted tasks (or cancel the pending ones)."""
        with self.lock:
            self.shutting_down = True
            cancelled: deque[Task] = deque()
            if cancel_futures:
                cancelled, self.pending = self.pending, deque()
            manager = self.manager
        for task in cancelled:
            task.future.cancel()
        if manager is None:
            self._close()
            return
        self.wake()
        if wait:
            self.join_manager()

    def join_manager(self) -> None:
        """Wait until the manager thread has ended (it closes the pool).

        On an event of its own (a :class:`HelperThread`'s), then ``join()``:
        before 3.13 a Ctrl-C that lands in ``Thread.join()`` leaves the thread
        taken for ended while it still runs, and every later join returns at
        once, the interpreter's at exit included, which then ends the pool half
        closed.
        """
        manager = self.manager
        if manager is not None and manager is not threading.current_thread():
            join_launched(manager)

    def terminate(self) -> None:
        """Stop now: cancel everything and kill the workers (after Ctrl-C)."""
        with self.lock:
            self.shutting_down = True
            tasks = list(self.pending)
            self.pending.clear()
            for worker in self.workers:
                worker.killing = True
                if worker.task is not None:
                    tasks.append(worker.task)
        for task in tasks:
            task.future._abandon()
        self.wake()

    def signal_workers(self, kill: bool) -> None:
        """Send every live worker SIGKILL (or SIGTERM); their tasks fail."""
        with self.lock:
            processes = [worker.process for worker in self.workers]
        for process in processes:
            with contextlib.suppress(OSError, ValueError):
                if process.exitcode is None:
                    process.kill() if kill else process.terminate()

    def figures(self) -> WorkerFigures:
        """Workers alive, started, started as replacements, and their clocks."""
        with self.lock:
            workers = [w for w in self.workers if not w.killing]
            return (
                len(workers),
                self.started,
                self.replaced,
                tuple(w.clock.read() for w in workers),
            )

    def processes(self) -> dict[int, BaseProcess]:
        """The live worker processes by pid."""
        with self.lock:
            return {w.process.pid: w.process for w in self.workers if w.process.pid}

    def forsake(self, as_worker: bool = False) -> None:
        """In a forked child: close this process's copies of the parent's pipes
        (the parent's workers see the parent die once every copy of their
        lifeline is closed) and never use the pool again. Its workers, their
        result logs and its manager stay the parent's. In one of its workers
        (the ``fork`` start method) the lifeline's end it watches stays open."""
        if not as_worker:
            self.lifeline_r.close()  # (closing a closed one does nothing)
        self.lifeline_w.close()
        for worker in self.workers:
            worker.conn.close()
        forget_children([worker.process.pid for worker in self.workers])
        if self.closed:  # by the parent, as the fork came
            return
        self.closed = True  # wake() writes nothing from now on
        self.selector.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def copy(self) -> Pool:
        """A new pool with the same settings, no worker started."""
        return Pool(self.max_workers, self.context, self.settings)

    # -- dispatch -----------------------------------------------------------------

    def _start_worker(self) -> None:
        """Start one worker process (lock held); the manager will watch it."""
        parent_conn, child_conn = self.context.Pipe(duplex=True)
        ours = isinstance(self.context, WorkerContext)
        log = ResultLog(anonymous=ours)  # ours take a descriptor as they start
        stdio = None
        if ours:
            # Its fork server's descriptors may be older than the caller's.
            stdio = (InheritedFd(1), InheritedFd(2))
        settings = _worker.WorkerSettings(
            log=log.path if log.path is not None else InheritedFd(log.fd),
            stdio=stdio,
            **self.settings,
        )
        process = self.context.Process(
            target=_worker.worker_main,
            # initargs travel as process arguments, pickled while spawning, so
            # that multiprocessing queues, locks and values work as in the stdlib.
            args=(child_conn, self.lifeline_r, settings),
        )
        _starting.pool = self
        try:
            process.start()
        except BaseException:
            log.close()
            parent_conn.close()
            raise
        finally:
            _starting.pool = None
            child_conn.close()
            log.started()
        worker = WorkerRecord(next(self.numbers), process, parent_conn, log)
        self.started += 1
        if self.lost:  # it takes the place of one that died
            self.lost -= 1
            self.replaced += 1
        self.workers.append(worker)
        self.idle.append(worker)
        self.new.append(worker)

    def _next_assignment(self, main: bool) -> tuple[WorkerRecord, Task] | None:
        """Pair an idle worker with a pending task (lock held). In the main
        thread (``main``), which a signal handler may interrupt anywhere, the
        pair is recorded before anything changes (see ManagerSteps._repair)."""
        while self.idle and self.pending:
            task, worker = self.pending[0], self.idle[-1]
            if main:
                self.handing = (worker, task)
                worker.sending = UNSENT
            # Running already: a hand-over that a signal handler cut short.
            if not (
                task.future._state == RUNNING
                or task.future._start(stopper(self._ref, task.id))
            ):
                self.pending.popleft()
                continue
            if task.timeout is not None and task.timeout <= 0:
                self.expired.append(task)  # first: failed, if not taken
                self.pending.popleft()
                continue
            task.deadline = deadline_after(task.timeout)
            worker.task = task
            self.idle.pop()
            self.pending.popleft()
            worker.clock.begin()
            return worker, task
        return None

    def _feed_idle(self) -> None:
        """Send pending tasks to idle workers.

        A signal handler's error (Ctrl-C) in the main thread, which submits,
        can cut a hand-over anywhere: the manager (or the main thread's next
        feed) then finishes it (ManagerSteps._repair).
        """
        main = threading.current_thread() is threading.main_thread()
        try:
            if self.interrupted:
                self._repair()
            while True:
                with self.lock:
                    assignment = self._next_assignment(main)
                    expired = bool(self.expired)
                if assignment is None:
                    if main:
                        self.handing = None  # a cancelled task's, say
                    if expired:
                        self.wake()
                    return
                worker, task = assignment
                if task.deadline is not None and threading.current_thread() is not (
                    self.manager
                ):
                    self.wake()  # the manager must watch the new deadline
                try:
                    worker.send(task)
                except OSError:
                    pass  # the worker died: its sentinel tells the manager
                if main:
                    self.handing = None  # it went: nothing to hold on to
        except BaseException:
            if main:
                self.interrupted = True
                self.wake()
            raise

    # -- the manager thread (its steps: _manager.py) -----------------------------

    def _manage(self) -> None:
        try:
            while not self._step():
                pass
        except BaseException as exc:
            # A bug here must not leave futures waiting forever: fail them all.
            self._break(f"the process pool's manager thread failed: {exc!r}")
            raise
        finally:
            self._close()

    def _close(self) -> None:
        """Stop every worker and release the pipes (manager thread, at the end)."""
        with self.lock:
            workers, self.workers, self.idle = self.workers, [], []
        for worker in workers:
            if worker.killing or worker.task is not None:
                worker.process.kill()
            else:
                with contextlib.suppress(OSError):
                    worker.conn.send_bytes(b"")
        for worker in workers:
            worker.process.join(5)
            if worker.process.exitcode is None:
                worker.process.kill()
                worker.process.join()
            self._receive(worker)  # output it sent before it exited
            worker.conn.close()
            worker.log.close()
        self._fail_expired()
        for task in self.pending:
            task.future._set_exception_if_pending(
                BrokenProcessPool(self.broken or "the process pool was closed")
            )
        self.relay.close()
        with self.wake_lock:
            if self.closed:
                return
            # Later wake() calls must not write to a number that may be reused.
            self.closed = True
            self.selector.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
        self.lifeline_r.close()
        self.lifeline_w.close()
        registry.discard(self)
