"""ThreadExecutor: a drop-in for ``concurrent.futures.ThreadPoolExecutor``.

Workers are started on demand up to ``max_workers`` and reused when idle; they
are non-daemon and joined at interpreter exit, as the stdlib's are. Async
callables run on an event loop owned by the worker thread.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
import time
import weakref
from concurrent.futures.thread import BrokenThreadPool
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .._base import BaseExecutor, check_callable
from .._call import close_thread_loop, run_awaitable
from .._deadlines import DeadlineWatcher
from .._errors import TaskTimeoutError
from .._future import Future

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._options import TaskOptions

__all__ = ["ThreadExecutor", "default_thread_workers"]

_LOGGER = logging.getLogger("concurrent.futures")

# Queues of live workers, so that interpreter exit can wake and join them.
_live_queues: weakref.WeakKeyDictionary[threading.Thread, queue.SimpleQueue[Any]] = (
    weakref.WeakKeyDictionary()
)
_exiting = False
_exit_lock = threading.Lock()


def _at_exit() -> None:
    global _exiting
    with _exit_lock:
        _exiting = True
    items = list(_live_queues.items())
    for _, work_queue in items:
        work_queue.put(None)
    for thread, _ in items:
        thread.join()


threading._register_atexit(_at_exit)  # type: ignore[attr-defined]  # joined before daemon threads die, as stdlib does


def _forget_threads_after_fork() -> None:
    # A forked child has none of its parent's worker threads, and the exit lock
    # may have been held by one of them at the fork (bpo-45021).
    global _live_queues
    _live_queues = weakref.WeakKeyDictionary()
    _exit_lock._at_fork_reinit()  # type: ignore[attr-defined]  # private, as stdlib uses it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads_after_fork)


def default_thread_workers() -> int:
    """Return the stdlib's default worker count: ``min(32, CPUs + 4)``."""
    process_cpu_count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if process_cpu_count is not None:
        cpus = process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:
        cpus = os.cpu_count()
    return min(32, (cpus or 1) + 4)


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
        if not future.set_running_or_notify_cancel():
            return
        deadlines = self.deadlines
        handle = None
        timeout = self.timeout
        if timeout is not None:
            if timeout <= 0 or deadlines is None:
                future.set_exception(_timed_out(timeout))
                return
            handle = deadlines.add(
                time.monotonic() + timeout,
                lambda: future._set_exception_if_pending(_timed_out(timeout)),
            )
        try:
            result = self.fn(*self.args, **self.kwargs)
            if type(result) is CoroutineType:
                result = run_awaitable(result)
        except BaseException as exc:
            future._set_exception_if_pending(exc)
            # Break the cycle exc -> traceback -> frame -> self.
            self = None  # type: ignore[assignment]
        else:
            future._set_result_if_pending(result)
        finally:
            if handle is not None and deadlines is not None:
                deadlines.cancel(handle)


def _timed_out(timeout: float) -> TaskTimeoutError:
    return TaskTimeoutError(
        f"the task did not finish within its time-out of {timeout} seconds "
        "(a thread cannot be stopped: it runs on in the background)"
    )


def _worker(
    executor_ref: weakref.ref[ThreadExecutor],
    work_queue: queue.SimpleQueue[_WorkItem | None],
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
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
                item.run()
                del item
                executor = executor_ref()
                if executor is not None:
                    executor._idle.release()
                del executor
                continue
            executor = executor_ref()
            # Exit when the interpreter exits, the executor was collected, or it
            # was shut down; pass the wake-up on to the next worker.
            if _exiting or executor is None or executor._shutdown:
                if executor is not None:
                    executor._shutdown = True
                work_queue.put(None)
                return
            del executor
    except BaseException:
        _LOGGER.critical("Exception in worker", exc_info=True)
    finally:
        close_thread_loop()


class ThreadExecutor(BaseExecutor):
    """Run tasks in a pool of threads; a drop-in for ``ThreadPoolExecutor``.

    Takes the same arguments and behaves the same: threads start on demand and
    are reused; ``shutdown(wait, cancel_futures=...)``; a failing initializer
    breaks the pool with :class:`concurrent.futures.thread.BrokenThreadPool`.
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
    _counter = itertools.count().__next__

    def __init__(
        self,
        max_workers: int | None = None,
        thread_name_prefix: str = "",
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        if max_workers is None:
            max_workers = default_thread_workers()
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        self._max_workers = max_workers
        self._work_queue: queue.SimpleQueue[_WorkItem | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: set[threading.Thread] = set()
        self._broken: str | bool = False
        self._shutdown = False
        self._shutdown_lock = threading.Lock()
        self._thread_name_prefix = thread_name_prefix or (
            # The stdlib's default name: logs and filters of drop-in users match.
            f"ThreadPoolExecutor-{self._counter()}"
        )
        self._initializer = initializer
        self._initargs = initargs
        self._deadline_watcher: DeadlineWatcher | None = None

    @property
    def _deadlines(self) -> DeadlineWatcher:
        if self._deadline_watcher is None:
            self._deadline_watcher = DeadlineWatcher(
                f"{self._thread_name_prefix}_deadlines"
            )
        return self._deadline_watcher

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        check_callable(fn)
        with self._shutdown_lock, _exit_lock:
            if self._broken:
                raise BrokenThreadPool(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if _exiting:
                raise RuntimeError(
                    "cannot schedule new futures after interpreter shutdown"
                )
            future: Future[Any] = Future()
            timeout = options.timeout
            deadlines = self._deadlines if timeout is not None and timeout > 0 else None
            self._work_queue.put(
                _WorkItem(future, fn, args, kwargs, timeout, deadlines)
            )
            self._adjust_thread_count()
            return future

    def _adjust_thread_count(self) -> None:
        # An idle worker will take the item: no need for a new thread.
        if self._idle.acquire(timeout=0):
            return

        def wake_workers(
            _: object, work_queue: queue.SimpleQueue[Any] = self._work_queue
        ) -> None:
            work_queue.put(None)

        count = len(self._threads)
        if count < self._max_workers:
            thread = threading.Thread(
                name=f"{self._thread_name_prefix}_{count}",
                target=_worker,
                args=(
                    weakref.ref(self, wake_workers),
                    self._work_queue,
                    self._initializer,
                    self._initargs,
                ),
            )
            thread.start()
            self._threads.add(thread)
            _live_queues[thread] = self._work_queue

    def _initializer_failed(self) -> None:
        with self._shutdown_lock:
            self._broken = (
                "A thread initializer failed, the thread pool is not usable anymore"
            )
            while True:
                try:
                    item = self._work_queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item.future._set_exception_if_pending(
                        BrokenThreadPool(self._broken)
                    )

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; see :meth:`concurrent.futures.Executor.shutdown`.

        Args:
            wait: block until every task has finished and every thread has exited.
            cancel_futures: cancel the tasks that have not started.
        """
        with self._shutdown_lock:
            self._shutdown = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work_queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item.future.cancel()
            # Wake one worker; each passes the wake-up on before it exits.
            self._work_queue.put(None)
        if wait:
            for thread in list(self._threads):
                thread.join()
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


ThreadExecutor.__module__ = "unirun"
