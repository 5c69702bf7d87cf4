"""The Dask backend's Queue: pickled items on the scheduler.

Items wait in one ``distributed.Queue``; a bounded queue adds one of "slot"
tokens (``put`` takes a slot, ``get`` gives it back), and "unfinished" tokens
count the items ``task_done`` has not yet marked, for ``join``. A token in a
"shut" queue marks it shut down: ``put`` looks there first (one more round
trip), and a blocked ``put`` or ``get`` looks there between waits of
``_SHUT_POLL`` seconds, so a shutdown wakes it within that time. A token in a
"drained" queue, given before the "shut" one, marks an immediate shutdown: a
``put`` whose item may have landed after that shutdown's drain looks there once
it is added (one more round trip), and drains again.
"""

from __future__ import annotations

import math
import pickle
import queue
import time
import uuid
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..._sync import Queue, QueueShutDown
from ..._sync.messages import MESSAGES, wait_timeout
from ..._sync.waiting import NOT_YET, take_in_thread
from .remote import off_pool, scheduler_address
from .tokens import TOKEN, Tokens, dumps_by_value, take, take_async

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskQueue"]

T = TypeVar("T")

#: What ``join`` sleeps between looks at the unfinished count, at most.
_JOIN_POLL: Final = 0.05
#: How often a blocked ``put`` or ``get`` looks whether the queue was shut down.
_SHUT_POLL: Final = 0.25


