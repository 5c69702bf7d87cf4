"""Queue: the type, and its in-process and process-shared implementations.

The in-process queue is a ``queue.Queue`` subclass whose changes wake event-loop
waiters. The shared one pickles items into a ring buffer in shared memory (no
feeder thread), with an overflow file for what the ring cannot hold.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
import queue
import struct
import sys
from abc import ABC, abstractmethod
from typing import Any, Final, Generic, NoReturn, TypeVar

import cloudpickle

from .._errors import TransferError
from .shm import (
    _MESSAGES,
    _SEM_MAX,
    _cond_wait,
    _new_sem,
    _notify_all,
    _open_sem,
    _pickled,
    _Segment,
    _sem_state,
    _SemLock,
    _Shared,
    _wait_timeout,
)
from .waiting import (
    NOT_YET,
    LoopWaiters,
    refuse_pickle,
    sending_to,
    take_in_thread,
)

T = TypeVar("T")


__all__ = [
    "DEFAULT_CAPACITY",
    "LocalQueue",
    "Queue",
    "SharedQueue",
]


class Queue(ABC, Generic[T]):
    """A FIFO queue: :class:`queue.Queue` plus an async face.

    Create one with ``executor.Queue(maxsize)``; ``maxsize <= 0`` means
    unbounded. A cancelled :meth:`async_get` loses no item and a cancelled
    :meth:`async_put` adds none.
    """

    __slots__ = ()

    maxsize: int

    @abstractmethod
    def qsize(self) -> int:
        """Return the approximate number of items in the queue."""

    @abstractmethod
    def empty(self) -> bool:
        """Return ``True`` if the queue is empty (approximately, as in stdlib)."""

    @abstractmethod
    def full(self) -> bool:
        """Return ``True`` if the queue is full (approximately, as in stdlib)."""

    @abstractmethod
    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item``, as :meth:`queue.Queue.put`.

        Raises:
            queue.Full: no room within ``timeout``, or at once if not ``block``.
            ValueError: a negative ``timeout``.
        """

    def put_nowait(self, item: T) -> None:
        """Put ``item`` if there is room now, else raise :class:`queue.Full`."""
        self.put(item, block=False)

    @abstractmethod
    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return an item, as :meth:`queue.Queue.get`.

        Raises:
            queue.Empty: nothing arrived within ``timeout``, or at once if not
                ``block``.
            ValueError: a negative ``timeout``.
        """

    def get_nowait(self) -> T:
        """Return an item if one is there now, else raise :class:`queue.Empty`."""
        return self.get(block=False)

    @abstractmethod
    def task_done(self) -> None:
        """Mark one fetched item as processed (see :meth:`join`).

        Raises:
            ValueError: called more times than items were put.
        """

    @abstractmethod
    def join(self) -> None:
        """Block until every item put has been marked done by :meth:`task_done`."""

    @abstractmethod
    async def async_put(self, item: T) -> None:
        """Put ``item``, waiting for room without blocking the event loop."""

    @abstractmethod
    async def async_get(self) -> T:
        """Remove and return an item, waiting without blocking the event loop."""

    @abstractmethod
    async def async_join(self) -> None:
        """Wait, without blocking the event loop, until every item is done."""


class LocalQueue(queue.Queue[T], Queue[T]):
    """A :class:`unirun.Queue` for threads and coroutines: a ``queue.Queue``."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self._getters = LoopWaiters()
        self._putters = LoopWaiters()
        self._joiners = LoopWaiters()

    # queue.Queue calls these with its mutex held, after each change.
    def _put(self, item: T) -> None:
        self.queue.append(item)
        if self._getters:
            self._getters.wake()

    def _get(self) -> T:
        item: T = self.queue.popleft()
        if self._putters:
            self._putters.wake()
        return item

    def task_done(self) -> None:
        super().task_done()
        if self._joiners and not self.unfinished_tasks:
            self._joiners.wake_all()

    if sys.version_info >= (3, 13):

        def shutdown(self, immediate: bool = False) -> None:
            """:meth:`queue.Queue.shutdown`, waking async waiters too."""
            super().shutdown(immediate)
            for waiters in (self._getters, self._putters, self._joiners):
                waiters.wake_all()

    def _try_get(self) -> T:
        try:
            return self.get(block=False)
        except queue.Empty:
            return NOT_YET  # type: ignore[no-any-return]

    async def async_get(self) -> T:
        try:
            return self.get(block=False)
        except queue.Empty:
            return await self._getters.wait_until(self._try_get)

    def _try_put(self, item: T) -> object:
        try:
            self.put(item, block=False)
        except queue.Full:
            return NOT_YET
        return None

    async def async_put(self, item: T) -> None:
        try:
            self.put(item, block=False)
        except queue.Full:
            await self._putters.wait_until(functools.partial(self._try_put, item))

    def _try_join(self) -> object:
        return None if not self.unfinished_tasks else NOT_YET

    async def async_join(self) -> None:
        await self._joiners.wait_until(self._try_join)

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)

    def __repr__(self) -> str:
        return (
            f"<unirun.Queue maxsize={self.maxsize} qsize={self.qsize()} "
            "(threads and coroutines)>"
        )


