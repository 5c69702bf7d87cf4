"""The process-shared Queue: pickled items in a ring buffer in shared memory.

``put`` pickles the item and writes it into the free part of the ring itself
(no feeder thread), then commits it; a ``get`` anywhere sees it as soon as
``put`` returns, and a writer killed mid-write leaves nothing half-written
visible. An item that does not fit in the free part of the ring, and every
item after it until readers catch up, goes to an overflow file next to it.

Putters and getters take different mutexes (lanes), so they never wait for
each other: a putter writes only the tail, its count and the overflow's write
position; a getter only the head, its count and the overflow's read position.
Each counts before it moves its position, so a count never lags an item seen::

    put:  pickle -> [put lane] write past the tail, commit count+tail [/lane]
                 -> wake a getter, if one sleeps
    get:  spin ~20 µs for an item -> [main lane] wait for one, read it, commit
                 count+head, wake a putter if one waits for room [/lane] -> unpickle
"""

from __future__ import annotations

import functools
import os
import pickle
import queue
import struct
import threading
import time
from typing import Any, Final, TypeVar

from .lines import line_of
from .messages import MESSAGES
from .monitor import DATA_OFFSET, SLICE
from .queues import Queue, QueueShutDown, wait_while
from .sending import dumps, quick_dumps
from .shared import MonitorShared, deadline_of
from .shm import SEM_MAX, new_sem, open_sem, sem_state
from .waiting import take_in_thread

__all__ = ["DEFAULT_CAPACITY", "SharedQueue"]

T = TypeVar("T")

# Queue words. Getters write HEAD, GETS, OVERFLOW_READ, DONE and SLEEPERS (how
# many getters sleep on the wake-up semaphore: a hint for putters); putters
# TAIL, PUTS and OVERFLOW_WRITE; shutdown, holding both lanes, SHUT.
_HEAD, _TAIL, _GETS, _PUTS, _DONE, _OVERFLOW_READ, _OVERFLOW_WRITE, _SHUT = range(8)
_SLEEPERS = 8
# Conditions of the monitor (getters sleep on their own semaphore instead).
_NOT_FULL, _ALL_DONE = 1, 2
_LENGTH = struct.Struct("q")
# A full memory barrier (a locked instruction on x86): see _sleep_for_item().
_fence = threading.Lock()
#: Bytes of shared memory for queued items (sparse: unused pages cost nothing).
DEFAULT_CAPACITY: Final = 1 << 20
#: How long a get() watches for an item before it sleeps: when a producer in
#: another process puts one every few microseconds, the consumer takes it
#: without sleeping, and the producer then needs to wake nobody.
_SPIN: Final = 20e-6
#: How much of the overflow file a getter reads at once (bytes).
_READ_AHEAD: Final = 1 << 16
#: Overflow positions: an epoch above, a byte offset in the file below. A putter
#: that finds the file drained starts a new epoch at offset 0 (and empties the
#: file) without touching the getters' word.
_EPOCH: Final = 1 << 40


def _overflow_at(read: int, write: int) -> int | None:
    """Where the next overflow record is, given the two positions; None if none."""
    if read // _EPOCH == write // _EPOCH:
        return read % _EPOCH if read < write else None
    # A newer epoch: the putter started it once the older one was drained.
    return 0 if write % _EPOCH else None


