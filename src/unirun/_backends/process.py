"""ProcessExecutor: a drop-in for ``ProcessPoolExecutor`` that survives its workers.

Data flow::

    submit() --cloudpickle--> task ---------------------+
       | (an idle worker: send now)                      | (none idle: pending)
       v                                                 v
    worker.conn ==pipe==> worker process          pending deque
       ^                      | reply                    |
       |                      v                          |
    manager thread <== wait(conns, sentinels, wake-up, next deadline)
       sets the Future; sends the worker its next pending task;
       a dead worker fails only its own task (WorkerCrashedError) and is replaced;
       a task past its time-out has its worker killed (TaskTimeoutError).

Each worker has its own pipe and runs one task at a time, so the parent always
knows which task a worker holds: that is what makes crash isolation, killing
time-outs and stopping abandoned tasks possible.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import weakref
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._base import SHUTDOWN_MESSAGE, BaseExecutor
from .._checks import check_initializer, check_size, deadline_after, wait_time
from .._cpu import usable_cpus
from .._errors import TransferError, WorkerCrashedError, task_timed_out
from .._exit import ExitRegistry
from .._future import Future
from .._sync import sending_to
from .._transfer import decode_exception, dumps_call
from . import _worker

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.context import BaseContext

    from .._future import Stopper
    from .._options import TaskOptions

__all__ = ["ProcessExecutor", "default_context"]


def _shut_down_pools(live: list[tuple[_Pool, Any]]) -> None:
    for pool, _ in live:
        pool.shutdown(wait=True)


#: Live pools: shut down (waiting for their tasks) at interpreter exit.
_registry: ExitRegistry[_Pool] = ExitRegistry(_shut_down_pools)


def default_context() -> BaseContext:
    """Return the start method used when ``mp_context`` is not given.

    ``forkserver`` where the platform has it (Linux and most Unixes): it is safe
    when the parent has threads, unlike ``fork``, and starts workers much faster
    than ``spawn``; Python 3.14 made the same choice for ``ProcessPoolExecutor``.
    ``spawn`` elsewhere (Windows, macOS).
    """
    if (
        sys.platform != "darwin"
        and "forkserver" in multiprocessing.get_all_start_methods()
    ):
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def describe_exit(exitcode: int | None) -> str:
    """Say in words how a worker process ended."""
    if exitcode is None:
        return "an unknown cause"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"signal {name}"
    return f"exit code {exitcode}"


class _Task:
    __slots__ = ("deadline", "future", "id", "payload", "timeout")

    def __init__(
        self, task_id: int, future: Future[Any], payload: bytes, timeout: float | None
    ) -> None:
        self.id = task_id
        self.future = future
        self.payload = payload
        self.timeout = timeout
        self.deadline: float | None = None


class _Worker:
    __slots__ = ("conn", "done", "killing", "process", "task")

    def __init__(
        self, process: multiprocessing.process.BaseProcess, conn: Connection
    ) -> None:
        self.process = process
        self.conn = conn
        self.task: _Task | None = None
        self.done = 0
        self.killing = False


class _Pool:
    """The state and manager thread behind one ProcessExecutor."""

    def __init__(
        self,
        max_workers: int,
        context: Any,  # a BaseContext; typeshed's lacks Process and Pipe
        initializer: bytes | None,
        initargs: tuple[Any, ...],
        max_tasks_per_child: int | None,
    ) -> None:
        self.max_workers = max_workers
        self.context = context
        self.initializer = initializer
        self.initargs = initargs
        self.max_tasks = max_tasks_per_child
        self.lock = threading.Lock()
        self.workers: list[_Worker] = []
        self.idle: list[_Worker] = []
        self.pending: deque[_Task] = deque()
        self.ids = itertools.count(1)
        self.shutting_down = False
        self.broken: str | None = None
        self.closed = False
        self.wake_lock = threading.Lock()  # guards the wake-up pipe and `closed`
        self.manager: threading.Thread | None = None
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        self.lifeline_r, self.lifeline_w = context.Pipe(duplex=False)
        self._ref = weakref.ref(self)
        _registry.add(self)

    # -- called from any thread ---------------------------------------------------

    def wake(self) -> None:
        with self.wake_lock:
            # After _close() the descriptor number may belong to someone else.
            if self.closed:
                return
            try:
                os.write(self.wake_w, b"\0")
            except (BlockingIOError, OSError):  # full: a wake-up is already pending
                pass

    def submit(
        self, future: Future[Any], payload: bytes, timeout: float | None
    ) -> None:
        with self.lock:
            if self.broken:
                raise BrokenProcessPool(self.broken)
            if self.shutting_down:  # stopped by a Ctrl-C (terminate)
                raise RuntimeError(SHUTDOWN_MESSAGE)
            task = _Task(next(self.ids), future, payload, timeout)
            self.pending.append(task)
            spawn = not self.idle and len(self.workers) < self.max_workers
            if spawn:
                self.workers.append(self._start_worker())
            if self.manager is None:
                self.manager = threading.Thread(
                    target=self._manage, name=f"ProcessExecutor-manager-{id(self):#x}"
                )
                self.manager.start()
            elif spawn:
                self.wake()
        self._feed_idle()

    def _stopper(self, task_id: int) -> Stopper:
        """How the future of task ``task_id`` stops it: by killing its worker.

        Only an abandoned task is stopped; ``cancel()`` of a running one returns
        False, as in the stdlib. Holds the pool weakly: a future kept by the
        caller does not keep a shut-down pool alive.
        """
        pool_ref = self._ref

        def stop(abandon: bool) -> bool:
            pool = pool_ref()
            if not abandon or pool is None:
                return False
            with pool.lock:
                for worker in pool.workers:
                    if worker.task is not None and worker.task.id == task_id:
                        worker.killing = True
            pool.wake()
            return True

        return stop

    def shutdown(self, wait: bool, cancel_futures: bool = False) -> None:
        with self.lock:
            self.shutting_down = True
            if cancel_futures:
                cancelled, self.pending = self.pending, deque()
            else:
                cancelled = deque()
            manager = self.manager
        for task in cancelled:
            if task.future.cancel():
                task.future.set_running_or_notify_cancel()
        if manager is None:
            self._close()
            return
        self.wake()
        if wait and manager is not threading.current_thread():
            manager.join()

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

    # -- dispatch -----------------------------------------------------------------

    def _start_worker(self) -> _Worker:
        parent_conn, child_conn = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=_worker.worker_main,
            # initargs travel as process arguments, pickled while spawning, so
            # that multiprocessing queues, locks and values work as in the stdlib.
            args=(
                child_conn,
                self.lifeline_r,
                self.initializer,
                self.initargs,
                self.max_tasks,
            ),
        )
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
        self.idle.append(worker)
        return worker

    def _next_assignment(self) -> tuple[_Worker, _Task] | None:
        """Pair an idle worker with a pending task (lock held)."""
        while self.idle and self.pending:
            task = self.pending.popleft()
            if not task.future._start(self._stopper(task.id)):
                continue
            worker = self.idle.pop()
            if task.timeout is not None:
                task.deadline = deadline_after(task.timeout)
            worker.task = task
            return worker, task
        return None

    def _feed_idle(self) -> None:
        """Send pending tasks to idle workers."""
        while True:
            with self.lock:
                assignment = self._next_assignment()
            if assignment is None:
                return
            worker, task = assignment
            if task.deadline is not None:
                if task.deadline <= time.monotonic():
                    self._time_out(worker)
                    continue
                if threading.current_thread() is not self.manager:
                    self.wake()  # the manager must watch the new deadline
            payload, task.payload = task.payload, b""  # not kept by a finished task
            try:
                worker.conn.send_bytes(_worker.HEADER.pack(task.id) + payload)
            except OSError:
                pass  # the worker died: its sentinel tells the manager
            del payload

    # -- the manager thread -------------------------------------------------------

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

    def _step(self) -> bool:
        """Wait for and handle events once; return True when the pool is done."""
        with self.lock:
            workers = list(self.workers)
            deadlines = [
                w.task.deadline
                for w in workers
                if w.task is not None and w.task.deadline is not None
            ]
        timeout = wait_time(min(deadlines)) if deadlines else None
        waitables: list[Any] = [self.wake_r]
        for worker in workers:
            waitables += (worker.conn, worker.process.sentinel)
        ready = set(wait(waitables, timeout))
        if self.wake_r in ready:
            os.read(self.wake_r, 4096)
        for worker in workers:
            if worker.conn in ready:
                self._receive(worker)
        for worker in workers:
            if worker.process.sentinel in ready:
                self._reap(worker)
        now = time.monotonic()
        for worker in workers:
            task = worker.task
            if worker.killing or (
                task is not None and task.deadline is not None and task.deadline <= now
            ):
                self._time_out(worker)
        self._replace_workers()
        self._feed_idle()
        with self.lock:
            if self.broken:
                return True
            busy = any(w.task is not None for w in self.workers)
            return self.shutting_down and not self.pending and not busy

    def _receive(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                reply = worker.conn.recv_bytes()
                self._handle_reply(worker, reply)
        except (EOFError, OSError):
            pass  # the worker is gone; _reap handles it

    def _handle_reply(self, worker: _Worker, reply: bytes) -> None:
        task_id, status = _worker.REPLY.unpack_from(reply)
        body = memoryview(reply)[_worker.REPLY.size :]
        if status == _worker.INIT_FAILED:
            self._break(
                "A process initializer failed, the process pool is not usable anymore"
            )
            return
        with self.lock:
            task = worker.task
            if task is None or task.id != task_id:
                return
            worker.task = None
            worker.done += 1
            retiring = self.max_tasks is not None and worker.done >= self.max_tasks
            if not worker.killing and not retiring:
                self.idle.append(worker)
        future = task.future
        if status == _worker.OK:
            try:
                result = pickle.loads(body)
            except BaseException as exc:
                # Even SystemExit from a hostile __reduce__ must not kill the manager.
                error = TransferError(
                    "the task's result could not be unpickled in the parent: "
                    f"{type(exc).__name__}: {exc}"
                )
                error.__cause__ = exc
                future._set_exception_if_pending(error)
            else:
                future._set_result_if_pending(result)
        else:
            future._set_exception_if_pending(decode_exception(bytes(body)))

    def _reap(self, worker: _Worker) -> None:
        self._receive(worker)  # a reply may have been sent just before the exit
        worker.process.join()
        with self.lock:
            if worker in self.workers:
                self.workers.remove(worker)
            if worker in self.idle:
                self.idle.remove(worker)
            task, worker.task = worker.task, None
        worker.conn.close()
        if task is not None and not task.future.done():
            task.future._set_exception_if_pending(
                WorkerCrashedError(
                    "A process in the process pool was terminated abruptly while the "
                    f"future was running ({describe_exit(worker.process.exitcode)})."
                )
            )

    def _time_out(self, worker: _Worker) -> None:
        task = worker.task
        if task is not None and not worker.killing:
            task.future._set_exception_if_pending(
                task_timed_out(task.timeout, "killed")
            )
        with self.lock:
            worker.killing = True
            if worker in self.idle:
                self.idle.remove(worker)
        if worker.process.is_alive() or worker.process.exitcode is None:
            worker.process.kill()

    def _replace_workers(self) -> None:
        with self.lock:
            if self.broken:
                return
            live = [w for w in self.workers if not w.killing]
            missing = min(len(self.pending), self.max_workers - len(self.workers))
            missing -= len([w for w in live if w in self.idle])
            for _ in range(max(0, missing)):
                self.workers.append(self._start_worker())

    def _break(self, reason: str) -> None:
        with self.lock:
            self.broken = reason
            tasks = list(self.pending)
            self.pending.clear()
            for worker in self.workers:
                # Not killed: every worker gets the stop message and exits on its
                # own (killed only after a grace period), flushing what it logged:
                # a failed initializer's record travels through a queue's thread.
                if worker.task is not None:
                    tasks.append(worker.task)
                    worker.task = None
        for task in tasks:
            task.future._set_exception_if_pending(BrokenProcessPool(reason))

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
            worker.conn.close()
        for task in self.pending:
            task.future._set_exception_if_pending(
                BrokenProcessPool(self.broken or "the process pool was closed")
            )
        with self.wake_lock:
            if self.closed:
                return
            # Later wake() calls must not write to a number that may be reused.
            self.closed = True
            os.close(self.wake_r)
            os.close(self.wake_w)
        self.lifeline_r.close()
        self.lifeline_w.close()
        _registry.discard(self)


class ProcessExecutor(BaseExecutor):
    """Run tasks in worker processes; a drop-in for ``ProcessPoolExecutor``.

    Takes the same arguments. Beyond the stdlib: functions and arguments travel
    with cloudpickle (lambdas, closures and ``__main__`` functions work), and a
    payload that cannot travel fails at ``submit`` with
    :class:`unirun.TransferError`; a worker that dies fails only its own task
    with :class:`unirun.WorkerCrashedError` (a ``BrokenProcessPool``) and is
    replaced; a task past its ``options(timeout=...)`` has its worker killed and
    fails with :class:`unirun.TaskTimeoutError`; cancelling a coroutine that
    awaits a running task kills its worker; Ctrl-C while waiting for a result
    stops the pool without orphans. ``cancel()`` of a running task returns
    ``False``, as in the stdlib.

    Args:
        max_workers: the most worker processes; default: the CPUs this process
            may really use (affinity and cgroup quota).
        mp_context: a :mod:`multiprocessing` context; default
            :func:`default_context` (``forkserver`` on Linux).
        initializer: called in each worker process before its first task.
        initargs: arguments for ``initializer``.
        max_tasks_per_child: replace a worker after this many tasks.
    """

    kind = "process"
    crosses_processes = True
    stops_on_timeout = True
    uses_chunks = True

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: BaseContext | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
    ) -> None:
        super().__init__()
        max_workers = check_size(max_workers, "max_workers")
        if max_workers is None:
            max_workers = usable_cpus()
            if sys.platform == "win32":
                max_workers = min(max_workers, 61)
        if mp_context is None:
            # As the stdlib (3.11 to 3.14): replacing workers means spawning fresh ones.
            if max_tasks_per_child is not None:
                mp_context = multiprocessing.get_context("spawn")
            else:
                mp_context = default_context()
        check_initializer(initializer)
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
            if mp_context.get_start_method(allow_none=False) == "fork":
                raise ValueError(
                    "max_tasks_per_child is incompatible with the 'fork' "
                    "multiprocessing start method; supply a different mp_context."
                )
        init_payload = None
        if initializer is not None:
            init_payload = cloudpickle.dumps(initializer)
        self._max_workers = max_workers
        self._mp_context = mp_context
        self._pool = _Pool(
            max_workers, mp_context, init_payload, tuple(initargs), max_tasks_per_child
        )
        weakref.finalize(self, self._pool.shutdown, False)
        terminate = weakref.WeakMethod(self._pool.terminate)

        def on_interrupt() -> None:
            # Weakly: a future the caller keeps must not keep the pool alive.
            method = terminate()
            if method is not None:
                method()

        self._on_interrupt = on_interrupt

    @property
    def _processes(self) -> dict[int, multiprocessing.process.BaseProcess]:
        """The live worker processes by pid, as ``ProcessPoolExecutor`` has them."""
        with self._pool.lock:
            return {
                w.process.pid: w.process for w in self._pool.workers if w.process.pid
            }

    @property
    def _executor_manager_thread(self) -> threading.Thread | None:
        """The thread that collects results, as ``ProcessPoolExecutor`` names it."""
        return self._pool.manager

    @property
    def _broken(self) -> str | bool:
        return self._pool.broken or False

    def _parallelism(self) -> int:
        return self._max_workers

    def _schedule(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        if self._pool.broken:
            raise BrokenProcessPool(self._pool.broken)
        with sending_to(self._primitive_scope) as primitives:
            payload = dumps_call(fn, args, kwargs)
        future: Future[Any] = Future(self._on_interrupt)
        if primitives:  # alive until the worker has them (the caller may drop them)
            future.add_done_callback(lambda _: primitives.clear())
        self._pool.submit(future, payload, options.timeout)
        return future

    def _close(self, wait: bool, cancel_futures: bool) -> None:
        self._pool.shutdown(wait, cancel_futures)

    def __repr__(self) -> str:
        return f"<ProcessExecutor max_workers={self._max_workers}>"