# Queue words: ring positions (bytes, ever increasing), counts, the join
# condition, and the read and write positions in the overflow file.
_HEAD, _TAIL, _COUNT, _UNFINISHED, _JOIN_WAITERS = 0, 1, 2, 3, 4
_OVERFLOW_READ, _OVERFLOW_WRITE = 6, 7
_HEADER_WORDS: Final = 8
_HEADER_BYTES: Final = 8 * _HEADER_WORDS
_LENGTH = struct.Struct("q")
#: Bytes of shared memory for queued items. The file is sparse: pages never
#: written cost nothing. Items that do not fit go to an overflow file.
DEFAULT_CAPACITY: Final = 1 << 20


#: Non-blocking tries before a get() goes to sleep: about 20 µs. When a producer
#: in another process is putting items every few microseconds, the consumer takes
#: them without sleeping, and the producer's post then needs no wake-up call.
_SPINS: Final = 128


def _take_mutex(mutex: _SemLock) -> None:
    """Take the queue's mutex, held by others for microseconds: try before sleeping."""
    if not mutex.acquire(False) and not _spin(mutex):
        mutex.acquire()


def _spin(sem: _SemLock) -> bool:
    """Try ``sem`` a few times without blocking; True once taken."""
    return any(sem.acquire(False) for _ in range(_SPINS))


