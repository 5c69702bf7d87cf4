"""The Dask backend's Lock, RLock, Semaphore and BoundedSemaphore: tokens to take.

``acquire`` takes a token from a ``distributed.Queue`` on the scheduler and
``release`` puts one back, so any process may release, as with ``threading``,
and no lease can expire under a long task. A lock and a bounded semaphore keep
their tokens in a bounded queue: a release with no room is an over-release.

An RLock is the shared RLock algorithm (:class:`.Reentrant`) over such a Lock.
Its owner is who calls, as on the other backends: the process, the thread
and, in a coroutine, the task (:func:`.owner_id`). Only the owner reads or
writes its owner and depth, so they are kept in the owner's process, with no
round trip: another process only needs to know that it is not the owner.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING, Any

from ..._sync import BoundedSemaphore, Lock, Semaphore
from ..._sync.locks import Owner, Reentrant
from ..._sync.messages import MESSAGES, check_lock_arguments, wait_timeout
from ..._sync.waiting import NOT_YET
from .remote import scheduler_address
from .tokens import TOKEN, Tokens, take, take_async

if TYPE_CHECKING:
    import distributed

__all__ = ["DaskBoundedSemaphore", "DaskLock", "DaskRLock", "DaskSemaphore"]


def _lock_wait(blocking: bool, timeout: float) -> float | None:
    """``threading.Lock.acquire``'s arguments checked its way, as a wait time."""
    if timeout == -1 and blocking:
        return None
    check_lock_arguments(blocking, timeout)
    if not blocking:
        return 0
    return None if timeout == -1 else timeout


class DaskLock(Lock):
    """A :class:`unirun.Lock` held by the Dask scheduler: one token."""

    def __init__(self, client: distributed.Client) -> None:
        name = f"unirun-lock-{uuid.uuid4().hex}"
        self._tokens = Tokens(name, scheduler_address(client), 1, client, fill=1)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (DaskLock, self._tokens))

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        return take(self._tokens, _lock_wait(blocking, timeout)) is not NOT_YET

    def release(self) -> None:
        try:
            self._tokens.give(TOKEN, timeout=0)
        except TimeoutError:
            raise RuntimeError(MESSAGES["unlocked"]) from None

    def locked(self) -> bool:
        return not self._tokens.count()

    async def async_acquire(self) -> bool:
        await take_async(self._tokens)
        return True

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<unirun.Lock {state} (on a Dask cluster)>"


class DaskSemaphore(Semaphore):
    """A :class:`unirun.Semaphore` held by the Dask scheduler: its units as tokens."""

    _bounded = False

    def __init__(self, client: distributed.Client, value: int = 1) -> None:
        if value < 0:
            raise ValueError(MESSAGES["sem_negative"])
        self._initial = value
        kind = "bounded-semaphore" if self._bounded else "semaphore"
        name = f"unirun-{kind}-{uuid.uuid4().hex}"
        maxsize = value if self._bounded else 0
        at = scheduler_address(client)
        self._tokens = Tokens(name, at, maxsize, client, fill=value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._tokens, self._initial))

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not blocking:
            if timeout is not None:
                raise ValueError(MESSAGES["sem_nonblocking"])
            timeout = 0
        value = self._tokens.take_now()
        if value is NOT_YET and timeout is not None and not timeout > 0:
            return False  # a negative (or NaN) time-out tries once, as threading
        if value is NOT_YET:
            if timeout is not None:
                wait_timeout(timeout)
            value = take(self._tokens, timeout)
        return value is not NOT_YET

    def release(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError(MESSAGES["release_n"])
        if self._bounded and self._tokens.count() + n > self._initial:
            raise ValueError(MESSAGES["too_many"])
        for _ in range(n):
            try:
                self._tokens.give(TOKEN, timeout=0 if self._bounded else None)
            except TimeoutError:
                raise ValueError(MESSAGES["too_many"]) from None

    async def async_acquire(self) -> bool:
        await take_async(self._tokens)
        return True

    def __repr__(self) -> str:
        kind = "BoundedSemaphore" if self._bounded else "Semaphore"
        return f"<unirun.{kind} (on a Dask cluster)>"


class DaskBoundedSemaphore(DaskSemaphore, BoundedSemaphore):
    """A :class:`unirun.BoundedSemaphore` held by the Dask scheduler."""

    _bounded = True


#: The owner and depth of each DaskRLock held by someone in this process, by name.
_held_here: dict[str, tuple[Owner, int]] = {}
_held_lock = threading.Lock()


class DaskRLock(Reentrant):
    """A :class:`unirun.RLock` held by the Dask scheduler: a DaskLock and its
    owner's record, kept in the owner's process.

    A task that ends holding it passes it on to the next task its worker thread
    runs, as a thread of a pool would; a task whose worker dies holding it
    leaves it held (its owner is gone, so nobody may release it): waits with a
    time-out still return ``False``.
    """

    _block: DaskLock

    def __init__(self, client: distributed.Client) -> None:
        self._block = DaskLock(client)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_rlock, (self._block,))

    @property
    def _name(self) -> str:
        return self._block._tokens.name

    def _get(self) -> tuple[Owner | None, int]:
        return _held_here.get(self._name, (None, 0))

    def _put(self, owner: Owner | None, count: int) -> None:
        with _held_lock:
            if owner is None:
                _held_here.pop(self._name, None)
            else:
                _held_here[self._name] = (owner, count)

    def __repr__(self) -> str:
        if self._get()[0] is not None:
            return self._describe("on a Dask cluster")
        state = "locked" if self.locked() else "unlocked"
        return f"<unirun.RLock {state} (on a Dask cluster)>"


def _rebuild_rlock(block: DaskLock) -> DaskRLock:
    rlock = DaskRLock.__new__(DaskRLock)
    rlock._block = block
    return rlock


def _rebuild(
    cls: type[DaskLock | DaskSemaphore], tokens: Tokens, *initial: int
) -> DaskLock | DaskSemaphore:
    primitive = cls.__new__(cls)
    primitive._tokens = tokens
    if isinstance(primitive, DaskSemaphore):
        (primitive._initial,) = initial
    return primitive