class DaskQueue(Queue[T]):
    """A :class:`unirun.Queue` held by the Dask scheduler."""

    def __init__(self, client: distributed.Client, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        name = f"unirun-queue-{uuid.uuid4().hex}"
        at = scheduler_address(client)
        self._items = Tokens(f"{name}-items", at, client=client)
        self._unfinished = Tokens(f"{name}-unfinished", at, client=client)
        # A token here once the queue is shut down; in _drained once it is shut
        # down immediately (given first).
        self._shut = Tokens(f"{name}-shut", at, client=client)
        self._drained = Tokens(f"{name}-drained", at, client=client)
        # queue.Queue(2.5) holds 3 items: full once qsize() >= maxsize.
        slots = math.ceil(maxsize) if maxsize > 0 else 0
        self._slots = (
            Tokens(f"{name}-slots", at, slots, client, fill=slots) if slots else None
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_queue,
            (
                self.maxsize,
                self._items,
                self._unfinished,
                self._shut,
                self._drained,
                self._slots,
            ),
        )

    def qsize(self) -> int:
        return self._items.count()

    def empty(self) -> bool:
        return not self._items.count()

    def full(self) -> bool:
        return 0 < self.maxsize <= self._items.count()

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        data = dumps_by_value(item, "put {} on a queue of a Dask cluster")
        if self._is_shut():
            raise QueueShutDown
        if self._slots is not None:
            if not block:
                timeout = 0
            elif timeout is not None and timeout < 0:
                raise ValueError(MESSAGES["queue_negative"])
            self._take_unless_shut(self._slots, timeout, queue.Full, recheck=True)
        self._add(data)

    def _add(self, data: bytes) -> None:
        """Add one pickled item (its slot, if bounded, already taken), and drain
        the queue again if an immediate shutdown may have drained it before the
        item landed: the put then took place before that shutdown."""
        try:
            self._unfinished.give(TOKEN)  # first: a get may task_done at once
            self._items.give(data)
        except BaseException:
            if self._slots is not None:
                self._slots.give(TOKEN)
            raise
        if self._drained.count():
            self._drain()

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        if not block:
            timeout = 0
        elif timeout is not None and timeout < 0:
            if self._is_shut() and self.empty():
                raise QueueShutDown
            raise ValueError(MESSAGES["queue_negative"])
        return self._taken(self._take_unless_shut(self._items, timeout, queue.Empty))

    def _is_shut(self) -> bool:
        return bool(self._shut.count())

    @property
    def is_shutdown(self) -> bool:  # type: ignore[override]  # read-only here
        """Whether :meth:`shutdown` has been called (as 3.13's attribute)."""
        return self._is_shut()

    @property
    def unfinished_tasks(self) -> int:  # type: ignore[override]  # read-only here
        """Items put and not yet marked done (as :class:`queue.Queue`'s)."""
        return self._unfinished.count()

    def _take_unless_shut(
        self,
        tokens: Tokens,
        timeout: float | None,
        give_up: type[Exception],
        recheck: bool = False,
    ) -> Any:
        """Take from ``tokens`` within ``timeout`` (None: no limit).

        Raises ``give_up`` once the time is up, :class:`QueueShutDown` if it
        must wait and the queue is (or becomes) shut down, and, as
        ``queue.Queue``, ``OverflowError`` for a time-out too long to wait for.
        ``recheck``: a take is given back if the queue was shut down meanwhile
        (a slot freed by an immediate shutdown, even one taken at once).
        """
        got = tokens.take_now()
        if got is not NOT_YET:
            return self._unless_shut(tokens, got) if recheck else got
        if self._is_shut():
            return self._last_item(tokens)
        if timeout is not None and not timeout > 0:
            raise give_up
        deadline = None
        if timeout is not None:
            deadline = time.monotonic() + wait_timeout(timeout)
        with off_pool():
            while True:
                left = _SHUT_POLL
                if deadline is not None:
                    left = min(left, deadline - time.monotonic())
                    if left <= 0:
                        raise give_up
                got = take(tokens, left)
                if got is not NOT_YET:
                    break
                if self._is_shut():
                    return self._last_item(tokens)
        return self._unless_shut(tokens, got) if recheck else got

    def _unless_shut(self, tokens: Tokens, got: Any) -> Any:
        """``got``, taken from ``tokens``; given back if the queue is shut down."""
        if self._is_shut():
            tokens.give(got)
            raise QueueShutDown
        return got

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

    def _last_item(self, tokens: Tokens) -> Any:
        """Found shut down after a take found nothing: an item put meanwhile,
        before the shutdown, is still a getter's (one more look); else raise
        :class:`QueueShutDown`."""
        if tokens is self._items:
            got = tokens.take_now()
            if got is not NOT_YET:
                return got
        raise QueueShutDown

    def shutdown(self, immediate: bool = False) -> None:
        if immediate and not self._drained.count():
            self._drained.give(TOKEN)  # before the shut token: see _add
        if not self._is_shut():
            self._shut.give(TOKEN)
        if immediate:
            self._drain()

    def _drain(self) -> None:
        """Drop every item, each counted done, as 3.13's immediate shutdown."""
        while self._items.take_now() is not NOT_YET:
            if self._slots is not None:
                self._slots.give(TOKEN)
            self._unfinished.take_now()

    def _check_shut(self) -> None:
        if self._is_shut():
            raise QueueShutDown

    async def async_put(self, item: T) -> None:
        data = dumps_by_value(item, "put {} on a queue of a Dask cluster")
        self._check_shut()
        if self._slots is not None:
            await take_async(self._slots, self._check_shut)
            try:
                self._check_shut()
            except QueueShutDown:
                self._slots.give(TOKEN)
                raise
        self._add(data)

    async def async_get(self) -> T:
        try:
            data = await take_async(self._items, self._check_shut)
        except QueueShutDown:
            data = self._last_item(self._items)
        return self._taken(data)

    async def async_join(self) -> None:
        if self._unfinished.count():
            await take_in_thread(self._wait_joined)

    def __repr__(self) -> str:
        return f"<unirun.Queue maxsize={self.maxsize} (on a Dask cluster)>"


def _rebuild_queue(
    maxsize: int,
    items: Tokens,
    unfinished: Tokens,
    shut: Tokens,
    drained: Tokens,
    slots: Tokens | None,
) -> DaskQueue[Any]:
    q: DaskQueue[Any] = DaskQueue.__new__(DaskQueue)
    q.maxsize = maxsize
    q._items, q._unfinished, q._slots = items, unfinished, slots
    q._shut, q._drained = shut, drained
    return q
