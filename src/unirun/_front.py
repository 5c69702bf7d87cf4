"""What callers schedule work with: ``submit``, ``map``, ``gather``, ``options``.

:class:`Front` holds these methods and their typed overloads once, for both
executors and their :class:`OptionsView`; each forwards to three private methods
of :class:`~unirun._base.BaseExecutor` with the task options of whoever was
called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

from ._options import TaskOptions
from ._progress import make_progress
from ._sync import PrimitiveMethods

if TYPE_CHECKING:
    import concurrent.futures as cf
    from collections.abc import Awaitable, Callable, Iterable
    from types import TracebackType
    from typing import Self

    from ._base import BaseExecutor
    from ._future import Future
    from ._map import MapIterator
    from ._progress import Progress, ProgressOption
    from ._stats import Statistics
    from ._sync import Kernel
    from ._types import Backend, P, T

__all__ = ["DEFAULT_CHUNKSIZE", "Front", "OptionsView"]


class _DefaultChunksize:
    __slots__ = ()

    def __repr__(self) -> str:
        return "1"


#: ``map``'s chunksize when none is given: the stdlib's 1, except on executors
#: that choose by default (:attr:`BaseExecutor.default_chunksize`).
DEFAULT_CHUNKSIZE: Any = _DefaultChunksize()


class Front:
    """``submit``, ``map``, ``gather`` and ``options`` for executors and views."""

    __slots__ = ()

    _task_options: TaskOptions

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        raise NotImplementedError

    def _map(
        self,
        fn: Callable[..., Any],
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int | None,
        buffersize: int | None,
        options: TaskOptions,
        progress: Progress | None = None,
    ) -> MapIterator[Any]:
        raise NotImplementedError

    def _gather(
        self,
        items: tuple[cf.Future[Any] | Awaitable[Any], ...],
        return_exceptions: bool,
        options: TaskOptions,
        progress: Progress | None = None,
    ) -> Future[list[Any]]:
        raise NotImplementedError

    def _check_backend(self, backend: Backend | None) -> None:
        raise NotImplementedError

    @overload
    def submit(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]: ...

    @overload
    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]: ...

    def submit(
        self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` and return a Future for its result.

        Returns at once. ``fn`` may be a plain function or an ``async def``; it
        runs exactly once unless cancelled before it starts.

        Raises:
            TypeError: ``fn`` is not callable.
            RuntimeError: the executor has been shut down.
        """
        return self._submit(fn, args, kwargs, self._task_options)

    @overload
    def map(
        self,
        fn: Callable[..., Awaitable[T]],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
        progress: ProgressOption = None,
    ) -> MapIterator[T]: ...

    @overload
    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
        progress: ProgressOption = None,
    ) -> MapIterator[T]: ...

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = DEFAULT_CHUNKSIZE,
        buffersize: int | None = None,
        progress: ProgressOption = None,
    ) -> MapIterator[Any]:
        """Return ``fn`` applied to the items of ``iterables``, in input order.

        Like :meth:`concurrent.futures.Executor.map`: the inputs are submitted at
        once (or ``buffersize`` at a time, as in Python 3.14); ``timeout`` counts
        from this call and raises :class:`TimeoutError` from the iteration; an
        exception from ``fn`` is raised where its item would be. The result can
        be iterated with ``for`` or ``async for``.

        Args:
            chunksize: items sent to a worker at a time on backends that batch
                (processes); ``None`` lets the backend choose. Ignored by threads
                and coroutines, as ``ThreadPoolExecutor`` ignores it.
                :class:`unirun.AutoExecutor` chooses by default.
            buffersize: at most this many tasks are submitted ahead of the
                consumer; ``None`` submits them all now.
            progress: show how many items have finished: ``True`` draws a bar
                on stderr (tqdm's when installed, else rich's, else a plain
                counter); a tqdm-like class is used as the bar; a callable is
                called as ``(done, total)``. Items count as they finish, one by
                one even when batched; the bar is closed when the iteration
                ends, fails or is closed. See docs/observing.md.

        Raises:
            TypeError: ``progress`` is none of the above.
        """
        if chunksize is DEFAULT_CHUNKSIZE:
            chunksize = self._owner().default_chunksize
        return self._map(
            fn,
            iterables,
            timeout,
            chunksize,
            buffersize,
            self._task_options,
            make_progress(progress),
        )

    @overload
    def gather(
        self,
        *futures_or_awaitables: Awaitable[T],
        return_exceptions: Literal[False] = False,
        progress: ProgressOption = None,
    ) -> Future[list[T]]: ...

    @overload
    def gather(
        self,
        *futures_or_awaitables: cf.Future[T],
        return_exceptions: Literal[False] = False,
        progress: ProgressOption = None,
    ) -> Future[list[T]]: ...

    @overload
    def gather(
        self,
        *futures_or_awaitables: cf.Future[Any] | Awaitable[Any],
        return_exceptions: bool = False,
        progress: ProgressOption = None,
    ) -> Future[list[Any]]: ...

    def gather(
        self,
        *futures_or_awaitables: cf.Future[Any] | Awaitable[Any],
        return_exceptions: bool = False,
        progress: ProgressOption = None,
    ) -> Future[list[Any]]:
        """Return a Future for the list of results of all the given tasks.

        Futures are waited for; other awaitables (coroutines) are submitted to
        this executor first. Use ``.result()`` in sync code and ``await`` in
        async code. As with :func:`asyncio.gather`, the first exception fails the
        returned Future unless ``return_exceptions`` is true, in which case
        exceptions take their place in the list; cancelling the returned Future
        cancels every task. ``progress`` counts the tasks as they finish, as for
        :meth:`map`, and is closed before the returned Future is done.

        Raises:
            TypeError: an item is neither a future nor an awaitable, or
                ``progress`` is not a valid progress argument.
        """
        return self._gather(
            futures_or_awaitables,
            return_exceptions,
            self._task_options,
            make_progress(progress),
        )

    def options(
        self,
        *,
        timeout: float | None = None,
        name: str | None = None,
        backend: Backend | None = None,
    ) -> OptionsView:
        """Return a view of this executor whose tasks carry these options.

        The view has the same ``submit``, ``map`` and ``gather``; the task's own
        keyword arguments stay untouched. On a view, an option left ``None``
        keeps the view's value. See :class:`unirun.TaskOptions`.

        Raises:
            ValueError: ``backend`` is not a backend name, or names a backend this
                executor cannot run (a fixed executor runs only its own kind).
        """
        current = self._task_options
        options = TaskOptions(
            timeout=current.timeout if timeout is None else timeout,
            name=current.name if name is None else name,
            backend=current.backend if backend is None else backend,
        )
        self._check_backend(options.backend)
        return OptionsView(self._owner(), options)

    def _owner(self) -> BaseExecutor:
        raise NotImplementedError


