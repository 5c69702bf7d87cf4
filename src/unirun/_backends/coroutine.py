"""CoroutineExecutor: tasks as coroutines on an anyio event loop.

The executor is a thin front over a :class:`~._loop.LoopRunner`, which runs the
tasks either on the caller's loop (inside ``async with``) or on a loop of its
own in a background thread; see ``_loop.py`` for the data flow.
"""

from __future__ import annotations

import weakref
from _thread import get_ident
from inspect import CO_COROUTINE
from types import FunctionType
from typing import TYPE_CHECKING, Any, Literal

from .._base import BaseExecutor
from .._call import is_async_callable
from .._checks import check_initializer, check_size, initializer_args
from .._future import Future
from ._job import Job
from ._loop import LoopRunner, registry

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Self

    from .._options import TaskOptions
    from .._stats import WorkerFigures

__all__ = ["CoroutineExecutor"]

#: Worker threads that plain functions share (anyio's default limit).
_THREADS = 40


class CoroutineExecutor(BaseExecutor):
    """Run tasks as coroutines on an anyio event loop (asyncio or trio).

    ``async def`` tasks run on the loop; plain functions run in anyio's worker
    threads so the loop never blocks. A running coroutine can be cancelled for
    real: ``Future.cancel()`` and a time-out cancel it at its next ``await``.

    Entered with ``async with`` inside a running event loop, the tasks run on
    that loop (so they can use what is bound to it: locks, sessions); otherwise
    the executor runs a loop of its own in a background thread, started by the
    first ``submit``. An exception from the body of ``async with`` leaves it as
    itself, never wrapped in an exception group.

    Args:
        max_workers: the most tasks running at once; ``None`` for no limit.
        backend: ``"asyncio"`` or ``"trio"`` (the ``trio`` extra) for the loop the
            executor runs itself; inside ``async with`` the caller's loop is used.
        initializer: called (or awaited) on the loop before the first task.
        initargs: arguments for ``initializer``.
        max_concurrency: another name for ``max_workers``.
    """

    kind = "coroutine"
    cancels_running = True
    stops_on_timeout = True
    _exit_registry = registry  # its loop ends at interpreter exit

    def __init__(
        self,
        max_workers: int | None = None,
        backend: Literal["asyncio", "trio"] = "asyncio",
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        max_concurrency: int | None = None,
    ) -> None:
        super().__init__()
        if max_concurrency is not None:
            if max_workers is not None and max_workers != max_concurrency:
                raise TypeError(
                    "max_workers and max_concurrency name the same limit; "
                    "give one of them"
                )
            max_workers = max_concurrency
        max_workers = check_size(max_workers, "max_workers")
        if backend not in ("asyncio", "trio"):
            raise ValueError(f"backend must be 'asyncio' or 'trio', not {backend!r}")
        check_initializer(initializer)
        self._max_workers = max_workers
        self._backend = backend
        self._runner = LoopRunner(
            max_workers,
            backend,
            initializer,
            initializer_args(initializer, initargs),
            name=f"CoroutineExecutor-{id(self):#x}",
        )
        # Dropped without shutdown(): the loop ends once its tasks are done.
        self._finalizer = weakref.finalize(self, self._runner.close, False, False)

    @property
    def _max_concurrency(self) -> int | None:
        return self._max_workers

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        # The common call from a task or the body of `async with`: an async def
        # (a plain function) with no time-out starts its task here, in one frame
        # and under the same lock as _base's path, which the rest take.
        if (
            options.timeout is None
            and type(fn) is FunctionType
            and fn.__code__.co_flags & CO_COROUTINE
            and not fn.__dict__
            and self._runner.loop_thread == get_ident()
            and self._runner.direct is not None
        ):
            try:
                with self._shutdown_lock:
                    if not (self._shutdown or registry.exiting):  # else: refused below
                        future = self._runner.start_now(
                            fn, args, kwargs, self._counters
                        )
                        if future is not None:
                            self._counters.submitted()  # it runs at the next turn
                            return future
            finally:
                if self._close_asked is not None:  # see BaseExecutor.shutdown
                    self._close_as_asked()
        return super()._submit(fn, args, kwargs, options)

    def _schedule(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        # _new_future(), inlined, with the loop's thread, which starts and
        # finishes it, as its owner (see _owned.py); none before the loop runs.
        runner = self._runner
        future: Future[Any] = Future(None, self._counters, runner.loop_thread)
        timeout, is_async = options.timeout, is_async_callable(fn)
        job = Job(future, fn, args, kwargs, timeout, is_async)
        self._making = job  # the runner marks it as it queues it: Job.queued
        runner.submit(job)
        return future

    def _in_own_task(self) -> bool:
        return self._runner.in_own_task()

    def _refuse_if_broken(self) -> None:
        self._runner.refuse_if_broken()

    def _after_fork(self) -> None:
        runner = self._runner
        if runner.attached or runner.loop_thread == get_ident():
            return  # the child runs on in that loop: it is this process's too
        self._finalizer.detach()
        self._runner = runner.copy()
        self._finalizer = weakref.finalize(self, self._runner.close, False, False)

    def _workers(self) -> WorkerFigures:
        return self._runner.figures()

    def _batches(self, fn: Callable[..., Any]) -> bool:
        # Coroutines cost little each and run at once; only plain functions,
        # which each take a trip to a worker thread, are worth batching.
        return not is_async_callable(fn)

    def _parallelism(self) -> int:
        return self._max_workers or _THREADS

    def _close(self, wait: bool, cancel_futures: bool) -> None:
        self._runner.close(wait, cancel_futures)

    async def __aenter__(self) -> Self:
        await self._runner.attach()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        with self._shutdown_lock:
            self._shutdown = True
        if not self._runner.attached:  # it runs its own loop
            await super().__aexit__(exc_type, exc_val, exc_tb)
        else:
            await self._runner.detach(exc_type, exc_val)

    def __repr__(self) -> str:
        return (
            f"<CoroutineExecutor backend={self._backend!r} "
            f"max_workers={self._max_workers}>"
        )
