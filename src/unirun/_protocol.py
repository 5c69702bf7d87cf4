"""The ``Executor`` protocol: the one type user code annotates against."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, overload, runtime_checkable

from ._sync import MakesPrimitives

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator
    from concurrent.futures import Future as StdFuture
    from types import TracebackType

    from ._future import Future
    from ._progress import ProgressOption
    from ._stats import Statistics
    from ._types import Backend, P, T

__all__ = ["Executor"]


@runtime_checkable
class Executor(MakesPrimitives, Protocol):
    """What every unirun executor (and ``options()`` view) provides.

    Annotate with it; do not branch on ``isinstance``, which only proves that the
    method names exist.
    """

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
        """Schedule ``fn(*args, **kwargs)``; return a Future at once."""
        ...

    @overload
    def map(
        self,
        fn: Callable[..., Awaitable[T]],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
        progress: ProgressOption = None,
    ) -> Iterator[T]: ...

    @overload
    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
        progress: ProgressOption = None,
    ) -> Iterator[T]: ...

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
        progress: ProgressOption = None,
    ) -> Iterator[Any]:
        """Apply ``fn`` to the items of ``iterables``; results in input order."""
        ...

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
        *futures_or_awaitables: StdFuture[T],
        return_exceptions: Literal[False] = False,
        progress: ProgressOption = None,
    ) -> Future[list[T]]: ...

    @overload
    def gather(
        self,
        *futures_or_awaitables: StdFuture[Any] | Awaitable[Any],
        return_exceptions: bool = False,
        progress: ProgressOption = None,
    ) -> Future[list[Any]]: ...

    def gather(
        self,
        *futures_or_awaitables: StdFuture[Any] | Awaitable[Any],
        return_exceptions: bool = False,
        progress: ProgressOption = None,
    ) -> Future[list[Any]]:
        """Return a Future of the list of all results."""
        ...

    def options(
        self,
        *,
        timeout: float | None = None,
        name: str | None = None,
        backend: Backend | None = None,
    ) -> Executor:
        """Return a view whose tasks carry these options."""
        ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks and release the workers."""
        ...

    def statistics(self) -> Statistics:
        """A snapshot of the executor's tasks and workers."""
        ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> Any: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> Any: ...