class OptionsView(Front, PrimitiveMethods):
    """An executor seen through per-task options; see :meth:`Executor.options`.

    ``submit``, ``map`` and ``gather`` schedule on the underlying executor with the
    options attached; primitives, ``shutdown`` and the context managers act on
    the executor.
    """

    __slots__ = ("_executor", "_task_options")

    def __init__(self, executor: BaseExecutor, options: TaskOptions) -> None:
        self._executor = executor
        self._task_options = options

    @property
    def task_options(self) -> TaskOptions:
        """The options every task submitted through this view carries."""
        return self._task_options

    def _owner(self) -> BaseExecutor:
        return self._executor

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        return self._executor._submit(fn, args, kwargs, options)

    def _map(
        self,
        fn: Callable[..., Any],
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int | None,
        buffersize: int | None,
        options: TaskOptions,
        progress: Progress | None = None,
    ) -> MapIterator[Any]:
        return self._executor._map(
            fn, iterables, timeout, chunksize, buffersize, options, progress
        )

    def _gather(
        self,
        items: tuple[cf.Future[Any] | Awaitable[Any], ...],
        return_exceptions: bool,
        options: TaskOptions,
        progress: Progress | None = None,
    ) -> Future[list[Any]]:
        return self._executor._gather(items, return_exceptions, options, progress)

    def _check_backend(self, backend: Backend | None) -> None:
        self._executor._check_backend(backend)

    def _kernel(self) -> Kernel:
        return self._executor._kernel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the underlying executor down; see :meth:`Executor.shutdown`."""
        self._executor.shutdown(wait, cancel_futures=cancel_futures)

    def statistics(self) -> Statistics:
        """The underlying executor's :meth:`BaseExecutor.statistics`."""
        return self._executor.statistics()

    def __enter__(self) -> Self:
        self._executor.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self._executor.__exit__(exc_type, exc_val, exc_tb)

    async def __aenter__(self) -> Self:
        await self._executor.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self._executor.__aexit__(exc_type, exc_val, exc_tb)

    def __repr__(self) -> str:
        return f"<OptionsView {self._task_options} of {self._executor!r}>"
