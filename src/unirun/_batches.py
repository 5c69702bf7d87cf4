"""``map(chunksize=None)``: chunks cut as earlier ones finish, sized from their
run times (see :class:`AdaptiveBatches`)."""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from ._call import ChunkResult
from ._follow import copy_outcome
from ._future import Future

if TYPE_CHECKING:
    import concurrent.futures as cf
    from collections.abc import Callable

__all__ = ["AdaptiveBatches"]


class AdaptiveBatches:
    """Feeds a :class:`MapIterator` with chunks sized from measured run times.

    Used for ``map(..., chunksize=None)`` on backends that batch. The first chunks
    hold one item each; every finished chunk reports how long its worker spent per
    item, and the next chunk is sized to about :attr:`TARGET` seconds of work, but
    no more than a ``1 / (2 * workers)`` share of what is left (unless that share is
    under a quarter of the target), so the tail stays balanced across workers, and
    no more than four times the items measured so far, so that a few cheap items
    first do not send the rest to one worker. About two chunks per worker are in flight
    at a time. Batches meant for one worker (``widen_to``: items too small for any
    hand-off) spread over that many once an item turns out to take a quarter of
    the target or more.

    Order is kept because slices are cut and queued under one lock; each queued
    slot is completed only after its chunk's successor was queued, so a consumer
    that reaches the end of the queue has really reached the end of the work.
    """

    #: Seconds of worker time a chunk aims at: dispatch costs a small fraction.
    TARGET = 0.02

    def __init__(
        self,
        submit_chunk: Callable[[list[tuple[Any, ...]]], cf.Future[Any]],
        items: list[tuple[Any, ...]],
        workers: int,
        widen_to: int | None = None,
    ) -> None:
        self._submit_chunk = submit_chunk
        self._items = items
        self._position = 0
        self._workers = max(1, workers)
        self._widen_to = widen_to
        self._per_item: float | None = None
        self._measured = 0  # the items whose run times _per_item saw
        # Re-entrant only so that flush() can tell it is called (by a signal
        # handler's shutdown) on the thread that holds it: it never nests.
        self._lock = threading.RLock()
        self._started = self._closed = self._flushing = False
        self.slots: deque[cf.Future[Any]] = deque()

    def start(self) -> None:
        """Queue the first chunks (called once, before the iteration).

        Raises:
            Exception: what submitting the first chunk raised (``RuntimeError``
                after shutdown), at the call to ``map`` as in the stdlib.
        """
        self._started = True  # the slots are the map's own from here on
        self._dispatch(raising=True)
        for _ in range(2 * self._workers - 1):
            self._dispatch()

    def close(self) -> None:
        """Stop cutting new chunks."""
        self._closed = True

    def flush(self) -> None:
        """Queue every item left at once: the executor is shutting down, and
        would refuse the chunks cut later, though it accepted their items.

        Not before :meth:`start` (the map then raises at its call, shut down),
        nor on a thread that is cutting a chunk of this map (a signal handler's
        shutdown): its rest is refused then, failing in its place.
        """
        if not self._started or self._lock._is_owned():  # type: ignore[attr-defined]  # an RLock's
            return
        self._flushing = True
        while not self._closed and self._position < len(self._items):
            self._dispatch()

    def _size(self) -> int:
        if self._flushing:  # each chunk a share of the rest, for balance
            remaining = len(self._items) - self._position
            return max(1, -(-remaining // (2 * self._workers)))
        if self._per_item is None:
            return 1
        per_item = max(self._per_item, 1e-7)
        remaining = len(self._items) - self._position
        share = remaining // (2 * self._workers)
        # Cut the tail finer for balance, but not below a quarter of the target:
        # a few milliseconds of imbalance cost less than more round trips.
        floor = int(self.TARGET / 4 / per_item)
        size = min(int(self.TARGET / per_item), max(share, floor))
        # At most four times the items measured: one cheap item says little of
        # the rest, which one chunk would otherwise take to one worker.
        return max(1, min(size, 4 * self._measured))

    def _widened(self) -> int:
        """How many more chunks to put in flight now that the items proved long
        enough to spread (once: see ``widen_to``)."""
        with self._lock:
            wider = self._widen_to
            per_item = self._per_item
            if wider is None or per_item is None or per_item * 4 < self.TARGET:
                return 0
            self._widen_to = None
            more = 2 * (wider - self._workers)
            self._workers = max(self._workers, wider)
            return max(0, more)

    def _dispatch(self, *, raising: bool = False) -> None:
        with self._lock:
            if self._closed or self._position >= len(self._items):
                return
            size = self._size()
            chunk = self._items[self._position : self._position + size]
            self._position += size
            slot: Future[Any] = Future()
            self.slots.append(slot)
            try:
                real = self._submit_chunk(chunk)
            except BaseException as exc:
                self._closed = True
                if raising:
                    self.slots.pop()
                    raise
                slot.set_exception(exc)
                return
        slot.add_done_callback(lambda s: _forward_cancel(s, real))
        real.add_done_callback(lambda r: self._on_done(r, slot, len(chunk)))

    def _on_done(self, real: cf.Future[Any], slot: Future[Any], count: int) -> None:
        if not real.cancelled() and real.exception() is None:
            result = real.result()
            if isinstance(result, ChunkResult) and result.values:
                per_item = result.elapsed / max(1, len(result.values))
                with self._lock:
                    old = self._per_item
                    self._per_item = per_item if old is None else (old + per_item) / 2
                    self._measured += len(result.values)
        self._dispatch()  # before completing the slot: see the class docstring
        for _ in range(self._widened()):
            self._dispatch()
        copy_outcome(real, slot)


def _forward_cancel(slot: cf.Future[Any], real: cf.Future[Any]) -> None:
    # As for unbatched maps: closing the iteration cancels what has not started;
    # a chunk already running finishes.
    if slot.cancelled():
        real.cancel()
