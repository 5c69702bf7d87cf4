"""The process-shared Queue: pickled items in a ring buffer in shared memory.

``put`` pickles the item and writes it into the free part of the ring itself
(no feeder thread), then commits the new positions and counts in one step
(:meth:`.monitor.Monitor.commit`), so a ``get`` anywhere sees it as soon as
``put`` returns and a writer killed mid-write leaves nothing half-written
visible. An item that does not fit in the free part of the ring, and every
item after it until readers catch up, goes to an overflow file next to it::

    put:  pickle -> [mutex] write record past the tail, commit tail+count,
                   notify a getter [/mutex]
    get:  spin ~20 µs on the count -> [mutex] wait for an item, read the record,
                   commit head-count, notify a putter [/mutex] -> unpickle
"""

from __future__ import annotations

import functools
import os
import pickle
import queue
import struct
import time
from typing import Any, Final, TypeVar

from .queues import Queue, QueueShutDown, wait_while
from .sending import dumps
from .shared import MonitorShared, deadline_of
from .waiting import take_in_thread

__all__ = ["DEFAULT_CAPACITY", "SharedQueue"]

T = TypeVar("T")

# Queue words: ring positions (bytes, ever increasing), counts, the overflow
# file's read and write positions, the shut-down flag.
_HEAD, _TAIL, _COUNT, _UNFINISHED, _OVERFLOW_READ, _OVERFLOW_WRITE, _SHUT = range(7)
# Conditions.
_NOT_EMPTY, _NOT_FULL, _ALL_DONE = 0, 1, 2
_LENGTH = struct.Struct("q")
#: Bytes of shared memory for queued items (sparse: unused pages cost nothing).
DEFAULT_CAPACITY: Final = 1 << 20
#: How long a get() watches the count before it sleeps: when a producer in
#: another process puts an item every few microseconds, the consumer takes it
#: without sleeping, and the producer then needs to wake nobody.
_SPIN: Final = 20e-6


