"""The Dask backend's Queue: pickled items on the scheduler.

Items wait in one ``distributed.Queue``; a bounded queue adds one of "slot"
tokens (``put`` takes a slot, ``get`` gives it back), and "unfinished" tokens
count the items ``task_done`` has not yet marked, for ``join``.
"""

from __future__ import annotations

import math
import pickle
import queue
import time
import uuid
from typing import TYPE_CHECKING, Any, Final, TypeVar

import cloudpickle

from ..._errors import TransferError
from ..._sync import Queue
from ..._sync.messages import MESSAGES, wait_timeout
from ..._sync.waiting import NOT_YET, take_in_thread
from .remote import off_pool, scheduler_address
from .tokens import TOKEN, Tokens, take, take_async

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskQueue"]

T = TypeVar("T")

#: What ``join`` sleeps between looks at the unfinished count, at most.
_JOIN_POLL: Final = 0.05


class DaskQueue(Queue[T]):
    """A :class:`unirun.Queue` held by the Dask scheduler.

    ``shutdown()`` is not available on Dask yet: it raises
    :class:`NotImplementedError`.
    """

    def shutdown(self, immediate: bool = False) -> None:
        """Not on the dask backend yet."""
        raise NotImplementedError(
            "Queue.shutdown() is not available on the dask backend yet"
        )

    def __init__(self, client: distributed.Client, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        name = f"unirun-queue-{uuid.uuid4().hex}"
        at = scheduler_address(client)
        self._items = Tokens(f"{name}-items", at, client=client)
        self._unfinished = Tokens(f"{name}-unfinished", at, client=client)
        # queue.Queue(2.5) holds 3 items: full once qsize() >= maxsize.
        slots = math.ceil(maxsize) if maxsize > 0 else 0
        self._slots = (
            Tokens(f"{name}-slots", at, slots, client, fill=slots) if slots else None
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_queue,
            (self.maxsize, self._items, self._unfinished, self._slots),
        )

    def qsize(self) -> int:
        return self._items.count()

    def empty(self) -> bool:
        return not self._items.count()

    def full(self) -> bool:
        return 0 < self.maxsize <= self._items.count()

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        data = _dumps(item)
        if self._slots is not None:
            if not block:
                timeout = 0
            elif timeout is not None and timeout < 0:
                raise ValueError(MESSAGES["queue_negative"])
            if _take_bounded(self._slots, timeout) is NOT_YET:
                raise queue.Full
        self._add(data)

    def _add(self, data: bytes) -> None:
        """Add one pickled item (its slot, if bounded, already taken)."""
        try:
            self._unfinished.give(TOKEN)  # first: a get may task_done at once
            self._items.give(data)
        except BaseException:
            if self._slots is not None:
                self._slots.give(TOKEN)
            raise

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        if not block:
            timeout = 0
        elif timeout is not None and timeout < 0:
            raise ValueError(MESSAGES["queue_negative"])
        data = _take_bounded(self._items, timeout)
        if data is NOT_YET:
            raise queue.Empty
        return self._taken(data)

    def _taken(self, data: bytes) -> T:
        if self._slots is not None:
            self._slots.give(TOKEN)
        try:
            item: T = pickle.loads(data)
        except BaseException as exc:
            # The item is gone: do not leave join() waiting for its task_done().
            self.task_done()
            exc.add_note(
                "unirun: a queue item could not be rebuilt in this process and "
                "was dropped"
            )
            raise
        return item

    def task_done(self) -> None:
        if self._unfinished.take_now() is NOT_YET:
            raise ValueError(MESSAGES["task_done"])

    def join(self) -> None:
        while not self._wait_joined(None):
            pass

    def _wait_joined(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` until every item is done; True once it is."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.001
        with off_pool():
            while self._unfinished.count():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                time.sleep(pause if left is None else min(pause, left))
                pause = min(2 * pause, _JOIN_POLL)
        return True

    async def async_put(self, item: T) -> None:
        data = _dumps(item)
        if self._slots is not None:
            await take_async(self._slots)
        self._add(data)

    async def async_get(self) -> T:
        return self._taken(await take_async(self._items))

    async def async_join(self) -> None:
        if self._unfinished.count():
            await take_in_thread(self._wait_joined)

    def __repr__(self) -> str:
        return f"<unirun.Queue maxsize={self.maxsize} (on a Dask cluster)>"


def _rebuild_queue(
    maxsize: int, items: Tokens, unfinished: Tokens, slots: Tokens | None
) -> DaskQueue[Any]:
    q: DaskQueue[Any] = DaskQueue.__new__(DaskQueue)
    q.maxsize = maxsize
    q._items, q._unfinished, q._slots = items, unfinished, slots
    return q


def _dumps(item: object) -> bytes:
    # By value where needed (lambdas, classes of __main__), as tasks travel.
    try:
        data: bytes = cloudpickle.dumps(item, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise TransferError(
            f"cannot put {type(item).__name__} on a queue of a Dask cluster: it "
            f"cannot be pickled ({exc})"
        ) from exc
    return data


def _take_bounded(tokens: Tokens, timeout: float | None) -> Any:
    """:func:`take`, refusing a time-out too long to wait for once it must wait,
    with ``OverflowError``, as ``queue.Queue`` does."""
    if timeout is not None and timeout > 0:
        got = take(tokens, 0)
        if got is not NOT_YET:
            return got
        wait_timeout(timeout)
    return take(tokens, timeout)
