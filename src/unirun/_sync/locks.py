"""Lock and RLock: the types, and their in-process and process-shared versions.

The in-process Lock wraps ``threading.Lock``; the shared one is a named OS
semaphore. An RLock is one algorithm (:class:`Reentrant`) over such a Lock and
two cells, its owner and its depth, kept in attributes or in shared memory.
Its owner is the calling task when called from a coroutine, else the calling
thread, and across processes the process too: ``(pid, thread, task)``.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import sys
import threading
from abc import abstractmethod
from typing import Any, NoReturn, TypeAlias

from .held import Held, LoopBacked, SemBacked
from .messages import MESSAGES, check_lock_arguments
from .sending import refuse_pickle
from .shared import Shared
from .shm import Segment

__all__ = [
    "LocalLock",
    "LocalRLock",
    "Lock",
    "Owner",
    "RLock",
    "SharedLock",
    "SharedRLock",
    "owner_id",
]

#: Who holds an RLock: (process id, thread id, task id or 0).
Owner: TypeAlias = tuple[int, int, int]
_MASK = (1 << 63) - 1  # thread and task ids as signed 64-bit words


class Lock(Held):
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

    # What threading.Condition asks of its lock; a Condition waiting on a plain
    # lock releases it once and takes it back once.
    def _is_owned(self) -> bool:
        return self.locked()

    def _release_save(self) -> Any:
        self.release()
        return None

    def _acquire_restore(self, state: Any) -> None:
        self.acquire()

    async def _async_acquire_restore(self, state: Any) -> None:
        await self.async_acquire()


class LocalLock(LoopBacked, Lock):
    """A :class:`unirun.Lock` for threads and coroutines of one process."""

    def __init__(self) -> None:
        self._back(threading.Lock())
        self._waiting = self._waiters.queue  # read directly: the hot path
        self.locked = self._inner.locked  # type: ignore[method-assign]

    def acquire(
        self, blocking: bool = True, timeout: float = -1
    ) -> bool:  # replaced per instance by the stdlib's method
        return bool(self._inner.acquire(blocking, timeout))  # pragma: no cover

    def locked(self) -> bool:  # replaced per instance by the stdlib's method
        return bool(self._inner.locked())  # pragma: no cover

    def release(self) -> None:
        self._inner.release()
        if self._waiting:
            self._waiters.wake()

    def __enter__(self) -> bool:
        return bool(self._inner.acquire())

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._inner.release()
        if self._waiting:
            self._waiters.wake()

    def __repr__(self) -> str:
        state = "locked" if self._inner.locked() else "unlocked"
        return f"<unirun.Lock {state} (threads and coroutines)>"


class SharedLock(SemBacked, Lock):
    """A :class:`unirun.Lock` shared with worker processes (an OS semaphore).

    A process that dies holding it leaves it held, as with
    ``multiprocessing.Lock``; waits with a time-out still time out.
    """

    def __init__(self, scope: str) -> None:
        self._make(scope, 1, 1)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout == -1 and blocking:  # the common call, checked cheaply
            return bool(self._sem.acquire())
        check_lock_arguments(blocking, timeout)
        if not blocking:
            return bool(self._sem.acquire(False))
        if timeout == -1:
            return bool(self._sem.acquire())
        return bool(self._sem.acquire(True, timeout))

    def release(self) -> None:
        try:
            self._sem.release()
        except ValueError:
            raise RuntimeError(MESSAGES["unlocked"]) from None

    def locked(self) -> bool:
        return bool(self._sem._is_zero())

    def __enter__(self) -> bool:
        return bool(self._sem.acquire())

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<unirun.Lock {state} (shared with processes)>"


# -- RLock ------------------------------------------------------------------------


class _Pid:
    """This process's id, refreshed in a forked child (os.getpid is a syscall)."""

    value = os.getpid()

    @classmethod
    def refresh(cls) -> None:
        cls.value = os.getpid()


os.register_at_fork(after_in_child=_Pid.refresh)


def _current_task() -> int:
    # asyncio._get_running_loop is the cheap, non-raising form of
    # get_running_loop (a C function since 3.7): most callers are threads.
    loop = asyncio._get_running_loop()
    if loop is not None:
        return id(asyncio.current_task(loop)) & _MASK
    # A trio that another thread is still importing has no lowlevel yet: then
    # no trio task runs here either.
    lowlevel = getattr(sys.modules.get("trio"), "lowlevel", None)
    in_trio_task = getattr(lowlevel, "in_trio_task", None)
    if in_trio_task is not None and in_trio_task():
        return id(lowlevel.current_task()) & _MASK  # type: ignore[union-attr]
    return 0


def owner_id() -> Owner:
    """Who is calling: (process, thread, task), the task 0 outside a coroutine."""
    return (_Pid.value, threading.get_ident() & _MASK, _current_task())


