"""Event: the type, and its in-process and process-shared implementations."""

from __future__ import annotations

import functools
import mmap
import threading
import time
from abc import ABC, abstractmethod
from typing import Any, NoReturn

from .shm import (
    _SEM_MAX,
    _cond_wait,
    _new_sem,
    _notify_all,
    _open_sem,
    _Segment,
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

__all__ = [
    "Event",
    "LocalEvent",
    "SharedEvent",
]


class Event(ABC):
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


class LocalEvent(Event):
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
        refuse_pickle(self)

    def __repr__(self) -> str:
        state = "set" if self._event.is_set() else "unset"
        return f"<unirun.Event {state} (threads and coroutines)>"


# Event words: the flag, how many set() calls so far, then one condition.
_FLAG, _SETS, _EVENT_WAITERS = 0, 1, 2


class SharedEvent(_Shared, Event):
    """A :class:`unirun.Event` shared with worker processes."""

    def __init__(self, scope: str) -> None:
        self._mutex_owner, self._mutex = _new_sem(1, 1)
        self._wake_owner, self._wake = _new_sem(0, _SEM_MAX)
        self._segment = _Segment.create(mmap.PAGESIZE)
        self._words = self._segment.words(4)
        self._register(scope)

    def _state(self) -> tuple[Any, ...]:
        return (
            self._scope,
            _sem_state(self._mutex),
            _sem_state(self._wake),
            self._segment.path,
        )

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, mutex, wake, path = state
        self._mutex = _open_sem(mutex)
        self._wake = _open_sem(wake)
        self._segment = _Segment(path, mmap.PAGESIZE, overflow=False, create=False)
        self._words = self._segment.words(4)

    def is_set(self) -> bool:
        return bool(self._words[_FLAG])

    def set(self) -> None:
        self._mutex.acquire()
        try:
            self._words[_FLAG] = 1
            self._words[_SETS] += 1
            _notify_all(self._words, _EVENT_WAITERS, self._wake)
        finally:
            self._mutex.release()

    def clear(self) -> None:
        self._mutex.acquire()
        try:
            self._words[_FLAG] = 0
        finally:
            self._mutex.release()

    def wait(self, timeout: float | None = None) -> bool:
        words = self._words
        if words[_FLAG]:
            return True
        if timeout is not None and not timeout > 0:  # NaN included, as threading
            return False
        deadline = (
            None if timeout is None else time.monotonic() + _wait_timeout(timeout)
        )
        self._mutex.acquire()
        try:
            # Like threading.Event: a set() during the wait counts even if a
            # clear() follows before this waiter runs again.
            sets = words[_SETS]
            while not words[_FLAG] and words[_SETS] == sets:
                remaining = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                _cond_wait(self._mutex, words, _EVENT_WAITERS, self._wake, remaining)
            return True
        finally:
            self._mutex.release()

    async def async_wait(self) -> bool:
        words = self._words
        sets = words[_SETS]  # before the flag: a set() from here on is seen
        if not words[_FLAG]:
            await take_in_thread(functools.partial(self._wait_for_set, sets))
        return True

    def _wait_for_set(self, sets: int, timeout: float) -> bool:
        """Wait up to ``timeout`` for the flag, or for any set() after ``sets``."""
        words = self._words
        self._mutex.acquire()
        try:
            if not words[_FLAG] and words[_SETS] == sets:
                _cond_wait(self._mutex, words, _EVENT_WAITERS, self._wake, timeout)
            return bool(words[_FLAG]) or words[_SETS] != sets
        finally:
            self._mutex.release()

    def __repr__(self) -> str:
        state = "set" if self.is_set() else "unset"
        return f"<unirun.Event {state} (shared with processes)>"
