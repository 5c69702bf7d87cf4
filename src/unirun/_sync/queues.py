"""Queue: the type, its shut-down error, and the in-process implementation.

The in-process queue is a ``queue.Queue`` subclass whose changes wake
event-loop waiters, with 3.13's ``shutdown`` on every supported Python. The
process-shared one is in :mod:`.ringqueue`; both block by :func:`wait_while`.
"""

from __future__ import annotations

import functools
import queue
import sys
import time
from abc import abstractmethod
from typing import TYPE_CHECKING, Generic, NoReturn, TypeVar

from .made import MadeByExecutor
from .messages import MESSAGES, wait_timeout
from .sending import refuse_pickle
from .waiting import NOT_YET, Waiters

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

__all__ = ["LocalQueue", "Queue", "QueueShutDown", "wait_while"]

T = TypeVar("T")

if sys.version_info >= (3, 13):
    QueueShutDown = queue.ShutDown
else:  # pragma: no cover  # exercised on 3.11 and 3.12

    class QueueShutDown(Exception):  # queue.ShutDown's name from 3.13
        """Raised by ``put`` and ``get`` on a queue that was shut down.

        ``queue.ShutDown`` itself from Python 3.13 on.
        """


class Queue(MadeByExecutor, Generic[T]):
    """A FIFO queue: :class:`queue.Queue` (3.13's, with ``shutdown``) plus async.

    Create one with ``executor.Queue(maxsize)``; ``maxsize <= 0`` means
    unbounded. A cancelled :meth:`async_get` loses no item and a cancelled
    :meth:`async_put` adds none.
    """

    __slots__ = ()

    #: The bound given at creation (``<= 0``: unbounded).
    maxsize: int
    #: Items put and not yet marked done by :meth:`task_done`, as
    #: :class:`queue.Queue`'s attribute (read it; never set it).
    unfinished_tasks: int
    #: Whether :meth:`shutdown` has been called, as 3.13's :class:`queue.Queue`.
    is_shutdown: bool

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
            QueueShutDown: the queue was shut down.
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
            QueueShutDown: the queue was shut down and is empty.
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
    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down, as Python 3.13's :meth:`queue.Queue.shutdown`.

        ``put`` raises :class:`QueueShutDown` from then on, and ``get`` once the
        queue is empty; every blocked ``put`` and ``get``, sync or async, in
        any process, wakes up to do so. ``immediate`` empties the queue first,
        counting each item removed as done for :meth:`join`.
        """

    @abstractmethod
    async def async_put(self, item: T) -> None:
        """Put ``item``, waiting for room without blocking the event loop."""

    @abstractmethod
    async def async_get(self) -> T:
        """Remove and return an item, waiting without blocking the event loop."""

    @abstractmethod
    async def async_join(self) -> None:
        """Wait, without blocking the event loop, until every item is done."""


def wait_while(
    busy: Callable[[], bool],
    block: bool,
    timeout: float | None,
    give_up: type[Exception],
    stopped: Callable[[], bool],
    sleep: Callable[[float | None], object],
) -> None:
    """Block while ``busy()``, as ``queue.Queue.put``/``get`` do (lock held).

    ``sleep(deadline)`` waits to be woken (or for the ``time.monotonic()``
    deadline); ``give_up`` is raised at once if not ``block`` and when time
    runs out; :class:`QueueShutDown` if ``stopped()`` after a wake-up. As the
    stdlib, a negative ``timeout`` is refused even when there is no need to
    wait.
    """
    if not block:
        if busy():
            raise give_up
        return
    deadline = None
    if timeout is not None:
        if timeout < 0:
            raise ValueError(MESSAGES["queue_negative"])
        deadline = time.monotonic() + timeout
    while busy():
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0.0:
                raise give_up
            wait_timeout(remaining)  # as Condition.wait: too large to wait for
        sleep(deadline)
        if stopped():
            raise QueueShutDown


class LocalQueue(queue.Queue[T], Queue[T]):
    """A :class:`unirun.Queue` for threads and coroutines: a ``queue.Queue``."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.is_shutdown = False  # as 3.13's queue.Queue
        self._getters = Waiters()
        self._putters = Waiters()
        self._joiners = Waiters()

    def _full_now(self) -> bool:
        return 0 < self.maxsize <= self._qsize()

    def _empty_now(self) -> bool:
        return not self._qsize()

    def _shut_and_empty(self) -> bool:
        return self.is_shutdown and not self._qsize()

    def _is_shut(self) -> bool:
        return self.is_shutdown

    @staticmethod
    def _sleep(condition: threading.Condition, deadline: float | None) -> None:
        condition.wait(None if deadline is None else deadline - time.monotonic())

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        with self.not_full:
            if self.is_shutdown:
                raise QueueShutDown
            if self.maxsize > 0 and (
                self._full_now() or (block and timeout is not None and timeout < 0)
            ):
                sleep = functools.partial(self._sleep, self.not_full)
                wait_while(
                    self._full_now, block, timeout, queue.Full, self._is_shut, sleep
                )
            self._put(item)
            self.unfinished_tasks += 1
            self.not_empty.notify()

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        with self.not_empty:
            if not self._qsize() or (block and timeout is not None and timeout < 0):
                if self._shut_and_empty():
                    raise QueueShutDown
                sleep = functools.partial(self._sleep, self.not_empty)
                wait_while(
                    self._empty_now,
                    block,
                    timeout,
                    queue.Empty,
                    self._shut_and_empty,
                    sleep,
                )
            item = self._get()
            self.not_full.notify()
            return item

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

    def shutdown(self, immediate: bool = False) -> None:
        with self.mutex:
            self.is_shutdown = True
            if immediate:
                while self._qsize():
                    self._get()
                    if self.unfinished_tasks > 0:
                        self.unfinished_tasks -= 1
                self.all_tasks_done.notify_all()
            self.not_empty.notify_all()
            self.not_full.notify_all()
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
