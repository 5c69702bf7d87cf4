"""The iterator ``Executor.map`` returns: ordered results for ``for`` and ``async for``.

It follows ``concurrent.futures.Executor.map`` exactly: the time-out counts from
the call to ``map``; a failed, timed-out or abandoned iteration cancels every task
not yet started; ``buffersize`` (Python 3.14) bounds how many tasks are submitted
ahead of the consumer.
"""

from __future__ import annotations

import itertools
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic

import anyio

from ._call import ChunkResult
from ._future import Future, wait_done
from ._types import T

if TYPE_CHECKING:
    import concurrent.futures as cf
    from typing import Self

__all__ = ["MapIterator"]

# submit_one(args_or_chunk) -> future; None once the executor is gone.
Submitter = Callable[[Any], "cf.Future[Any] | None"]


class MapIterator(Generic[T]):
    """Results of :meth:`Executor.map`, in input order.

    Iterate with ``for`` in sync code or ``async for`` in async code (each step
    then awaits without blocking the event loop). Dropping or closing it before
    the end cancels the tasks that have not started.
    """

    def __init__(
        self,
        submit_one: Submitter,
        work: Iterator[Any],
        *,
        end_time: float | None,
        buffersize: int | None,
        chunked: bool,
        keep_alive: object,
    ) -> None:
        self._end_time = end_time
        self._chunked = chunked
        self._values: deque[Any] = deque()
        self._error: BaseException | None = None
        self._fs: deque[cf.Future[Any]] = deque()
        self._started = False
        if buffersize is None:
            self._work: Iterator[Any] | None = None
            self._submit: Submitter | None = None
            for item in work:
                self._fs.append(self._checked(submit_one(item)))
        else:
            # As in 3.14, only a weak reference keeps the executor: an iterator
            # that outlives it stops submitting instead of keeping it alive.
            ref = weakref.ref(keep_alive)

            def submit_while_alive(item: Any) -> cf.Future[Any] | None:
                return submit_one(item) if ref() is not None else None

            self._work = work
            self._submit = submit_while_alive
            for item in itertools.islice(work, buffersize):
                self._fs.append(self._checked(submit_one(item)))

    @staticmethod
    def _checked(future: cf.Future[Any] | None) -> cf.Future[Any]:
        if future is None:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return future

    def _refill(self) -> None:
        if self._work is None or self._submit is None:
            return
        item = next(self._work, None)
        if item is None:
            self._work = None
            return
        future = self._submit(item)
        if future is None:
            self._work = None
        else:
            self._fs.append(future)

    def _remaining(self) -> float | None:
        if self._end_time is None:
            return None
        return self._end_time - time.monotonic()

    def _unpack(self, result: Any) -> Any:
        if not self._chunked:
            return result
        assert isinstance(result, ChunkResult)
        self._values.extend(result.values)
        self._error = result.error
        return self._next_value()

    def _next_value(self) -> Any:
        if self._values:
            return self._values.popleft()
        error, self._error = self._error, None
        if error is not None:
            self.close()
            raise error
        return _NOTHING

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        self._started = True
        while True:
            value = self._next_value()
            if value is not _NOTHING:
                return value  # type: ignore[no-any-return]
            if not self._fs:
                raise StopIteration
            self._refill()
            future = self._fs.popleft()
            try:
                result = future.result(self._remaining())
            except BaseException:
                future.cancel()
                self.close()
                raise
            finally:
                del future
            value = self._unpack(result)
            if value is not _NOTHING:
                return value  # type: ignore[no-any-return]

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        self._started = True
        while True:
            value = self._next_value()
            if value is not _NOTHING:
                return value  # type: ignore[no-any-return]
            if not self._fs:
                raise StopAsyncIteration
            self._refill()
            future = self._fs.popleft()
            try:
                with anyio.move_on_after(self._remaining()):
                    await wait_done(future)
                if not future.done():
                    raise TimeoutError
                result = future.result(0)
            except BaseException:
                self._abandon(future)
                self.close(abandon=True)
                raise
            value = self._unpack(result)
            if value is not _NOTHING:
                return value  # type: ignore[no-any-return]

    @staticmethod
    def _abandon(future: cf.Future[Any]) -> None:
        if isinstance(future, Future):
            future._abandon()
        else:
            future.cancel()

    def close(self, *, abandon: bool = False) -> None:
        """Stop the iteration: cancel every task that has not started.

        Args:
            abandon: also stop running tasks where the backend can (used when an
                awaiting coroutine is cancelled).
        """
        self._work = None
        self._values.clear()
        fs, self._fs = self._fs, deque()
        for future in fs:
            if abandon:
                self._abandon(future)
            else:
                future.cancel()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self.close()

    def __del__(self) -> None:
        # Like an abandoned generator: only an iteration that began is closed.
        if self._started and self._fs:
            self.close()


_NOTHING: Any = object()
MapIterator.__module__ = "unirun"
