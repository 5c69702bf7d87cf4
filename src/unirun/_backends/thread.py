from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import queue
import threading
import time
import weakref
from concurrent.futures.thread import BrokenThreadPool
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Protocol

from .._base import SHUTDOWN_MESSAGE, BaseExecutor
from .._call import TimeoutExpired, close_thread_loop, run_awaitable
from .._checks import check_initializer, check_size, deadline_after
from .._cpu import default_thread_workers
from .._deadlines import DeadlineWatcher
from .._errors import task_timed_out
from .._exit import ExitRegistry
from .._future import Future
from .._starting import HelperThread, began, join_launched, start_thread
from .._stats import WorkerClock

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._options import TaskOptions
    from .._stats import WorkerFigures

__all__ = ["Job", "ThreadExecutor"]

_LOGGER = logging.getLogger("concurrent.futures")

monotonic = time.monotonic


def _wake_and_join(live: list[tuple[threading.Thread, Any]]) -> None:
    for _, work_queue in live:
        work_queue.put(None)
    for thread, _ in live:
        join_launched(thread)


#: Live worker threads, each with its work queue: woken and joined at exit.
_registry: ExitRegistry[threading.Thread] = ExitRegistry(_wake_and_join)


class _Stoppable(Protocol):
    def cancel(self) -> bool: ...
    def _set_exception_if_pending(self, exception: BaseException) -> None: ...


class Job(Protocol):
    """What :meth:`ThreadExecutor._run_job` runs: ``run()``, and a ``future``
    the pool cancels or fails if it stops or breaks before the job runs."""

    @property
    def future(self) -> _Stoppable: ...
    def run(self) -> None: ...


class _WorkItem:
    __slots__ = ("args", "deadlines", "fn", "future", "kwargs", "timeout")

    def __init__(
        self,
        future: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
        deadlines: DeadlineWatcher | None,
    ) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.timeout = timeout
        self.deadlines = deadlines

    def run(self) -> None:
        future = self.future
        if not future._start():
            return
        timeout = self.timeout
        handle = deadline = deadlines = None
        if timeout is not None:  # the common case, no time-out, pays nothing here
            if timeout <= 0:
                future.set_exception(task_timed_out(timeout, "runs on"))
                return
            deadlines = self.deadlines
            deadline = deadline_after(timeout)
            if deadlines is not None and deadline is not None:
                handle = deadlines.add(
                    deadline,
                    lambda: future._set_exception_if_pending(
                        task_timed_out(timeout, "runs on")
                    ),
                )
        try:
            result = self.fn(*self.args, **self.kwargs)
            if type(result) is CoroutineType:
                # A coroutine can be stopped: cancel it at the deadline instead.
                if handle is not None and deadlines is not None:
                    deadlines.cancel(handle)
                    handle = None
                result = run_awaitable(result, _remaining(deadline))
        except TimeoutExpired:
            future._set_exception_if_pending(task_timed_out(timeout, "cancelled"))
        except BaseException as exc:
            future._set_exception_if_pending(exc)
            # Break the cycle exc -> traceback -> this frame -> the Future -> exc
            # (the deadline's callback shares `future`'s cell).
            self = future = None  # type: ignore[assignment]
        else:
            future._set_result_if_pending(result)
        finally:
            if handle is not None and deadlines is not None:
                deadlines.cancel(handle)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _worker(
    executor_ref: weakref.ref[ThreadExecutor],
    work_queue: queue.SimpleQueue[_WorkItem | None],
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
    clock: WorkerClock,
) -> None:
    if initializer is not None:
        try:
            initializer(*initargs)
        except BaseException:
            _LOGGER.critical("Exception in initializer:", exc_info=True)
            executor = executor_ref()
            if executor is not None:
                executor._initializer_failed()
            return
    try:
        while True:
            item = work_queue.get(block=True)
            if item is not None:
                # clock.begin() and clock.end(), inlined: once per task.
                clock.began = began = monotonic()
                item.run()
                clock.began = None
                clock.busy += monotonic() - began
                del item
                executor = executor_ref()
                if executor is not None:
                    executor._idle.put(None)
                del executor
                continue
            executor = executor_ref()
            # Exit when the interpreter exits, the executor was collected, or it
            # was shut down; pass the wake-up on to the next worker.
            if _registry.exiting or executor is None or executor._shutdown:
                if executor is not None:
                    executor._shutdown = True
                work_queue.put(None)
                return
            del executor
    except BaseException:
        _LOGGER.critical("Exception in worker", exc_info=True)
    finally:
        close_thread_loop()


