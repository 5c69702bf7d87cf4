"""Condition: the type, the algorithm, and where its waiters wait.

:class:`Waiting` is :class:`threading.Condition`'s algorithm with an async
face, over a unirun Lock or RLock: a waiter joins the line before it releases
the lock, so a notification between the two is not lost; notify wakes the
oldest waiters, exactly as many as asked, and a wait returns True only if it
was notified. Where the line lives is the one difference: in this process
(:class:`LocalCondition`, threads and event loops in one
:class:`.waiting.Waiters`) or in shared memory (:class:`SharedCondition`,
waiter slots of a :class:`.monitor.Monitor`, woken by doorbell).
"""

from __future__ import annotations

import functools
import time
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import anyio

from .held import Held
from .locks import LocalLock, LocalRLock, Lock, RLock, SharedLock, SharedRLock
from .messages import MESSAGES, wait_timeout, warn_old_name
from .sending import refuse_pickle
from .shared import MonitorShared
from .waiting import LoopWaiter, ThreadWaiter, Waiters, take_in_thread

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Condition", "LocalCondition", "SharedCondition", "Waiting"]

T = TypeVar("T")


class Condition(Held):
    """A condition variable: :class:`threading.Condition` plus an async face.

    Create one with ``executor.Condition(lock=None)``; the lock is a new
    ``executor.RLock()`` unless given (a Lock or RLock of the same executor).
    ``wait``, ``wait_for``, ``notify`` and ``notify_all`` need it held, as
    with ``threading``; ``async_wait`` and ``async_wait_for`` wait without
    blocking the event loop.
    """

    __slots__ = ()

    @abstractmethod
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the underlying lock; return whether it was taken."""

    @abstractmethod
    def release(self) -> None:
        """Release the underlying lock."""

    @abstractmethod
    async def async_acquire(self) -> bool:
        """Take the underlying lock without blocking the event loop."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> bool:
        """Release the lock, sleep until notified or ``timeout``, take it back.

        Returns whether it was notified.

        Raises:
            RuntimeError: the lock is not held.
        """

    @abstractmethod
    def wait_for(
        self, predicate: Callable[[], T], timeout: float | None = None
    ) -> T | bool:
        """Wait until ``predicate()`` is true or ``timeout`` passes; return it."""

    @abstractmethod
    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters, oldest first.

        Raises:
            RuntimeError: the lock is not held.
        """

    @abstractmethod
    def notify_all(self) -> None:
        """Wake every waiter.

        Raises:
            RuntimeError: the lock is not held.
        """

    def notifyAll(self) -> None:  # threading's old name
        """:meth:`notify_all`, under the old name ``threading.Condition`` keeps
        (deprecated there, with this warning)."""
        warn_old_name("notifyAll", "notify_all")
        self.notify_all()

    @abstractmethod
    async def async_wait(self) -> bool:
        """:meth:`wait` without blocking the event loop (no time-out: use a
        cancel scope); return ``True``. A cancelled wait takes the lock back
        before it ends, and passes on a notification it got."""

    @abstractmethod
    async def async_wait_for(self, predicate: Callable[[], T]) -> T:
        """:meth:`wait_for` without blocking the event loop; return the value."""


class Waiting(Condition):
    """The algorithm over ``_lock``; subclasses keep the line of waiters."""

    __slots__ = ()

    _lock: Lock | RLock

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    async def async_acquire(self) -> bool:
        return await self._lock.async_acquire()

    def _check(self, message: str) -> None:
        if not self._lock._is_owned():
            raise RuntimeError(MESSAGES[message])

    def wait(self, timeout: float | None = None) -> bool:
        self._check("wait_unowned")
        waiter = self._enter(in_loop=False)
        saved = self._lock._release_save()
        try:
            return self._sleep(waiter, timeout)
        finally:
            self._lock._acquire_restore(saved)

    def wait_for(
        self, predicate: Callable[[], T], timeout: float | None = None
    ) -> T | bool:
        # As threading: the first wait gets the whole time-out, whatever it is;
        # later ones what is left of it, and none once it has run out.
        deadline: float | None = None
        result = predicate()
        while not result:
            if timeout is not None:
                if deadline is None:
                    deadline = time.monotonic() + timeout
                else:
                    timeout = deadline - time.monotonic()
                    if timeout <= 0:
                        break
            self.wait(timeout)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> None:
        self._check("notify_unowned")
        self._wake(n)

    def notify_all(self) -> None:
        self._check("notify_unowned")
        self._wake(None)

    async def async_wait(self) -> bool:
        self._check("wait_unowned")
        waiter = self._enter(in_loop=True)
        saved = self._lock._release_save()
        try:
            await self._async_sleep(waiter)
        finally:
            with anyio.CancelScope(shield=True):
                await self._lock._async_acquire_restore(saved)
        return True

    async def async_wait_for(self, predicate: Callable[[], T]) -> T:
        result = predicate()
        while not result:
            await self.async_wait()
            result = predicate()
        return result

    @abstractmethod
    def _enter(self, *, in_loop: bool) -> Any:
        """Join the line of waiters (lock held); return the waiter."""

    @abstractmethod
    def _sleep(self, waiter: Any, timeout: float | None) -> bool:
        """Sleep until notified or ``timeout``; leave the line; return notified."""

    @abstractmethod
    async def _async_sleep(self, waiter: Any) -> None:
        """Sleep until notified; leave the line (passing a wake-up on if cancelled)."""

    @abstractmethod
    def _wake(self, n: int | None) -> None:
        """Wake ``n`` waiters (None: all)."""

    def _describe(self, where: str) -> str:
        return f"<unirun.Condition lock={self._lock!r} ({where})>"


def _lock_of(lock: Lock | RLock | None, kinds: tuple[type, ...], default: Any) -> Any:
    if lock is None:
        return default()
    if not isinstance(lock, kinds):
        raise TypeError(
            "a unirun.Condition needs a Lock or RLock made by an executor of the "
            f"same kind as the condition's, not {lock!r}"
        )
    return lock


class LocalCondition(Waiting):
    """A :class:`unirun.Condition` for threads and coroutines of one process."""

    def __init__(self, lock: Lock | RLock | None = None) -> None:
        self._lock = _lock_of(lock, (LocalLock, LocalRLock), LocalRLock)
        self._waiters = Waiters()

    def _enter(self, *, in_loop: bool) -> LoopWaiter | ThreadWaiter:
        waiter = LoopWaiter() if in_loop else ThreadWaiter()
        self._waiters.add(waiter)
        return waiter

    def _sleep(self, waiter: ThreadWaiter, timeout: float | None) -> bool:
        try:
            waiter.sleep(timeout)
        except BaseException:
            if self._waiters.remove(waiter):
                self._waiters.wake()  # notified, then interrupted: pass it on
            raise
        return self._waiters.remove(waiter)

    async def _async_sleep(self, waiter: LoopWaiter) -> None:
        try:
            await waiter.event.wait()
        except BaseException:
            if self._waiters.remove(waiter):
                self._waiters.wake()
            raise

    def _wake(self, n: int | None) -> None:
        self._waiters.wake(len(self._waiters.queue) if n is None else n)

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)

    def __repr__(self) -> str:
        return self._describe("threads and coroutines")


_NOTIFIED = 0  # the shared condition's one condition of its monitor


class SharedCondition(MonitorShared, Waiting):
    """A :class:`unirun.Condition` shared with worker processes.

    Its waiters wait in slots of a shared monitor, each on its own doorbell.
    """

    def __init__(self, scope: str, lock: Lock | RLock | None = None) -> None:
        self._lock = _lock_of(
            lock, (SharedLock, SharedRLock), functools.partial(SharedRLock, scope)
        )
        self._create_monitor(scope)

    def _more_state(self) -> tuple[Any, ...]:
        return (self._lock,)

    def _open_more(self, more: tuple[Any, ...]) -> None:
        (self._lock,) = more

    def _enter(self, *, in_loop: bool) -> int:
        with self._monitor as monitor:
            return monitor.enter(_NOTIFIED)

    def _sleep(self, slot: int, timeout: float | None) -> bool:
        # As threading: a time-out of 0 or less (or NaN) does not wait.
        deadline = None
        try:
            if timeout is not None:
                seconds = wait_timeout(timeout) if timeout > 0 else 0
                deadline = time.monotonic() + seconds
        except BaseException:  # a time-out threading refuses too: out of line
            with self._monitor as monitor:
                monitor.leave_passing_on(slot)
            raise
        return self._monitor.finish_waiting(slot, deadline)

    def _sleep_slice(self, slot: int, timeout: float) -> bool:
        with self._monitor as monitor:
            deadline = time.monotonic() + timeout
            return monitor.sleep(slot, deadline, until_notified=True)

    async def _async_sleep(self, slot: int) -> None:
        try:
            await take_in_thread(functools.partial(self._sleep_slice, slot))
        except BaseException:
            with self._monitor as monitor:
                monitor.leave_passing_on(slot)  # notified, then cancelled
            raise
        with self._monitor as monitor:
            monitor.leave(slot)

    def _wake(self, n: int | None) -> None:
        with self._monitor as monitor:
            if n is None:
                monitor.notify_all(_NOTIFIED)
            else:
                monitor.notify(_NOTIFIED, n)

    def __repr__(self) -> str:
        return self._describe("shared with processes")
