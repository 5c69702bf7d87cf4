"""Primitives for executors whose tasks share the caller's process.

The sync side *is* the stdlib object's (``threading`` locks, ``queue.Queue``),
so its semantics and speed are the stdlib's. The async side adds event-loop
waiters that every state change (``release``, ``put``, ``get``, ``set``...)
wakes, whichever thread it happens in.
"""

from __future__ import annotations

import functools
import queue
import sys
import threading
from typing import Any, NoReturn, TypeVar

from . import _api
from ._waiting import NOT_YET, LoopWaiters, check_send

__all__ = [
    "LocalBoundedSemaphore",
    "LocalEvent",
    "LocalLock",
    "LocalQueue",
    "LocalSemaphore",
]

T = TypeVar("T")


def _refuse_pickle(primitive: object) -> NoReturn:
    check_send(primitive, None)
    raise AssertionError("unreachable")  # pragma: no cover


class LocalLock(_api.Lock):
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
        _refuse_pickle(self)

    def __repr__(self) -> str:
        state = "locked" if self._lock.locked() else "unlocked"
        return f"<unirun.Lock {state} (threads and coroutines)>"


class LocalSemaphore(_api.Semaphore):
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
        _refuse_pickle(self)

    def __repr__(self) -> str:
        return (
            f"<unirun.{_kind(self)} value={self._sem._value} (threads and coroutines)>"
        )


class LocalBoundedSemaphore(LocalSemaphore, _api.BoundedSemaphore):
    """A :class:`unirun.BoundedSemaphore` for threads and coroutines."""

    _factory = threading.BoundedSemaphore


class LocalEvent(_api.Event):
    """A :class:`unirun.Event` for threads and coroutines of one process."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._waiters = LoopWaiters()
        self._sets = 0  # set() calls so far: a set-then-clear still wakes waiters
        self.is_set = self._event.is_set  # type: ignore[method-assign]
        self.clear = self._event.clear  # type: ignore[method-assign]
        self.wait = self._event.wait  # type: ignore[method-assign]

    def is_set(self) -> bool:  # replaced per instance by the stdlib's method
        return self._event.is_set()  # pragma: no cover

    def clear(self) -> None:  # replaced per instance by the stdlib's method
        self._event.clear()  # pragma: no cover

    def wait(
        self, timeout: float | None = None
    ) -> bool:  # replaced per instance by the stdlib's method
        return self._event.wait(timeout)  # pragma: no cover

    def set(self) -> None:
        self._sets += 1  # first: a waiter that sees no change sees the flag
        self._event.set()
        if self._waiters:
            self._waiters.wake_all()

    async def async_wait(self) -> bool:
        if self._event.is_set():
            return True
        sets = self._sets

        def attempt() -> bool:
            # Like threading.Event.wait: a set() while waiting counts even if a
            # clear() came before this waiter ran again.
            return True if self._event.is_set() or self._sets != sets else NOT_YET

        return await self._waiters.wait_until(attempt)

    def __reduce__(self) -> NoReturn:
        _refuse_pickle(self)

    def __repr__(self) -> str:
        state = "set" if self._event.is_set() else "unset"
        return f"<unirun.Event {state} (threads and coroutines)>"


class LocalQueue(queue.Queue[T], _api.Queue[T]):
    """A :class:`unirun.Queue` for threads and coroutines: a ``queue.Queue``."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self._getters = LoopWaiters()
        self._putters = LoopWaiters()
        self._joiners = LoopWaiters()

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

    if sys.version_info >= (3, 13):

        def shutdown(self, immediate: bool = False) -> None:
            """:meth:`queue.Queue.shutdown`, waking async waiters too."""
            super().shutdown(immediate)
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
        _refuse_pickle(self)

    def __repr__(self) -> str:
        return (
            f"<unirun.Queue maxsize={self.maxsize} qsize={self.qsize()} "
            "(threads and coroutines)>"
        )


def _kind(primitive: object) -> str:
    return type(primitive).__name__.removeprefix("Local").removeprefix("Shared")