class ThreadExecutor(BaseExecutor, cf.ThreadPoolExecutor):
    """Run tasks in a pool of threads; a drop-in for ``ThreadPoolExecutor``.

    Takes the same arguments and behaves the same, and is a ``ThreadPoolExecutor``
    to ``isinstance`` (asyncio's ``set_default_executor`` takes it): threads
    start on demand and are reused; ``shutdown(wait, cancel_futures=...)``; a
    failing initializer breaks the pool with
    :class:`concurrent.futures.thread.BrokenThreadPool`.
    Beyond the stdlib, ``submit`` takes ``async def`` functions (run on the
    worker thread's own event loop) and the returned Future is awaitable.

    A running thread cannot be stopped: a task that passes its ``options``
    time-out fails with :class:`unirun.TaskTimeoutError` at the deadline while the
    thread runs on, and ``cancel()`` of a running task returns ``False``.

    Args:
        max_workers: the most threads; default ``min(32, CPUs + 4)``.
        thread_name_prefix: prefix of the worker threads' names.
        initializer: called in each worker thread before its first task.
        initargs: arguments for ``initializer``.
    """

    kind = "thread"
    _exit_registry = _registry
    # The stdlib pools' own: in a program that has both, no two pools share a
    # default prefix ("ThreadPoolExecutor-0" for each).
    _counter = getattr(cf.ThreadPoolExecutor, "_counter", itertools.count().__next__)

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__()
        max_workers = check_size(max_workers, "max_workers")
        check_initializer(initializer)
        self._max_workers = (
            default_thread_workers() if max_workers is None else max_workers
        )
        # The stdlib's private attributes, typed as ours hold them (the stdlib
        # pool is a base only for isinstance(): see _stdlib_pools.py).
        self._work_queue: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()  # type: ignore[assignment]
        # One token per idle worker. A C queue, not threading.Semaphore: a
        # Ctrl-C inside submit() cannot leave a Python-level lock held, which
        # would hang the next worker that goes idle, and shutdown with it.
        self._idle: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._threads: set[threading.Thread] = set()
        self._clocks: dict[threading.Thread, WorkerClock] = {}
        self._starting: threading.Thread | None = None  # see _adjust_thread_count
        self._broken: str | bool = False  # type: ignore[assignment]
        self._thread_name_prefix = thread_name_prefix or (
            # The stdlib's default name: logs and filters of drop-in users match.
            f"ThreadPoolExecutor-{self._counter()}"
        )
        self._initializer = initializer  # type: ignore[assignment]
        self._initargs = initargs
        self._deadline_watcher: DeadlineWatcher | None = None

    @property
    def _deadlines(self) -> DeadlineWatcher:
        if self._deadline_watcher is None:
            self._deadline_watcher = DeadlineWatcher(
                f"{self._thread_name_prefix}_deadlines"
            )
        return self._deadline_watcher

    def _schedule(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        if self._broken:
            raise BrokenThreadPool(self._broken)
        future: Future[Any] = Future(None, self._counters)  # _new_future(), inlined
        timeout = options.timeout
        deadlines = self._deadlines if timeout is not None and timeout > 0 else None
        item = _WorkItem(future, fn, args, kwargs, timeout, deadlines)
        self._making = future  # queued by the next call: see _undo_submit
        self._work_queue.put(item)
        self._adjust_thread_count()
        return future

    def _refuse_if_broken(self) -> None:
        if self._broken:
            raise BrokenThreadPool(self._broken)

    def _run_job(self, job: Job) -> None:
        """Queue a job of unirun's own: run by a worker like a task, but not a
        task (not counted). Like a queued task, it is cancelled by
        ``shutdown(cancel_futures=True)`` and failed if the pool breaks: through
        ``job.future``."""
        try:
            with self._shutdown_lock:
                self._refuse_if_broken()
                if self._shutdown or _registry.exiting:
                    raise RuntimeError(SHUTDOWN_MESSAGE)
                self._work_queue.put(job)  # type: ignore[arg-type]  # runs like one
                self._adjust_thread_count()
        finally:
            if self._close_asked is not None:  # see BaseExecutor.shutdown
                self._close_as_asked()

    def _call_at(self, deadline: float, callback: Callable[[], None]) -> None:
        """Call ``callback()`` at ``deadline`` (``time.monotonic()``) in the
        pool's timer thread; it must be quick."""
        self._deadlines.add(deadline, callback)

    def _in_own_task(self) -> bool:
        return threading.current_thread() in self._threads

    def _parallelism(self) -> int:
        return self._max_workers

    def _workers(self) -> WorkerFigures:
        clocks = [(t, c) for t, c in list(self._clocks.items()) if t.is_alive()]
        return (
            len(clocks),
            len(self._threads),
            0,
            tuple(clock.read() for _, clock in clocks),
        )

    def _after_fork(self) -> None:
        # The parent's queued items stay the parent's, and so do its idle
        # workers' tokens.
        while not self._work_queue.empty():
            self._work_queue.get_nowait()
        self._idle = queue.SimpleQueue()
        self._deadline_watcher = None
        self._starting = None
        forking = threading.current_thread()
        if forking in self._threads:  # a task forked: its worker runs on here
            self._threads, self._clocks = {forking}, {forking: self._clocks[forking]}
            _registry.add(forking, self._work_queue)
        else:
            self._threads, self._clocks = set(), {}

    def _adjust_thread_count(self) -> None:
        # An idle worker will take the item: no need for a new thread.
        try:
            self._idle.get_nowait()
            return
        except queue.Empty:
            pass
        if self._starting is not None:  # the last start was interrupted
            self._settle_start()

        def wake_workers(
            _: object, work_queue: queue.SimpleQueue[Any] = self._work_queue
        ) -> None:
            work_queue.put(None)

        count = len(self._threads)
        if count < self._max_workers:
            name = f"{self._thread_name_prefix}_{count}"
            clock = WorkerClock(name)
            thread = HelperThread(
                name=name,
                # Not inherited: a lane check may start it from a daemon thread.
                daemon=False,
                target=_worker,
                args=(
                    weakref.ref(self, wake_workers),
                    self._work_queue,
                    self._initializer,
                    self._initargs,
                    clock,
                ),
            )
            # Recorded first: a Ctrl-C can land in start() once the thread runs,
            # and a running worker must be counted and joined. Until start()
            # returns, the next call checks that it did begin (_starting.py).
            self._starting = thread
            self._threads.add(thread)
            self._clocks[thread] = clock
            _registry.add(thread, self._work_queue)
            start_thread(thread)
            self._starting = None

    def _settle_start(self) -> None:
        """Settle a start that was interrupted or failed (lock held): a worker
        that never began leaves the records."""
        thread, self._starting = self._starting, None
        if thread is not None and not began(thread):
            self._threads.discard(thread)
            self._clocks.pop(thread, None)
            _registry.discard(thread)

    def _drain(self) -> list[_WorkItem]:
        """Take every queued item out of the work queue (lock held)."""
        items: list[_WorkItem] = []
        while True:
            try:
                item = self._work_queue.get_nowait()
            except queue.Empty:
                return items
            if item is not None:
                items.append(item)

    def _initializer_failed(self) -> None:
        with self._shutdown_lock:
            self._broken = (
                "A thread initializer failed, the thread pool is not usable anymore"
            )
            items = self._drain()
        # Outside the lock: a done-callback may submit (and be refused).
        for item in items:
            item.future._set_exception_if_pending(BrokenThreadPool(self._broken))

    def _close(self, wait: bool, cancel_futures: bool) -> None:
        with self._shutdown_lock:
            items = self._drain() if cancel_futures else []
            # Wake one worker; each passes the wake-up on before it exits.
            self._work_queue.put(None)
        # Outside the lock: a done-callback that submits to this pool is
        # refused, where the stdlib's, called under its lock, deadlocks.
        for item in items:
            item.future.cancel()
        if wait:
            for thread in list(self._threads):
                join_launched(thread)
            if self._deadline_watcher is not None:
                self._deadline_watcher.close(wait=True)
        elif self._deadline_watcher is not None:
            self._deadline_watcher.close(wait=False)

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return (
            f"<ThreadExecutor max_workers={self._max_workers} "
            f"threads={len(self._threads)} {state}>"
        )
