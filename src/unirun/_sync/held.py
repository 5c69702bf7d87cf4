"""What every lock-like primitive shares: ``with``, ``async with``, and its waits.

:class:`Held` turns ``acquire``/``async_acquire``/``release`` into both context
managers. :class:`LoopBacked` is an in-process primitive over a ``threading``
object whose async waiters queue in :class:`.waiting.Waiters`;
:class:`SemBacked` is a process-shared one over a named semaphore whose async
waits run in a thread. Lock and Semaphore are built from them.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, NoReturn

from .lines import WaitLine
from .made import MadeByExecutor
from .sending import refuse_pickle
from .shared import Shared
from .shm import SemLock, new_sem, open_sem, sem_state
from .waiting import NOT_YET, Waiters

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Held", "LoopBacked", "SemBacked"]


class Held(MadeByExecutor):
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


class LoopBacked:
    """An in-process primitive over ``_inner``, a ``threading`` lock or semaphore.

    Its sync ``acquire`` is the stdlib's own method (the fast path costs what
    threading's does); async waiters queue in ``_waiters``, which ``release``
    wakes.
    """

    _inner: Any
    _waiters: Waiters

    def _back(self, inner: Any) -> None:
        self._inner = inner
        self._waiters = Waiters()
        self.acquire = inner.acquire  # the stdlib's own method: the fast path

    def _try(self) -> bool:
        return True if self._inner.acquire(False) else NOT_YET

    async def async_acquire(self) -> bool:
        """Take it without blocking the event loop; return ``True``."""
        if self._inner.acquire(False):
            return True
        return await self._waiters.wait_until(self._try)

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)


class SemBacked(Shared):
    """A process-shared primitive over ``_sem``, one named semaphore.

    The async waiters of one process queue in a :class:`~.lines.WaitLine`:
    one thread blocks on the semaphore in slices for each in turn; a unit it
    takes for a cancelled caller is given back.
    """

    _sem: SemLock
    _sem_owner: object
    _line: WaitLine

    def _make(self, scope: str, value: int, maxvalue: int) -> None:
        self._sem_owner, self._sem = new_sem(value, maxvalue)
        self._line = WaitLine()
        self._register(scope)

    def _state(self) -> tuple[Any, ...]:
        return (self._scope, sem_state(self._sem))

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, sem = state
        self._sem = open_sem(sem)
        self._line = WaitLine()

    async def async_acquire(self) -> bool:
        """Take it without blocking the event loop; return ``True``."""
        # Behind coroutines already waiting here, rather than ahead of them.
        if self._line or not self._sem.acquire(False):
            await self._line.wait(self._take, self._sem.release)
        return True

    def _take(self, timeout: float) -> bool:
        if timeout <= 0:  # never lets go of the interpreter: see WaitLine
            return bool(self._sem.acquire(False))
        return bool(self._sem.acquire(True, timeout))
