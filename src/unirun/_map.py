"""The iterator ``Executor.map`` returns: ordered results for ``for`` and ``async for``.

It follows ``concurrent.futures.Executor.map`` exactly: the time-out counts from
the call to ``map``; a failed, timed-out or abandoned iteration cancels every task
not yet started; ``buffersize`` (Python 3.14) bounds how many tasks are submitted
ahead of the consumer.
"""

from __future__ import annotations

import itertools
import math
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Protocol

import anyio

from ._call import ChunkResult
from ._completion import wait_done
from ._future import Future
from ._progress import TrackedFutures, map_chunk, map_item
from ._types import T

if TYPE_CHECKING:
    import concurrent.futures as cf
    from typing import Self

    from ._progress import Progress

__all__ = ["BatchFeeder", "MapIterator", "batched", "read_all"]

# submit_one(args_or_chunk) -> future; None once the executor is gone.
Submitter = Callable[[Any], "cf.Future[Any] | None"]


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter)."""
    # itertools.batched is Python 3.12+.
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def read_all(items: Iterator[T], submit: Callable[[T], object]) -> list[T]:
    """``list(items)`` for a map that reads its input before it submits; if the
    input raises, ``submit`` each item read first, as the stdlib's map has."""
    read: list[T] = []
    try:
        read.extend(items)  # what it appended before an error stays
    except BaseException:
        for item in read:
            submit(item)
        raise
    return read


class BatchFeeder(Protocol):
    """What feeds a :class:`MapIterator` chunk by chunk (:class:`AdaptiveBatches`,
    auto's routed map): it queues one future per chunk in ``slots``."""

    slots: deque[cf.Future[Any]]

    def start(self) -> None:
        """Queue the first chunks (called once, before the iteration)."""

    def close(self) -> None:
        """Stop queueing chunks."""