class SharedQueue(MonitorShared, Queue[T]):
    """A :class:`unirun.Queue` shared with worker processes.

    ``qsize``/``empty``/``full`` are exact, as with ``queue.Queue``. An
    unbounded queue never blocks or fails for lack of room.
    """

    def __init__(
        self, scope: str, maxsize: int = 0, *, capacity: int = DEFAULT_CAPACITY
    ) -> None:
        self.maxsize = maxsize
        self._capacity = capacity
        self._create_monitor(scope, capacity, overflow=True)
        self._map_views()

    def _more_state(self) -> tuple[Any, ...]:
        return (self.maxsize, self._capacity)

    def _open_more(self, more: tuple[Any, ...]) -> None:
        self.maxsize, self._capacity = more
        self._map_views()

    def _map_views(self) -> None:
        from .monitor import DATA_OFFSET

        self._words = self._monitor.words
        segment = self._monitor.segment
        self._data = memoryview(segment.map)[DATA_OFFSET:]
        assert segment.overflow_fd is not None
        self._overflow = segment.overflow_fd

    # -- sizes and states -----------------------------------------------------------

    def qsize(self) -> int:
        return int(self._words[_COUNT])

    def empty(self) -> bool:
        return not self._words[_COUNT]

    def full(self) -> bool:
        return 0 < self.maxsize <= self._words[_COUNT]

    @property
    def is_shutdown(self) -> bool:
        """Whether :meth:`shutdown` has been called (as 3.13's attribute)."""
        return bool(self._words[_SHUT])

    def _shut_and_empty(self) -> bool:
        return bool(self._words[_SHUT]) and not self._words[_COUNT]

    def _has_item_or_shut(self) -> bool:
        return bool(self._words[_COUNT] or self._words[_SHUT])

    def _has_room_or_shut(self) -> bool:
        return not self.full() or bool(self._words[_SHUT])

    def _all_done(self) -> bool:
        return not self._words[_UNFINISHED]

    def _sleep(self, condition: int, deadline: float | None) -> None:
        self._monitor.wait(condition, deadline)

    # -- put ------------------------------------------------------------------------

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        self._put_record(self._record(item), block, timeout)

    def _record(self, item: T) -> bytes:
        try:  # the common case, without dumps()'s checks for primitives
            data = pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
        except Exception:
            data = b"__main__"
        if b"__main__" in data:
            data = dumps(item, self._scope, "put {} on a queue")
        return _LENGTH.pack(len(data)) + data

    def _put_record(self, record: bytes, block: bool, timeout: float | None) -> None:
        monitor, words, maxsize = self._monitor, self._words, self.maxsize
        if not monitor.acquire(_deadline(block, timeout)):
            raise queue.Full
        try:
            if words[_SHUT]:
                raise QueueShutDown
            if maxsize > 0 and (
                words[_COUNT] >= maxsize or (block and _negative(timeout))
            ):
                sleep = functools.partial(self._sleep, _NOT_FULL)
                wait_while(self.full, block, timeout, queue.Full, self._shut, sleep)
            self._append(record)
            monitor.notify(_NOT_EMPTY)
        finally:
            monitor.release()

    def _shut(self) -> bool:
        return bool(self._words[_SHUT])

    def _append(self, record: bytes) -> None:
        """Write one record and commit it (mutex held, room checked)."""
        words, capacity = self._words, self._capacity
        tail, count = words[_TAIL], words[_COUNT]
        unfinished = words[_UNFINISHED] + 1
        overflowing = words[_OVERFLOW_WRITE] != words[_OVERFLOW_READ]
        size = len(record)
        if not overflowing and size <= capacity - (tail - words[_HEAD]):
            start = tail % capacity
            if start + size <= capacity:
                self._data[start : start + size] = record
            else:
                self._write(tail, record)
            self._monitor.commit3(
                _TAIL, tail + size, _COUNT, count + 1, _UNFINISHED, unfinished
            )
        else:  # after the ring's items, in order
            end = words[_OVERFLOW_WRITE]
            os.pwrite(self._overflow, record, end)
            self._monitor.commit3(
                _OVERFLOW_WRITE, end + size, _COUNT, count + 1, _UNFINISHED, unfinished
            )

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

    # -- get ------------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        words, monitor = self._words, self._monitor
        if block and (not words[_COUNT] or monitor.held()):
            # Until an item is there and its putter has let go of the mutex.
            end = time.perf_counter() + _SPIN
            while (not words[_COUNT] or monitor.held()) and time.perf_counter() < end:
                pass
        if not monitor.acquire(_deadline(block, timeout)):
            raise queue.Empty
        try:
            if not words[_COUNT] or (block and _negative(timeout)):
                if self._shut_and_empty():
                    raise QueueShutDown
                sleep = functools.partial(self._sleep, _NOT_EMPTY)
                wait_while(
                    self.empty, block, timeout, queue.Empty, self._shut_and_empty, sleep
                )
            data = self._pop()
            if self.maxsize > 0:
                monitor.notify(_NOT_FULL)
        finally:
            monitor.release()
        return self._loads(data)

    def _pop(self) -> bytes:
        """Read the oldest record and commit its removal (mutex held, not empty)."""
        words = self._words
        head = words[_HEAD]
        count = words[_COUNT] - 1
        if head != words[_TAIL]:
            start = head % self._capacity
            if start + _LENGTH.size <= self._capacity:
                (size,) = _LENGTH.unpack_from(self._data, start)
            else:
                (size,) = _LENGTH.unpack(self._read(head, _LENGTH.size))
            begin = start + _LENGTH.size
            if begin + size <= self._capacity:
                data = bytes(self._data[begin : begin + size])
            else:
                data = self._read(head + _LENGTH.size, size)
            self._monitor.commit2(_HEAD, head + _LENGTH.size + size, _COUNT, count)
            return data
        start = words[_OVERFLOW_READ]
        (size,) = _LENGTH.unpack(os.pread(self._overflow, _LENGTH.size, start))
        data = os.pread(self._overflow, size, start + _LENGTH.size)
        end = start + _LENGTH.size + size
        if end == words[_OVERFLOW_WRITE]:  # drained: back to the ring
            self._monitor.commit(
                (_OVERFLOW_READ, 0), (_OVERFLOW_WRITE, 0), (_COUNT, count)
            )
            os.ftruncate(self._overflow, 0)
        else:
            self._monitor.commit2(_OVERFLOW_READ, end, _COUNT, count)
        return data

    def _loads(self, data: bytes) -> T:
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

    # -- task_done, join, shutdown ---------------------------------------------------

    def task_done(self) -> None:
        with self._monitor as monitor:
            unfinished = self._words[_UNFINISHED] - 1
            if unfinished < 0:
                from .messages import MESSAGES

                raise ValueError(MESSAGES["task_done"])
            monitor.commit((_UNFINISHED, unfinished))
            if unfinished == 0:
                monitor.notify_all(_ALL_DONE)

    def join(self) -> None:
        with self._monitor as monitor:
            monitor.wait_for(_ALL_DONE, self._all_done, None)

    def shutdown(self, immediate: bool = False) -> None:
        words = self._words
        with self._monitor as monitor:
            if not immediate:
                monitor.commit((_SHUT, 1))
            else:
                left = max(0, words[_UNFINISHED] - words[_COUNT])
                monitor.commit(
                    (_SHUT, 1),
                    (_HEAD, words[_TAIL]),
                    (_OVERFLOW_READ, 0),
                    (_OVERFLOW_WRITE, 0),
                    (_COUNT, 0),
                    (_UNFINISHED, left),
                )
                os.ftruncate(self._overflow, 0)
                monitor.notify_all(_ALL_DONE)
            monitor.notify_all(_NOT_EMPTY)
            monitor.notify_all(_NOT_FULL)

    # -- async ----------------------------------------------------------------------

    async def async_get(self) -> T:
        while True:
            try:
                return self.get(block=False)
            except queue.Empty:
                pass
            await take_in_thread(
                functools.partial(self._wait_ready, _NOT_EMPTY, self._has_item_or_shut),
                functools.partial(self._pass_on, _NOT_EMPTY),
            )

    async def async_put(self, item: T) -> None:
        record = self._record(item)
        while True:
            try:
                return self._put_record(record, False, None)
            except queue.Full:
                pass
            await take_in_thread(
                functools.partial(self._wait_ready, _NOT_FULL, self._has_room_or_shut),
                functools.partial(self._pass_on, _NOT_FULL),
            )

    async def async_join(self) -> None:
        if self._words[_UNFINISHED]:
            await take_in_thread(
                functools.partial(self._wait_ready, _ALL_DONE, self._all_done)
            )

    def __repr__(self) -> str:
        return (
            f"<unirun.Queue maxsize={self.maxsize} qsize={self.qsize()} "
            "(shared with processes)>"
        )


def _deadline(block: bool, timeout: float | None) -> float | None:
    """When to give up taking the mutex: a timed wait's end, else never."""
    if not block or timeout is None or not timeout >= 0:
        return None
    return deadline_of(timeout)


def _negative(timeout: float | None) -> bool:
    """A time-out the stdlib refuses even when it need not wait."""
    return timeout is not None and timeout < 0
