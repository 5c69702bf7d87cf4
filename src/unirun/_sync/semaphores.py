"""Semaphore and BoundedSemaphore: the types, and their two implementations.

The in-process ones wrap the ``threading`` objects and add event-loop waiters;
the shared ones are named OS semaphores. Both have ``threading``'s sync
methods exactly, plus ``async_acquire`` and ``async with``.
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from typing import Any, ClassVar

from .held import Held, LoopBacked, SemBacked
from .messages import MESSAGES, wait_timeout
from .shm import SEM_MAX

__all__ = [
    "BoundedSemaphore",
    "LocalBoundedSemaphore",
    "LocalSemaphore",
    "Semaphore",
    "SharedBoundedSemaphore",
    "SharedSemaphore",
]


class Semaphore(Held):
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
            OverflowError: (shared with processes) the value would pass the
                system's ``SEM_VALUE_MAX``; nothing was released.
        """

    @abstractmethod
    async def async_acquire(self) -> bool:
        """Take one unit without blocking the event loop; return ``True``."""


class BoundedSemaphore(Semaphore):
    """A semaphore whose value may not exceed its initial value.

    :class:`threading.BoundedSemaphore` plus an async face; releasing too many
    times raises :class:`ValueError`.
    """

    __slots__ = ()


class LocalSemaphore(LoopBacked, Semaphore):
    """A :class:`unirun.Semaphore` for threads and coroutines of one process."""

    _factory: Any = threading.Semaphore

    def __init__(self, value: int = 1) -> None:
        self._back(self._factory(value))

    def acquire(
        self, blocking: bool = True, timeout: float | None = None
    ) -> bool:  # replaced per instance by the stdlib's method
        return bool(self._inner.acquire(blocking, timeout))  # pragma: no cover

    def release(self, n: int = 1) -> None:
        self._inner.release(n)
        if self._waiters:
            self._waiters.wake(n)

    def __repr__(self) -> str:
        kind = type(self).__name__.removeprefix("Local")
        return f"<unirun.{kind} value={self._inner._value} (threads and coroutines)>"


class LocalBoundedSemaphore(LocalSemaphore, BoundedSemaphore):
    """A :class:`unirun.BoundedSemaphore` for threads and coroutines."""

    _factory = threading.BoundedSemaphore


#: A shared semaphore's value is the system's: it holds at most SEM_VALUE_MAX.
_TOO_HIGH = (
    f"a semaphore shared with processes holds at most {SEM_MAX} (SEM_VALUE_MAX): "
    "its value would be {}"
)


class SharedSemaphore(SemBacked, Semaphore):
    """A :class:`unirun.Semaphore` shared with worker processes."""

    _bounded: ClassVar[bool] = False

    def __init__(self, scope: str, value: int = 1) -> None:
        given: object = value
        if isinstance(given, float) and given.is_integer():
            value = int(given)  # as threading takes 2.0 (os.cpu_count() / 2)
        if value < 0:
            raise ValueError(MESSAGES["sem_negative"])
        if value > SEM_MAX:
            raise OverflowError(_TOO_HIGH.format(value))
        self._make(scope, value, value if self._bounded else SEM_MAX)

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not blocking:
            if timeout is not None:
                raise ValueError(MESSAGES["sem_nonblocking"])
            return bool(self._sem.acquire(False))
        if timeout is None:
            return bool(self._sem.acquire())
        return bool(
            self._sem.acquire(False) or self._sem.acquire(True, wait_timeout(timeout))
        )

    def release(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError(MESSAGES["release_n"])
        # Checked first, so that a release refused changes nothing.
        try:
            value = self._sem._get_value() + n
        except NotImplementedError:  # no sem_getvalue (macOS): the OS checks
            value = 0
        if value > self._sem.maxvalue:
            if self._bounded:
                raise ValueError(MESSAGES["too_many"])
            raise OverflowError(_TOO_HIGH.format(value))
        for _ in range(n):
            try:
                self._sem.release()
            except ValueError:
                if self._bounded:
                    raise ValueError(MESSAGES["too_many"]) from None
                raise OverflowError(_TOO_HIGH.format("more")) from None

    def __repr__(self) -> str:
        kind = "BoundedSemaphore" if self._bounded else "Semaphore"
        return f"<unirun.{kind} (shared with processes)>"


class SharedBoundedSemaphore(SharedSemaphore, BoundedSemaphore):
    """A :class:`unirun.BoundedSemaphore` shared with worker processes."""

    _bounded = True