class SharedQueue(MonitorShared, Queue[T]):
    """A :class:`unirun.Queue` shared with worker processes.

    An unbounded queue never blocks or fails for lack of room.
    """

    def __init__(
        self, scope: str, maxsize: int = 0, *, capacity: int = DEFAULT_CAPACITY
    ) -> None:
        self.maxsize = maxsize
        self._capacity = capacity
        self._wake_owner, self._wake = new_sem(0, SEM_MAX)
        self._create_monitor(scope, capacity, overflow=True)
        self._map_views()

    def _more_state(self) -> tuple[Any, ...]:
        return (self.maxsize, self._capacity, sem_state(self._wake))

    def _open_more(self, more: tuple[Any, ...]) -> None:
        self.maxsize, self._capacity, wake = more
        self._wake = open_sem(wake)
        self._map_views()

    def _map_views(self) -> None:
        monitor = self._monitor
        self._words = monitor.words
        self._data = memoryview(monitor.segment.map)[DATA_OFFSET:]
        assert monitor.segment.overflow_fd is not None
        self._overflow = monitor.segment.overflow_fd
        self._put_lane = monitor.second_lane()
        # The overflow file as this process last read ahead: epoch, offset, bytes.
        self._ahead_epoch, self._ahead_at, self._ahead = -1, 0, b""
        self._waiters = monitor.waiters_hint()

    # -- sizes and states -----------------------------------------------------------

    def qsize(self) -> int:
        return max(0, int(self._words[_PUTS] - self._words[_GETS]))

    def empty(self) -> bool:
        return not self.qsize()

    def full(self) -> bool:
        return 0 < self.maxsize <= self.qsize()

    @property
    def is_shutdown(self) -> bool:  # type: ignore[override]  # read-only here
        """Whether :meth:`shutdown` has been called (as 3.13's attribute)."""
        return bool(self._words[_SHUT])

    @property
    def unfinished_tasks(self) -> int:  # type: ignore[override]  # read-only here
        """Items put and not yet marked done (as :class:`queue.Queue`'s)."""
        done = self._words[_DONE]  # first: puts only grow, and done <= puts
        return max(0, int(self._words[_PUTS] - done))

    def _has_item(self) -> bool:
        words = self._words
        if words[_HEAD] != words[_TAIL]:
            return True
        read, write = words[_OVERFLOW_READ], words[_OVERFLOW_WRITE]
        return read != write and _overflow_at(read, write) is not None

    def _no_item(self) -> bool:
        if self._put_lane.pending():  # a putter died mid-commit: finish it
            self._repair()
        return not self._has_item()

    def _repair(self) -> None:
        # Never wait for the put lane while holding the main one (putters take
        # them the other way round); a live holder finishes its own commit.
        if self._put_lane.acquire(time.monotonic()):
            self._put_lane.release()

    def _shut_and_empty(self) -> bool:
        return bool(self._words[_SHUT]) and self._no_item()

    def _shut(self) -> bool:
        return bool(self._words[_SHUT])

    def _has_item_or_shut(self) -> bool:
        return not self._no_item() or self._shut()

    def _has_room_or_shut(self) -> bool:
        return not self.full() or self._shut()

    def _all_done(self) -> bool:
        if self._put_lane.pending():
            self._repair()
        return self._words[_PUTS] <= self._words[_DONE]

    def _sleep_for_item(self, deadline: float | None) -> None:
        """Sleep (main lane held, released meanwhile) until woken, or a slice.

        Getters sleep on one semaphore, which a putter posts once when it sees
        a sleeper and no post pending: a getter re-checks the queue when it
        wakes anyway, and waking one costs a putter one post.
        """
        words, monitor = self._words, self._monitor
        words[_SLEEPERS] += 1
        try:
            with _fence:  # a putter now sees the sleeper, or this getter the item
                pass
            if self._has_item_or_shut():
                return
            timeout = SLICE
            if deadline is not None:
                timeout = min(SLICE, deadline - time.monotonic())
            monitor.release()
            try:
                self._wake.acquire(True, max(0.0, timeout))
            finally:
                monitor.reacquire()
        finally:
            words[_SLEEPERS] -= 1

    def _wake_a_getter(self) -> None:
        """Post the getters' semaphore, unless a post is still pending."""
        try:
            if self._wake._get_value():
                return
        except NotImplementedError:  # no sem_getvalue (macOS): post anyway
            pass
        self._wake.release()

    def _sleep_for_room(self, deadline: float | None) -> None:
        self._monitor.wait(_NOT_FULL, deadline, self._has_room_or_shut)

    # -- put ------------------------------------------------------------------------

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        self._put_data(self._record(item), block, timeout)

    def _record(self, item: T) -> bytes:
        """The pickled item (its length goes before it in the queue)."""
        data = quick_dumps(item)
        if data is None:
            data = dumps(item, self._scope, "put {} on a queue")
        return data

    def _put_data(self, data: bytes, block: bool, timeout: float | None) -> None:
        # Read only once it must wait: an unbounded put never looks at its
        # time-out, as the stdlib's (a bad one does not lose the item).
        deadline = None
        waited = False
        lane, words, maxsize = self._put_lane, self._words, self.maxsize
        while True:
            lane.acquire()  # as the stdlib: the time-out is room's, not the mutex's
            try:
                if words[_SHUT]:
                    raise QueueShutDown
                room = maxsize <= 0 or (
                    words[_PUTS] - words[_GETS] < maxsize
                    and not (block and _negative(timeout))
                )
                if room:
                    self._append(data)
            finally:
                lane.release()
            if room:
                if words[_SLEEPERS]:  # after the release: a full barrier
                    self._wake_a_getter()
                return
            if not waited:
                deadline, waited = _deadline(block, timeout), True
            self._wait_for_room(block, timeout, deadline)

    def _wait_for_room(
        self, block: bool, timeout: float | None, deadline: float | None
    ) -> None:
        """Wait, under the main lane, until there seems to be room (or raise)."""
        monitor = self._monitor
        if deadline is not None:
            timeout = max(0.0, deadline - time.monotonic())
        monitor.acquire()
        try:
            wait_while(
                self.full, block, timeout, queue.Full, self._shut, self._sleep_for_room
            )
        finally:
            monitor.release()

    def _append(self, data: bytes) -> None:
        """Write one item's record and commit it (put lane held, room checked)."""
        words, capacity, lane = self._words, self._capacity, self._put_lane
        tail, puts, size = words[_TAIL], words[_PUTS] + 1, _LENGTH.size + len(data)
        read, write = words[_OVERFLOW_READ], words[_OVERFLOW_WRITE]
        overflowing = read != write and _overflow_at(read, write) is not None
        if not overflowing and write % _EPOCH:  # drained: free the file, anew from 0
            write = (write // _EPOCH + 1) * _EPOCH
            words[_OVERFLOW_WRITE] = write
            os.ftruncate(self._overflow, 0)
        if not overflowing and size <= capacity - (tail - words[_HEAD]):
            start = tail % capacity
            if start + size <= capacity:  # not across the end: no copy to join
                _LENGTH.pack_into(self._data, start, len(data))
                self._data[start + _LENGTH.size : start + size] = data
            else:
                self._write(tail, _LENGTH.pack(len(data)) + data)
            lane.commit2(_PUTS, puts, _TAIL, tail + size)
            return
        os.pwritev(self._overflow, [_LENGTH.pack(len(data)), data], write % _EPOCH)
        lane.commit2(_PUTS, puts, _OVERFLOW_WRITE, write + size)

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
        ready = words[_HEAD] != words[_TAIL] or self._has_item()
        if block and not ready:
            end = time.perf_counter() + _SPIN
            while not self._has_item() and time.perf_counter() < end:
                pass
        # As the stdlib: the mutex is taken without a limit (a dead holder's
        # is released by the kernel); the time-out is the item's. Taken
        # against the deadline, a busy queue raised Empty with items in it.
        monitor.acquire()
        try:
            if (timeout is not None and block and timeout < 0) or not (
                words[_HEAD] != words[_TAIL] or self._has_item()
            ):
                if self._shut_and_empty():
                    raise QueueShutDown
                wait_while(
                    self._no_item,
                    block,
                    timeout,
                    queue.Empty,
                    self._shut_and_empty,
                    self._sleep_for_item,
                )
            data = self._pop()
            if self.maxsize > 0 and self._waiters[0]:
                monitor.notify(_NOT_FULL)
            if words[_SLEEPERS] and self._has_item():  # more: pass the wake-up on
                self._wake_a_getter()
        finally:
            monitor.release()
        return self._loads(data)

    def _pop(self) -> bytes:
        """Read the oldest record and commit its removal (main lane held)."""
        words, monitor = self._words, self._monitor
        head, gets = words[_HEAD], words[_GETS] + 1
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
            monitor.commit2(_GETS, gets, _HEAD, head + _LENGTH.size + size)
            return data
        read, write = words[_OVERFLOW_READ], words[_OVERFLOW_WRITE]
        offset = _overflow_at(read, write)
        assert offset is not None, "called with an item there"
        epoch = write // _EPOCH * _EPOCH
        (size,) = _LENGTH.unpack(self._read_overflow(epoch, offset, _LENGTH.size))
        data = self._read_overflow(epoch, offset + _LENGTH.size, size)
        monitor.commit2(
            _GETS, gets, _OVERFLOW_READ, epoch + offset + _LENGTH.size + size
        )
        return data

    def _read_overflow(self, epoch: int, offset: int, size: int) -> bytes:
        """``size`` bytes of the overflow file, read ahead in large pieces.

        Committed records never change until their epoch is drained, so what
        was read ahead stays good for as long as the epoch is the same.
        """
        start = offset - self._ahead_at
        if self._ahead_epoch != epoch or start < 0 or start + size > len(self._ahead):
            self._ahead = os.pread(self._overflow, max(size, _READ_AHEAD), offset)
            self._ahead_epoch, self._ahead_at, start = epoch, offset, 0
        return self._ahead[start : start + size]

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
        words = self._words
        with self._monitor as monitor:
            done = words[_DONE] + 1
            if done > words[_PUTS]:
                raise ValueError(MESSAGES["task_done"])
            monitor.commit((_DONE, done))
            if done == words[_PUTS]:
                monitor.notify_all(_ALL_DONE)

    def join(self) -> None:
        with self._monitor as monitor:
            monitor.wait_for(_ALL_DONE, self._all_done, None)

    def shutdown(self, immediate: bool = False) -> None:
        words, lane = self._words, self._put_lane
        lane.acquire()  # the lanes in the putters' order: put, then main
        try:
            with self._monitor as monitor:
                if not immediate:
                    monitor.commit((_SHUT, 1))
                else:  # every item is taken, and counted done while any is due
                    puts, gets, done = words[_PUTS], words[_GETS], words[_DONE]
                    epoch = (words[_OVERFLOW_WRITE] // _EPOCH + 1) * _EPOCH
                    monitor.commit(
                        (_SHUT, 1),
                        (_DONE, min(puts, done + puts - gets)),
                        (_GETS, puts),
                        (_HEAD, words[_TAIL]),
                        (_OVERFLOW_WRITE, epoch),
                        (_OVERFLOW_READ, epoch),
                    )
                    os.ftruncate(self._overflow, 0)
                    monitor.notify_all(_ALL_DONE)
                for _ in range(max(1, words[_SLEEPERS])):
                    self._wake.release()
                monitor.notify_all(_NOT_FULL)
        finally:
            lane.release()

    # -- async ----------------------------------------------------------------------

    async def async_get(self) -> T:
        # A thread for each waiting getter (see WaitLine for why not one for all).
        while True:
            try:
                return self.get(block=False)
            except queue.Empty:
                pass
            await take_in_thread(self._wait_for_item, self._wake_a_getter)

    def _wait_for_item(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for an item (or shutdown): an async getter's slice."""
        with self._monitor:
            if not self._has_item_or_shut():
                self._sleep_for_item(time.monotonic() + timeout)
            return self._has_item_or_shut()

    async def async_put(self, item: T) -> None:
        data = self._record(item)
        while True:
            try:
                return self._put_data(data, False, None)
            except queue.Full:
                pass
            await take_in_thread(
                functools.partial(self._wait_ready, _NOT_FULL, self._has_room_or_shut),
                functools.partial(self._pass_on, _NOT_FULL),
            )

    async def async_join(self) -> None:
        if self._words[_PUTS] > self._words[_DONE]:
            await line_of(self, "_joiners").wait(
                functools.partial(self._wait_ready, _ALL_DONE, self._all_done), None
            )

    def __repr__(self) -> str:
        return (
            f"<unirun.Queue maxsize={self.maxsize} qsize={self.qsize()} "
            "(shared with processes)>"
        )


def _deadline(block: bool, timeout: float | None) -> float | None:
    """When a timed wait for room ends, else never."""
    if not block or timeout is None or not timeout >= 0:
        return None
    return deadline_of(timeout)


def _negative(timeout: float | None) -> bool:
    """A time-out the stdlib refuses even when it need not wait."""
    return timeout is not None and timeout < 0