class RLock(Held):
    """A reentrant lock: :class:`threading.RLock` plus an async face.

    Create one with ``executor.RLock()``. Its owner may take it again, and must
    release it as many times. The owner is the calling task in a coroutine, the
    calling thread otherwise (and its process, on a lock shared with
    processes). ``locked()`` is 3.14's.
    """

    __slots__ = ()

    @abstractmethod
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock or, if the caller owns it, go one level deeper.

        As :meth:`threading.RLock.acquire`; returns whether it is held.

        Raises:
            ValueError: a ``timeout`` with ``blocking=False``, or a negative
                ``timeout`` other than ``-1``.
        """

    @abstractmethod
    def release(self) -> None:
        """Go one level up; the last release unlocks it.

        Raises:
            RuntimeError: the caller does not own it.
        """

    @abstractmethod
    def locked(self) -> bool:
        """Return whether anyone holds the lock."""

    @abstractmethod
    async def async_acquire(self) -> bool:
        """Take the lock (or go deeper) without blocking the event loop."""

    # threading.RLock's protocol with threading.Condition, which Conditions use.
    @abstractmethod
    def _is_owned(self) -> bool:
        """Whether the caller owns the lock."""

    @abstractmethod
    def _recursion_count(self) -> int:
        """How many times the caller holds it (0 if it does not own it)."""

    @abstractmethod
    def _release_save(self) -> Any:
        """Release it entirely; return what :meth:`_acquire_restore` needs.

        Raises:
            RuntimeError: the caller does not own it.
        """

    @abstractmethod
    def _acquire_restore(self, state: Any) -> None:
        """Take it back as :meth:`_release_save` left it."""

    @abstractmethod
    async def _async_acquire_restore(self, state: Any) -> None:
        """:meth:`_acquire_restore` without blocking the event loop."""


class Reentrant(RLock):
    """The RLock algorithm over ``_block`` (a unirun Lock) and two cells.

    ``_get``/``_put`` read and write the owner and the depth; only the owner
    writes them, while holding ``_block``.
    """

    __slots__ = ()

    _block: Lock

    @abstractmethod
    def _get(self) -> tuple[Owner | None, int]:
        """The owner (None if free) and the depth."""

    @abstractmethod
    def _put(self, owner: Owner | None, count: int) -> None:
        """Record the owner and the depth."""

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = owner_id()
        owner, count = self._get()
        if owner == me:
            check_lock_arguments(blocking, timeout)  # threading checks them first
            self._put(me, count + 1)
            return True
        if not self._block.acquire(blocking, timeout):
            return False
        self._put(me, 1)
        return True

    async def async_acquire(self) -> bool:
        me = owner_id()
        owner, count = self._get()
        if owner == me:
            self._put(me, count + 1)
            return True
        await self._block.async_acquire()
        self._put(me, 1)
        return True

    def release(self) -> None:
        owner, count = self._get()
        if owner != owner_id():
            raise RuntimeError(MESSAGES["unowned"])
        if count > 1:
            self._put(owner, count - 1)
        else:
            self._put(None, 0)
            self._block.release()

    def locked(self) -> bool:
        return self._block.locked()

    def _is_owned(self) -> bool:
        return self._get()[0] == owner_id()

    def _recursion_count(self) -> int:
        owner, count = self._get()
        return count if owner == owner_id() else 0

    def _release_save(self) -> Any:
        owner, count = self._get()
        if owner != owner_id():
            raise RuntimeError(MESSAGES["unowned"])
        self._put(None, 0)
        self._block.release()
        return count, owner

    def _acquire_restore(self, state: Any) -> None:
        self._block.acquire()
        self._put(state[1], state[0])

    async def _async_acquire_restore(self, state: Any) -> None:
        await self._block.async_acquire()
        self._put(state[1], state[0])

    def _describe(self, where: str) -> str:
        owner, count = self._get()
        if owner is None:
            return f"<unirun.RLock unlocked ({where})>"
        return f"<unirun.RLock locked owner={owner} count={count} ({where})>"


class LocalRLock(Reentrant):
    """A :class:`unirun.RLock` for threads and coroutines of one process."""

    def __init__(self) -> None:
        self._block = LocalLock()
        self._owner: Owner | None = None
        self._count = 0

    def _get(self) -> tuple[Owner | None, int]:
        return self._owner, self._count

    def _put(self, owner: Owner | None, count: int) -> None:
        self._owner, self._count = owner, count

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)

    def __repr__(self) -> str:
        return self._describe("threads and coroutines")


# Shared RLock words: the owner's pid (0: free), thread and task, then the depth.
_PID, _THREAD, _TASK, _DEPTH = 0, 1, 2, 3


class SharedRLock(Shared, Reentrant):
    """A :class:`unirun.RLock` shared with worker processes.

    A named semaphore, and the owner and depth in a page of shared memory. A
    process that dies holding it leaves it held, as with a Lock.
    """

    def __init__(self, scope: str) -> None:
        self._block = SharedLock(scope)
        self._segment = Segment.create(mmap.PAGESIZE)
        self._words = self._segment.words(0, 4)
        self._register(scope)

    def _state(self) -> tuple[Any, ...]:
        return (self._scope, self._block, self._segment.state())

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, self._block, segment = state
        self._segment = Segment.open(segment)
        self._words = self._segment.words(0, 4)

    def _get(self) -> tuple[Owner | None, int]:
        words = self._words
        pid = words[_PID]  # written last by an acquirer, cleared first on release
        if not pid:
            return None, 0
        return (pid, words[_THREAD], words[_TASK]), words[_DEPTH]

    def _put(self, owner: Owner | None, count: int) -> None:
        words = self._words
        if owner is None:
            words[_PID] = 0
            words[_DEPTH] = 0
            return
        words[_THREAD], words[_TASK], words[_DEPTH] = owner[1], owner[2], count
        words[_PID] = owner[0]

    def __repr__(self) -> str:
        return self._describe("shared with processes")