class SharedQueue(_Shared, Queue[T]):
    """A :class:`unirun.Queue` shared with worker processes.

    ``put`` pickles the item into a ring buffer in shared memory itself (no
    feeder thread), so a ``get`` anywhere sees it as soon as ``put`` returns,
    and ``qsize``/``empty``/``full`` are exact, as with ``queue.Queue``. An item
    that does not fit in the free part of the ring, and every item after it
    until the reader catches up, is appended to an overflow file next to the
    ring instead: an unbounded queue never blocks or fails for lack of room.
    """

    def __init__(
        self, scope: str, maxsize: int = 0, *, capacity: int = DEFAULT_CAPACITY
    ) -> None:
        self.maxsize = maxsize
        self._capacity = capacity
        self._owners: list[object] = []
        self._mutex = self._own(_new_sem(1, 1))
        self._items = self._own(_new_sem(0, _SEM_MAX))
        # queue.Queue(2.5) holds 3 items: full once qsize() >= maxsize.
        slots = math.ceil(maxsize) if maxsize > 0 else 0
        self._slots = self._own(_new_sem(slots, slots)) if slots else None
        self._join_wake = self._own(_new_sem(0, _SEM_MAX))
        self._segment = _Segment.create(_HEADER_BYTES + capacity, overflow=True)
        self._map_views()
        self._register(scope)

    def _own(self, pair: tuple[object, _SemLock]) -> _SemLock:
        self._owners.append(pair[0])
        return pair[1]

    def _map_views(self) -> None:
        self._words = self._segment.words(_HEADER_WORDS)
        self._data = memoryview(self._segment.map)[_HEADER_BYTES:]

    def _overflow(self) -> int:
        fd = self._segment.overflow_fd
        assert fd is not None
        return fd

    def _state(self) -> tuple[Any, ...]:
        sems = (self._mutex, self._items, self._slots, self._join_wake)
        return (
            self._scope,
            self.maxsize,
            self._capacity,
            tuple(None if sem is None else _sem_state(sem) for sem in sems),
            self._segment.path,
        )

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, self.maxsize, self._capacity, sems, path = state
        self._mutex, self._items, self._slots, self._join_wake = (
            None if sem is None else _open_sem(sem) for sem in sems
        )
        self._segment = _Segment(
            path, _HEADER_BYTES + self._capacity, overflow=True, create=False
        )
        self._map_views()

    # -- sizes -------------------------------------------------------------------

    def qsize(self) -> int:
        return int(self._words[_COUNT])

    def empty(self) -> bool:
        return not self._words[_COUNT]

    def full(self) -> bool:
        return 0 < self.maxsize <= self._words[_COUNT]

    # -- put ---------------------------------------------------------------------

    def _dumps(self, item: T) -> bytes:
        # Plain pickle first, without the bookkeeping of _scope: most items hold
        # no primitive. A reference into __main__ does not resolve in a worker,
        # whose __main__ is another module, so such items go by value through
        # cloudpickle, as tasks do; so do lambdas and local classes.
        data = _pickled(item)
        if data is not None and b"__main__" not in data:
            return data
        with sending_to(self._scope):
            if data is None:  # perhaps it holds one of this executor's primitives
                data = _pickled(item)
                if data is not None and b"__main__" not in data:
                    return data
            try:
                by_value: bytes = cloudpickle.dumps(item, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise TransferError(
                    f"cannot put {type(item).__name__} on a queue shared with "
                    f"other processes: it cannot be pickled ({exc})"
                ) from exc
            return by_value

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        data = self._dumps(item)
        slots = self._slots
        if slots is not None:
            if not block:
                taken = slots.acquire(False)
            elif timeout is None:
                taken = slots.acquire()
            elif timeout < 0:
                raise ValueError(_MESSAGES["queue_negative"])
            else:
                taken = slots.acquire(False) or slots.acquire(
                    True, _wait_timeout(timeout)
                )
            if not taken:
                raise queue.Full
        self._append_or_give_back(data)

    def _append_or_give_back(self, data: bytes) -> None:
        try:
            self._append(data)
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise

    def _append(self, data: bytes) -> None:
        """Add one pickled item (its slot, if bounded, already taken)."""
        record = _LENGTH.pack(len(data)) + data
        words = self._words
        _take_mutex(self._mutex)
        try:
            tail = words[_TAIL]
            overflowing = words[_OVERFLOW_WRITE] != words[_OVERFLOW_READ]
            if not overflowing and len(record) <= self._capacity - (
                tail - words[_HEAD]
            ):
                self._write(tail, record)
                words[_TAIL] = tail + len(record)
            else:  # after the ring's items, in order
                end = words[_OVERFLOW_WRITE]
                os.pwrite(self._overflow(), record, end)
                words[_OVERFLOW_WRITE] = end + len(record)
            words[_COUNT] += 1
            words[_UNFINISHED] += 1
        finally:
            self._mutex.release()
        self._items.release()

    def _write(self, position: int, data: bytes) -> None:
        start = position % self._capacity
        first = min(len(data), self._capacity - start)
        self._data[start : start + first] = data[:first]
        if first < len(data):
            self._data[: len(data) - first] = data[first:]

    def _read(self, position: int, size: int) -> bytes:
        start = position % self._capacity
        first = min(size, self._capacity - start)
        if first == size:
            return bytes(self._data[start : start + size])
        return bytes(self._data[start : start + first]) + bytes(
            self._data[: size - first]
        )

    # -- get ---------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        items = self._items
        if not block:
            taken = items.acquire(False)
        elif timeout is None:
            taken = items.acquire(False) or _spin(items) or items.acquire()
        elif timeout < 0:
            raise ValueError(_MESSAGES["queue_negative"])
        else:
            taken = (
                items.acquire(False)
                or _spin(items)
                or items.acquire(True, _wait_timeout(timeout))
            )
        if not taken:
            raise queue.Empty
        return self._pop()

    def _pop(self) -> T:
        """Remove and return the oldest item (its ``items`` unit already taken)."""
        words = self._words
        _take_mutex(self._mutex)
        try:
            head = words[_HEAD]
            if head != words[_TAIL]:
                (size,) = _LENGTH.unpack(self._read(head, _LENGTH.size))
                data = self._read(head + _LENGTH.size, size)
                words[_HEAD] = head + _LENGTH.size + size
            else:
                fd = self._overflow()
                start = words[_OVERFLOW_READ]
                (size,) = _LENGTH.unpack(os.pread(fd, _LENGTH.size, start))
                data = os.pread(fd, size, start + _LENGTH.size)
                end = start + _LENGTH.size + size
                if end == words[_OVERFLOW_WRITE]:  # drained: back to the ring
                    words[_OVERFLOW_READ] = words[_OVERFLOW_WRITE] = 0
                    os.ftruncate(fd, 0)
                else:
                    words[_OVERFLOW_READ] = end
            words[_COUNT] -= 1
        finally:
            self._mutex.release()
        if self._slots is not None:
            self._slots.release()
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

    # -- task_done / join -----------------------------------------------------------

    def task_done(self) -> None:
        words = self._words
        _take_mutex(self._mutex)
        try:
            unfinished = words[_UNFINISHED] - 1
            if unfinished < 0:
                raise ValueError(_MESSAGES["task_done"])
            words[_UNFINISHED] = unfinished
            if unfinished == 0:
                _notify_all(words, _JOIN_WAITERS, self._join_wake)
        finally:
            self._mutex.release()

    def join(self) -> None:
        while not self._wait_joined(None):
            pass

    def _wait_joined(self, timeout: float | None) -> bool:
        words = self._words
        self._mutex.acquire()
        try:
            if words[_UNFINISHED]:
                _cond_wait(self._mutex, words, _JOIN_WAITERS, self._join_wake, timeout)
            return not words[_UNFINISHED]
        finally:
            self._mutex.release()

    # -- async ---------------------------------------------------------------------

    async def async_get(self) -> T:
        if not self._items.acquire(False):
            await take_in_thread(self._take_item, self._items.release)
        return self._pop()

    def _take_item(self, timeout: float) -> bool:
        return bool(self._items.acquire(True, timeout))

    async def async_put(self, item: T) -> None:
        data = self._dumps(item)
        slots = self._slots
        if slots is not None and not slots.acquire(False):
            await take_in_thread(self._take_slot, slots.release)
        self._append_or_give_back(data)

    def _take_slot(self, timeout: float) -> bool:
        assert self._slots is not None
        return bool(self._slots.acquire(True, timeout))

    async def async_join(self) -> None:
        if self._words[_UNFINISHED]:
            await take_in_thread(self._wait_joined)

    def __repr__(self) -> str:
        return (
            f"<unirun.Queue maxsize={self.maxsize} qsize={self.qsize()} "
            "(shared with processes)>"
        )
