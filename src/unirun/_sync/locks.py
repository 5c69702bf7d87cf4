"""Lock, Semaphore and BoundedSemaphore: the types, and their two implementations.

The in-process ones (thread and coroutine executors) wrap the ``threading``
objects and add event-loop waiters; the shared ones (process and auto executors)
are named OS semaphores. Both have ``threading``'s sync methods exactly, plus
``async_acquire`` and ``async with``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from .shm import (
    _MESSAGES,
    _SEM_MAX,
    _check_number,
    _new_sem,
    _open_sem,
    _sem_state,
    _Shared,
    _wait_timeout,
)
from .waiting import (
    NOT_YET,
    LoopWaiters,
    refuse_pickle,
    take_in_thread,
)

if TYPE_CHECKING:
    from types import TracebackType


__all__ = [
    "BoundedSemaphore",
    "LocalBoundedSemaphore",
    "LocalLock",
    "LocalSemaphore",
    "Lock",
    "Semaphore",
    "SharedBoundedSemaphore",
    "SharedLock",
    "SharedSemaphore",
]


class _Held(ABC):
    """``with`` and ``async with`` over ``acquire``, ``async_acquire``, ``release``."""

    __slots__ = ()

    @abstractmethod
    def acquire(self) -> bool:
        """Take it (blocking)."""

    @abstractmethod
    def release(self) -> None:
        """Give it back."""

    @abstractmethod
    async def async_acquire(self) -> bool:
        """Take it without blocking the event loop."""

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


class Lock(_Held):
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


class Semaphore(_Held):
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


class BoundedSemaphore(Semaphore):
    """A semaphore whose value may not exceed its initial value.

    :class:`threading.BoundedSemaphore` plus an async face; releasing too many
    times raises :class:`ValueError`.
    """

    __slots__ = ()


class LocalLock(Lock):
    """A :class:`unirun.Lock` for threads and coroutines of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters = LoopWaiters()
        self._waiting = self._waiters.queue  # read directly: the hot path
        # The stdlib's own methods: the sync fast path costs what threading's does.
        self.acquire = self._lock.acquire  # type: ignore[method-assign]
        self.locked = self._lock.locked  # type: ignore[method-assign]

    def acquire(
        self, blocking: bool = True, timeout: float = -1
    ) -> bool:  # replaced per instance by the stdlib's method
        return self._lock.acquire(blocking, timeout)  # pragma: no cover

    def locked(self) -> bool:  # replaced per instance by the stdlib's method
        return self._lock.locked()  # pragma: no cover

    def release(self) -> None:
        self._lock.release()
        if self._waiting:
            self._waiters.wake()

    def _try(self) -> bool:
        return True if self._lock.acquire(False) else NOT_YET

    async def async_acquire(self) -> bool:
        if self._lock.acquire(False):
            return True
        return await self._waiters.wait_until(self._try)

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._lock.release()
        if self._waiting:
            self._waiters.wake()

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)

    def __repr__(self) -> str:
        state = "locked" if self._lock.locked() else "unlocked"
        return f"<unirun.Lock {state} (threads and coroutines)>"


class LocalSemaphore(Semaphore):
    """A :class:`unirun.Semaphore` for threads and coroutines of one process."""

    _factory: Any = threading.Semaphore

    def __init__(self, value: int = 1) -> None:
        self._sem = self._factory(value)
        self._waiters = LoopWaiters()
        self.acquire = self._sem.acquire  # type: ignore[method-assign]

    def acquire(
        self, blocking: bool = True, timeout: float | None = None
    ) -> bool:  # replaced per instance by the stdlib's method
        return bool(self._sem.acquire(blocking, timeout))  # pragma: no cover

    def release(self, n: int = 1) -> None:
        self._sem.release(n)
        if self._waiters:
            self._waiters.wake(n)

    def _try(self) -> bool:
        return True if self._sem.acquire(False) else NOT_YET

    async def async_acquire(self) -> bool:
        if self._sem.acquire(False):
            return True
        return await self._waiters.wait_until(self._try)

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)

    def __repr__(self) -> str:
        kind = type(self).__name__.removeprefix("Local")
        return f"<unirun.{kind} value={self._sem._value} (threads and coroutines)>"


