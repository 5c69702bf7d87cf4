"""CoroutineExecutor: tasks as coroutines on an anyio event loop.

Two ways to run: entered with ``async with`` inside a running event loop, tasks run
on that loop; otherwise the executor runs its own loop in a background thread,
started by the first ``submit``. Either way a submitted call goes through an inbox
that the loop drains, so ``submit`` is cheap and works from any thread::

    submit() -> inbox -> (one wake-up per batch) -> loop: task group.start_soon(job)
    job: [wait for a concurrency slot] -> run (await, or a worker thread if sync)
         inside a cancel scope (time-out, cancel()) -> set the Future
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

from .._base import BaseExecutor
from .._call import is_async_callable
from .._checks import check_initializer, check_size
from .._errors import BrokenExecutor, task_timed_out
from .._future import Future, call_soon_threadsafe_here

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Self

    from anyio.abc import TaskGroup

    from .._future import Stopper
    from .._options import TaskOptions

__all__ = ["CoroutineExecutor"]


class _Job:
    __slots__ = ("args", "fn", "future", "is_async", "kwargs", "options")

    def __init__(
        self,
        future: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        is_async: bool,
    ) -> None:
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.options = options
        self.is_async = is_async


#: Which executor's task the current context belongs to (a token, not the
#: executor, so that no context keeps an executor alive).
_OWNER: contextvars.ContextVar[object] = contextvars.ContextVar("unirun_coroutine")


class CoroutineExecutor(BaseExecutor):
    """Run tasks as coroutines on an anyio event loop (asyncio or trio).

    ``async def`` tasks run on the loop; plain functions run in anyio's worker
    threads so the loop never blocks. A running coroutine can be cancelled for
    real: ``Future.cancel()`` and a time-out cancel it at its next ``await``.

    Args:
        max_concurrency: the most tasks running at once; ``None`` for no limit.
        backend: ``"asyncio"`` or ``"trio"`` (the ``trio`` extra) for the loop the
            executor runs itself; inside ``async with`` the caller's loop is used.
        initializer: called (or awaited) on the loop before the first task.
        initargs: arguments for ``initializer``.
    """

    kind = "coroutine"
    cancels_running = True
    stops_on_timeout = True

    def __init__(
        self,
        max_concurrency: int | None = None,
        backend: Literal["asyncio", "trio"] = "asyncio",
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__()
        max_concurrency = check_size(max_concurrency, "max_concurrency")
        if backend not in ("asyncio", "trio"):
            raise ValueError(f"backend must be 'asyncio' or 'trio', not {backend!r}")
        check_initializer(initializer)
        self._token = object()
        self._max_concurrency = max_concurrency
        self._backend = backend
        self._initializer = initializer
        self._initargs = initargs
        self._lock = threading.Lock()
        self._inbox: deque[_Job] = deque()
        self._waiting: set[Future[Any]] = set()
        self._wake_pending = False
        self._call_soon: Callable[[Callable[[], object]], None] | None = None
        self._task_group: TaskGroup | None = None
        self._slots: anyio.Semaphore | None = None
        self._wakeup: anyio.Event
        self._thread: threading.Thread | None = None
        self._attached: Any = None
        self._started = False
        self._broken: str | None = None
        # On asyncio, jobs are plain asyncio tasks (much cheaper than anyio's task
        # group); on trio they go through the anyio task group.
        self._on_asyncio = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._context: contextvars.Context | None = None

    # -- submitting ------------------------------------------------------------------

    def _schedule(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        future: Future[Any] = Future()
        job = _Job(future, fn, args, kwargs, options, is_async_callable(fn))
        schedule: Callable[[Callable[[], object]], None] | None = None
        with self._lock:
            if self._broken:
                raise BrokenExecutor(self._broken)
            # A task submitting a task, on the loop's own thread: start it here.
            on_loop = (
                self._loop_thread == threading.get_ident()
                and self._task_group is not None
                and not self._inbox
            )
            if not on_loop:
                self._inbox.append(job)
                if not self._started:
                    self._start_thread()
                    return future
                schedule = self._call_soon
                if schedule is None or self._wake_pending:
                    return future
                self._wake_pending = True
        if schedule is None:  # on the loop's own thread
            self._spawn(job)
        else:
            schedule(self._wake)
        return future

    def _start_thread(self) -> None:
        self._started = True
        ready = threading.Event()
        self._thread = threading.Thread(
            target=anyio.run,
            args=(self._main, ready),
            kwargs={"backend": self._backend},
            name=f"CoroutineExecutor-{id(self):#x}",
        )
        self._thread.start()

    async def _main(self, ready: threading.Event) -> None:
        async with anyio.create_task_group() as task_group:
            await self._attach(task_group)
            ready.set()
        # The task group has waited for the drainer (gone at shutdown) and every job.

    async def _attach(self, task_group: TaskGroup) -> None:
        """Make ``task_group`` (in the running loop) the home of the tasks."""
        if self._max_concurrency is not None:
            self._slots = anyio.Semaphore(self._max_concurrency)
        self._task_group = task_group
        self._wakeup = anyio.Event()
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._on_asyncio = self._loop is not None
        self._context = contextvars.copy_context()
        self._context.run(_OWNER.set, self._token)
        self._loop_thread = threading.get_ident()
        if self._initializer is not None:
            try:
                result = self._initializer(*self._initargs)
                if inspect.isawaitable(result):
                    await result
            except BaseException:
                logging.getLogger("concurrent.futures").critical(
                    "Exception in initializer:", exc_info=True
                )
                self._fail_all(
                    "The coroutine executor's initializer failed, "
                    "the executor is not usable anymore"
                )
        with self._lock:
            self._call_soon = call_soon_threadsafe_here()
        task_group.start_soon(self._drainer)

    def _wake(self) -> None:
        """Start the inbox's jobs (runs on the loop, outside any task).

        On asyncio the jobs are started right here, saving a trip through the
        drainer task; on trio starting tasks needs a task context, so the drainer
        is woken to do it.
        """
        if self._on_asyncio:
            self._drain()
            if self._shutdown:
                self._wakeup.set()  # let the drainer see the shutdown
        else:
            self._wakeup.set()

    async def _drainer(self) -> None:
        """Start the jobs that arrive in the inbox, until shutdown empties it."""
        _OWNER.set(self._token)  # inherited by the tasks it starts (trio)
        while True:
            self._drain()
            with self._lock:
                done = self._shutdown and not self._inbox
            if done:
                while self._tasks:  # plain asyncio tasks: wait for them here
                    await asyncio.wait(list(self._tasks))
                    # A task leaves the set itself once it runs a job; one that
                    # never got that far (cancelled waiting for a slot) is
                    # dropped here.
                    self._tasks = {task for task in self._tasks if not task.done()}
                return
            await self._wakeup.wait()
            self._wakeup = anyio.Event()

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            self._broken = reason
            jobs = list(self._inbox)
            self._inbox.clear()
        for job in jobs:
            job.future._set_exception_if_pending(BrokenExecutor(reason))

    def _drain(self) -> None:
        """Start every job in the inbox (runs on the loop)."""
        with self._lock:
            jobs = list(self._inbox)
            self._inbox.clear()
            self._wake_pending = False
            task_group = self._task_group
        if task_group is None:
            return
        for job in jobs:
            self._spawn(job)

    def _spawn(self, job: _Job) -> None:
        """Start one job as a task of the loop (on the loop's thread)."""
        if self._loop is not None and self._on_asyncio:
            # Without a concurrency limit, one coroutine less on the common path.
            coro = self._run_now(job) if self._slots is None else self._run(job)
            # The loop's own context: a wake-up scheduled from another thread runs
            # in that thread's context, where sniffio may name another library.
            # The task leaves _tasks by itself when it ends (see _run_now): cheaper
            # than a done callback, which costs a loop iteration per task.
            self._tasks.add(self._loop.create_task(coro, context=self._context))
        else:
            assert self._task_group is not None
            self._task_group.start_soon(self._run, job)

    async def _run(self, job: _Job) -> None:
        future = job.future
        if self._slots is not None:
            if future.done():
                return
            with self._lock:
                self._waiting.add(future)
            try:
                await self._slots.acquire()
            finally:
                with self._lock:
                    self._waiting.discard(future)
            try:
                await self._run_now(job)
            finally:
                self._slots.release()
        else:
            await self._run_now(job)

    @staticmethod
    async def _invoke(job: _Job) -> Any:
        fn, args, kwargs = job.fn, job.args, job.kwargs
        job.fn = job.args = job.kwargs = None  # type: ignore[assignment]
        if job.is_async:
            return await fn(*args, **kwargs)
        result = await anyio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), abandon_on_cancel=True
        )
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _run_now(self, job: _Job) -> None:
        task = asyncio.current_task() if self._on_asyncio else None
        try:
            if task is not None:
                await self._run_now_asyncio(job, job.options.timeout, task)
            else:
                await self._run_now_anyio(job, job.options.timeout)
        finally:
            if task is not None:
                self._tasks.discard(task)

    @staticmethod
    def _stopper(job: _Job, cancel: Callable[[], object]) -> Stopper:
        """Stop a job by cancelling it: on ``cancel()`` only if it is a
        coroutine; a plain function in a worker thread is only abandoned."""
        is_async = job.is_async

        def stop(abandon: bool) -> bool:
            if not (is_async or abandon):
                return False
            cancel()
            return True

        return stop

    @staticmethod
    def _timed_out(job: _Job, limit: float | None) -> BaseException:
        return task_timed_out(limit, "cancelled" if job.is_async else "runs on")

    async def _run_now_asyncio(
        self, job: _Job, limit: float | None, task: asyncio.Task[Any]
    ) -> None:
        future = job.future
        loop = self._loop
        assert loop is not None
        if not future._start(
            self._stopper(job, lambda: loop.call_soon_threadsafe(task.cancel))
        ):
            return
        if limit is not None and limit <= 0:
            future.set_exception(self._timed_out(job, limit))
            return
        timer = None
        try:
            if limit is None:
                result = await self._invoke(job)
            else:
                async with asyncio.timeout(limit) as timer:
                    result = await self._invoke(job)
        except asyncio.CancelledError:
            # Stopped through the Future (already cancelled), or the loop itself is
            # going away: either way nobody awaits this task, the Future tells.
            if not future.done():
                future._abandon()
        except TimeoutError as exc:
            if timer is not None and timer.expired():
                future._set_exception_if_pending(self._timed_out(job, limit))
            else:
                future._set_exception_if_pending(exc)
        except BaseException as exc:
            future._set_exception_if_pending(exc)
        else:
            future._set_result_if_pending(result)

    async def _run_now_anyio(self, job: _Job, limit: float | None) -> None:
        future = job.future
        scope = anyio.CancelScope()
        schedule = self._call_soon
        assert schedule is not None
        if not future._start(self._stopper(job, lambda: schedule(scope.cancel))):
            return
        if limit is not None and limit <= 0:
            future.set_exception(self._timed_out(job, limit))
            return
        if limit is not None:
            scope.deadline = anyio.current_time() + limit
        cancelled = anyio.get_cancelled_exc_class()
        try:
            with scope:
                try:
                    result = await self._invoke(job)
                except cancelled:
                    raise
                except BaseException as exc:
                    future._set_exception_if_pending(exc)
                else:
                    future._set_result_if_pending(result)
        finally:
            if not future.done():
                if (
                    limit is not None
                    and scope.cancelled_caught
                    and (anyio.current_time() >= scope.deadline)
                ):
                    future._set_exception_if_pending(self._timed_out(job, limit))
                else:
                    future._abandon()

    # -- shutting down --------------------------------------------------------------

    def _in_own_task(self) -> bool:
        return _OWNER.get(None) is self._token

    def _close(self, wait: bool, cancel_futures: bool) -> None:
        with self._lock:
            cancelled: list[Future[Any]] = []
            if cancel_futures:
                cancelled = [job.future for job in self._inbox]
                self._inbox.clear()
                waiting = list(self._waiting)
            else:
                waiting = []
            schedule, thread = self._call_soon, self._thread
        for future in cancelled:
            if future.cancel():
                future.set_running_or_notify_cancel()
        for future in waiting:
            future.cancel()  # its job sees it when it gets a slot
        if thread is None:
            return
        if schedule is not None:
            schedule(self._wake)
        # Otherwise the loop is still starting: its drainer sees _shutdown.
        if wait:
            thread.join()

    async def __aenter__(self) -> Self:
        with self._lock:
            if self._started:
                return self
            self._started = True
        self._attached = anyio.create_task_group()
        task_group = await self._attached.__aenter__()
        await self._attach(task_group)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if self._attached is None:
            await super().__aexit__(exc_type, exc_val, exc_tb)
            return
        with self._shutdown_lock:
            self._shutdown = True
        self._wakeup.set()
        attached, self._attached = self._attached, None
        await attached.__aexit__(exc_type, exc_val, exc_tb)

    def __repr__(self) -> str:
        limit = self._max_concurrency
        return f"<CoroutineExecutor backend={self._backend!r} max_concurrency={limit}>"
