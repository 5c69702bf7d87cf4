"""The batches behind an auto ``map``: probe the first item, route the rest.

map(fn, items) -> first item: submitted as a probe (or routed if known)
               -> when it is done, the rest as a whole, by verdict:
                  process chunks (AdaptiveBatches, or fixed chunksize)
                  | one thread's batches (inline-sized items)
                  | one task per item (threads, or through submit)
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from .._call import ChunkResult, run_chunk
from .._future import Future
from .._map import AdaptiveBatches
from .classify import BUSY_MIN

if TYPE_CHECKING:
    import concurrent.futures as cf
    from collections.abc import Callable

    from .._base import BaseExecutor
    from .._options import TaskOptions
    from .executor import AutoExecutor

__all__ = ["RoutedMap"]


class RoutedMap:
    """Feeds a :class:`MapIterator` for an auto ``map``: probe first, route the rest.

    Has the interface of :class:`AdaptiveBatches` (``slots``, ``start``,
    ``close``). The probe's slot is completed only after the rest's first slots
    were queued, so a consumer that reaches the end of the queue is at the end.
    """

    def __init__(
        self,
        auto: AutoExecutor,
        fn: Callable[..., Any],
        items: list[tuple[Any, ...]],
        options: TaskOptions,
        chunksize: int | None,
    ) -> None:
        self._auto = auto
        self._fn = fn
        self._items = items
        self._options = options
        self._chunksize = chunksize
        self._closed = False
        self._inner: AdaptiveBatches | None = None
        self.slots: deque[cf.Future[Any]] = deque()

    def start(self) -> None:
        if not self._items:
            return
        auto, fn = self._auto, self._fn
        if auto._is_settled(fn):
            self._route_rest(self._items)
            return
        first = auto._dispatch(fn, self._items[0], {}, self._options)
        slot: Future[Any] = Future()
        self.slots.append(slot)
        slot.add_done_callback(lambda s: s.cancelled() and first.cancel())
        first.add_done_callback(lambda f: self._after_first(f, slot))

    def close(self) -> None:
        self._closed = True
        if self._inner is not None:
            self._inner.close()

    def _after_first(self, first: cf.Future[Any], slot: Future[Any]) -> None:
        try:
            if not first.cancelled() and first.exception() is None:
                self._route_rest(self._items[1:])
        except BaseException as exc:
            slot._set_exception_if_pending(exc)
            return
        if first.cancelled():
            slot.cancel()
        elif (error := first.exception()) is not None:
            slot._set_result_if_pending(ChunkResult([], error))
        else:
            slot._set_result_if_pending(ChunkResult([first.result()], None))

    def _route_rest(self, rest: list[tuple[Any, ...]]) -> None:
        if self._closed or not rest:
            return
        auto, fn, options = self._auto, self._fn, self._options
        plan = auto._map_plan(fn, rest)
        if plan == "process":
            verdict = auto.explain(fn)
            wide = verdict is not None and verdict.busy < BUSY_MIN
            pool = auto._process_executor(wide)
            if self._chunksize is not None:
                for start in range(0, len(rest), self._chunksize):
                    chunk = rest[start : start + self._chunksize]
                    self.slots.append(pool._submit(run_chunk, (fn, chunk), {}, options))
                return
            self._adaptive(pool, rest, pool._parallelism())
        elif plan == "batch":
            self._adaptive(auto._thread_executor(), rest, 1)
        elif plan == "thread":
            threads = auto._thread_executor()
            for args in rest:
                self.slots.append(threads._submit(run_chunk, (fn, [args]), {}, options))
        else:
            for args in rest:
                self.slots.append(_as_chunk(auto._dispatch(fn, args, {}, options)))

    def _adaptive(
        self, pool: BaseExecutor, rest: list[tuple[Any, ...]], workers: int
    ) -> None:
        fn, options = self._fn, self._options
        inner = AdaptiveBatches(
            lambda chunk: pool._submit(run_chunk, (fn, chunk), {}, options),
            rest,
            workers,
        )
        inner.slots = self.slots
        self._inner = inner
        inner.start()


def _as_chunk(future: cf.Future[Any]) -> Future[Any]:
    """A Future of a one-value :class:`ChunkResult` that follows ``future``."""
    chunk: Future[Any] = Future()

    def copy(done: cf.Future[Any]) -> None:
        if done.cancelled():
            chunk.cancel()
        elif (error := done.exception()) is not None:
            chunk._set_result_if_pending(ChunkResult([], error))
        else:
            chunk._set_result_if_pending(ChunkResult([done.result()], None))

    chunk.add_done_callback(lambda c: c.cancelled() and future.cancel())
    future.add_done_callback(copy)
    return chunk