class MapIterator(Generic[T]):
    """Results of :meth:`Executor.map`, in input order.

    Iterate with ``for`` in sync code or ``async for`` in async code (each step
    then awaits without blocking the event loop). Dropping or closing it before
    the end cancels the tasks that have not started.

    With a :class:`~unirun._progress.Progress`, each item counts when its task
    (or its chunk) finishes; the progress is closed when the iteration ends,
    fails or is closed.
    """

    _progress: Progress | None = None

    @classmethod
    def of_batches(
        cls,
        batches: BatchFeeder,
        *,
        end_time: float | None,
        keep_alive: object,
        progress: Progress | None,
        total: int | None,
    ) -> MapIterator[T]:
        """The results of a map whose chunks ``batches`` submits as it goes."""
        return cls(
            lambda item: None,
            iter(()),
            end_time=end_time,
            buffersize=None,
            chunked=True,
            keep_alive=keep_alive,
            batches=batches,
            progress=progress,
            total=total,
        )

    def __init__(
        self,
        submit_one: Submitter,
        work: Iterator[Any],
        *,
        end_time: float | None,
        buffersize: int | None,
        chunked: bool,
        keep_alive: object,
        batches: BatchFeeder | None = None,
        progress: Progress | None = None,
        total: int | None = None,
    ) -> None:
        self._end_time = end_time
        self._chunked = chunked
        self._values: deque[Any] = deque()
        self._error: BaseException | None = None
        self._fs: deque[cf.Future[Any]] = deque()
        self._started = False
        self._batches = batches
        self._work: Iterator[Any] | None = None
        self._submit: Submitter | None = None
        if progress is not None:
            self._progress = progress
            self._fs = TrackedFutures(progress, map_chunk if chunked else map_item)
            # First: a display that fails to open fails the map before any
            # of its tasks is submitted.
            progress.start(total)
        try:
            self._submit_first(submit_one, work, buffersize, keep_alive)
        except BaseException:
            self._finish()
            raise

    def _submit_first(
        self,
        submit_one: Submitter,
        work: Iterator[Any],
        buffersize: int | None,
        keep_alive: object,
    ) -> None:
        """Submit what the map submits at the call (the first chunks, every
        item, or ``buffersize`` of them)."""
        batches = self._batches
        if batches is not None:
            if self._progress is not None:
                batches.slots = self._fs  # each chunk counts as it arrives
            self._fs = batches.slots
            batches.start()
        elif buffersize is None:
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
        try:
            item = next(self._work, None)
        except BaseException:
            # As 3.14's map, a generator: the input's error ends it.
            self.close()
            raise
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
        # Fast path: the rest of a chunk already here (most items of a big map).
        if self._values:
            return self._values.popleft()  # type: ignore[no-any-return]
        return self._next_slow()

    def _next_slow(self) -> T:
        self._started = True
        try:
            value = self._step()
        except StopIteration as exc:
            # A task's own StopIteration must not end the iteration: the stdlib's
            # map is a generator, which turns it into this error (PEP 479).
            raise RuntimeError("generator raised StopIteration") from exc
        if value is _NOTHING:
            raise StopIteration
        return value  # type: ignore[no-any-return]

    def _step(self) -> Any:
        """The next value, or ``_NOTHING`` at the end."""
        while True:
            value = self._next_value()
            if value is not _NOTHING:
                return value
            if not self._fs:
                self._finish()
                return _NOTHING
            self._refill()
            future = self._fs.popleft()
            try:
                result = future.result(self._remaining())
            except BaseException:
                self._count(future)
                self._cancel(future)
                self.close()
                raise
            else:
                self._count(future)
            finally:
                del future
            value = self._unpack(result)
            if value is not _NOTHING:
                return value

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        self._started = True
        try:
            value = await self._async_step()
        except StopAsyncIteration as exc:  # a task's own: as an async generator
            raise RuntimeError("async generator raised StopAsyncIteration") from exc
        if value is _NOTHING:
            raise StopAsyncIteration
        return value  # type: ignore[no-any-return]

    async def _async_step(self) -> Any:
        """:meth:`_step` for ``async for`` (a task's StopIteration comes out of
        this coroutine as a RuntimeError, PEP 479)."""
        while True:
            value = self._next_value()
            if value is not _NOTHING:
                return value
            if not self._fs:
                self._finish()
                return _NOTHING
            self._refill()
            future = self._fs.popleft()
            remaining = self._remaining()
            if remaining is not None and math.isnan(remaining):
                remaining = 0  # as future.result(nan) in __next__: expired
            try:
                with anyio.move_on_after(remaining):
                    await wait_done(future)
            except BaseException:
                # The awaiting coroutine was cancelled: nobody reads the results,
                # so running tasks stop too, where their backend can stop them.
                self._count(future)
                self._abandon(future)
                self.close(abandon=True)
                raise
            try:
                if not future.done():
                    raise TimeoutError
                result = future.result(0)
            except BaseException:  # as in __next__: the rest that has not started
                self._count(future)
                self._cancel(future)
                self.close()
                raise
            self._count(future)
            value = self._unpack(result)
            if value is not _NOTHING:
                return value

    def _count(self, future: cf.Future[Any]) -> None:
        # The consumer may see a result before its done callback has counted it.
        if self._progress is not None:
            self._progress.arrived(future, map_chunk if self._chunked else map_item)

    def _finish(self) -> None:
        if self._progress is not None:
            self._progress.close()

    @staticmethod
    def _cancel(future: cf.Future[Any]) -> None:
        """Cancel ``future`` if its task has not started; a running one runs on.

        As the stdlib's map, whose ``cancel()`` only ever stops pending tasks
        (on the coroutine backend ``cancel()`` also stops a running one).
        """
        if isinstance(future, Future):
            future._cancel_pending()
        else:
            future.cancel()

    @staticmethod
    def _abandon(future: cf.Future[Any]) -> None:
        if isinstance(future, Future):
            future._abandon()
        else:
            future.cancel()

    def close(self, *, abandon: bool = False) -> None:
        """Stop the iteration: it yields nothing more, and once it began, every
        task that has not started is cancelled.

        Closed before its first step, as the stdlib's map (a generator that never
        ran), it leaves the tasks submitted so far to run.

        Args:
            abandon: also stop running tasks where the backend can (used when an
                awaiting coroutine is cancelled).
        """
        self._work = None
        self._finish()
        self._values.clear()
        fs, self._fs = list(self._fs), deque()
        if not self._started:
            return  # a chunked map goes on cutting its chunks, unread
        if self._batches is not None:
            self._batches.close()
        for future in fs:
            if abandon:
                self._abandon(future)
            else:
                self._cancel(future)

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self.close()

    def __del__(self) -> None:
        # Like an abandoned generator: only an iteration that began is closed.
        if self._started and self._fs:
            self.close()
        else:
            self._finish()


_NOTHING: Any = object()