class LocalBoundedSemaphore(LocalSemaphore, BoundedSemaphore):
    """A :class:`unirun.BoundedSemaphore` for threads and coroutines."""

    _factory = threading.BoundedSemaphore


class SharedLock(_Shared, Lock):
    """A :class:`unirun.Lock` shared with worker processes (an OS semaphore)."""

    def __init__(self, scope: str) -> None:
        self._owner, self._sem = _new_sem(1, 1)
        self._register(scope)

    def _state(self) -> tuple[Any, ...]:
        return (self._scope, _sem_state(self._sem))

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, sem = state
        self._sem = _open_sem(sem)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout == -1 and blocking:  # the common call, checked cheaply
            return bool(self._sem.acquire())
        _check_number(timeout)
        _wait_timeout(timeout)
        if not blocking:
            if timeout != -1:
                raise ValueError(_MESSAGES["lock_nonblocking"])
            return bool(self._sem.acquire(False))
        if timeout == -1:
            return bool(self._sem.acquire())
        if timeout < 0:
            raise ValueError(_MESSAGES["lock_negative"])
        return bool(self._sem.acquire(True, timeout))

    def release(self) -> None:
        try:
            self._sem.release()
        except ValueError:
            raise RuntimeError(_MESSAGES["unlocked"]) from None

    def locked(self) -> bool:
        return bool(self._sem._is_zero())

    async def async_acquire(self) -> bool:
        if not self._sem.acquire(False):
            await take_in_thread(self._take, self._sem.release)
        return True

    def _take(self, timeout: float) -> bool:
        return bool(self._sem.acquire(True, timeout))

    def __enter__(self) -> bool:
        return bool(self._sem.acquire())

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<unirun.Lock {state} (shared with processes)>"


class SharedSemaphore(_Shared, Semaphore):
    """A :class:`unirun.Semaphore` shared with worker processes."""

    _bounded: ClassVar[bool] = False

    def __init__(self, scope: str, value: int = 1) -> None:
        if value < 0:
            raise ValueError(_MESSAGES["sem_negative"])
        self._owner, self._sem = _new_sem(value, value if self._bounded else _SEM_MAX)
        self._register(scope)

    def _state(self) -> tuple[Any, ...]:
        return (self._scope, _sem_state(self._sem))

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, sem = state
        self._sem = _open_sem(sem)

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not blocking:
            if timeout is not None:
                raise ValueError(_MESSAGES["sem_nonblocking"])
            return bool(self._sem.acquire(False))
        if timeout is None:
            return bool(self._sem.acquire())
        return bool(
            self._sem.acquire(False) or self._sem.acquire(True, _wait_timeout(timeout))
        )

    def release(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError(_MESSAGES["release_n"])
        if self._bounded:
            try:
                too_many = self._sem._get_value() + n > self._sem.maxvalue
            except NotImplementedError:  # no sem_getvalue (macOS): the OS checks
                too_many = False
            if too_many:
                raise ValueError(_MESSAGES["too_many"])
        for _ in range(n):
            try:
                self._sem.release()
            except ValueError:
                raise ValueError(_MESSAGES["too_many"]) from None

    async def async_acquire(self) -> bool:
        if not self._sem.acquire(False):
            await take_in_thread(self._take, self._sem.release)
        return True

    def _take(self, timeout: float) -> bool:
        return bool(self._sem.acquire(True, timeout))

    def __repr__(self) -> str:
        kind = "BoundedSemaphore" if self._bounded else "Semaphore"
        return f"<unirun.{kind} (shared with processes)>"


class SharedBoundedSemaphore(SharedSemaphore, BoundedSemaphore):
    """A :class:`unirun.BoundedSemaphore` shared with worker processes."""

    _bounded = True
