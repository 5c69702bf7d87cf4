"""The primitives' public types: what ``ex.Queue()``, ``ex.Lock()``... return.

Each is an abstract class with two implementations: one for executors whose tasks
share the caller's process (threads, coroutines), one that also works across
processes (OS semaphores and shared memory). Both have the sync methods of
:mod:`queue` / :mod:`threading` exactly, plus ``async_*`` methods that never block
the event loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["BoundedSemaphore", "Event", "Lock", "Queue", "Semaphore"]

T = TypeVar("T")


class _Primitive(ABC):  # noqa: B024  # a common base, no abstract method of its own
    __slots__ = ()


class Lock(_Primitive):
    """A mutual-exclusion lock: :class:`threading.Lock` plus an async face.

    Create one with ``executor.Lock()``. ``with lock:`` and ``async with lock:``
    both work; a cancelled :meth:`async_acquire` never leaves the lock held.
    """

    __slots__ = ()

    @abstractmethod
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, as :meth:`threading.Lock.acquire`.

        Returns ``True`` once held, ``False`` if ``blocking`` is false and the
        lock is taken, or if ``timeout`` seconds pass first.

        Raises:
            ValueError: a ``timeout`` with ``blocking=False``, or a negative
                ``timeout`` other than ``-1``.
        """

    @abstractmethod
    def release(self) -> None:
        """Release the lock; any caller may release it, as with ``threading``.

        Raises:
            RuntimeError: the lock is not held.
        """

    @abstractmethod
    def locked(self) -> bool:
        """Return whether the lock is held."""

    @abstractmethod
    async def async_acquire(self) -> bool:
        """Take the lock without blocking the event loop; return ``True``."""

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> None:
        await self.async_acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.release()


class Semaphore(_Primitive):
    """A counting semaphore: :class:`threading.Semaphore` plus an async face.

    Create one with ``executor.Semaphore(value)``. A cancelled
    :meth:`async_acquire` never takes a unit.
    """

    __slots__ = ()

    @abstractmethod
    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take one unit, as :meth:`threading.Semaphore.acquire`.

        Raises:
            ValueError: a ``timeout`` with ``blocking=False``.
        """

    @abstractmethod
    def release(self, n: int = 1) -> None:
        """Give back ``n`` units, waking up to ``n`` waiters.

        Raises:
            ValueError: ``n`` is below 1, or (bounded semaphores) the release
                would raise the value above its initial value.
        """

    @abstractmethod
    async def async_acquire(self) -> bool:
        """Take one unit without blocking the event loop; return ``True``."""

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> None:
        await self.async_acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.release()


class BoundedSemaphore(Semaphore):
    """A semaphore whose value may not exceed its initial value.

    :class:`threading.BoundedSemaphore` plus an async face; releasing too many
    times raises :class:`ValueError`.
    """

    __slots__ = ()


class Event(_Primitive):
    """A flag tasks wait for: :class:`threading.Event` plus an async face."""

    __slots__ = ()

    @abstractmethod
    def is_set(self) -> bool:
        """Return whether the flag is set."""

    @abstractmethod
    def set(self) -> None:
        """Set the flag and wake every waiter."""

    @abstractmethod
    def clear(self) -> None:
        """Reset the flag."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set or ``timeout`` passes; return the flag."""

    @abstractmethod
    async def async_wait(self) -> bool:
        """Wait for the flag without blocking the event loop; return ``True``."""


class Queue(_Primitive, Generic[T]):
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
