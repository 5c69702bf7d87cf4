"""Event: the type, and its in-process and process-shared implementations.

The in-process one wraps ``threading.Event`` and adds event-loop waiters; the
shared one keeps its flag in a :class:`.monitor.Monitor`.
"""

from __future__ import annotations

import functools
import threading
from abc import abstractmethod
from typing import TYPE_CHECKING, NoReturn

from .lines import line_of
from .made import MadeByExecutor
from .messages import wait_timeout, warn_old_name
from .sending import refuse_pickle
from .shared import MonitorShared, deadline_of
from .waiting import NOT_YET, Waiters

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Event",
    "LocalEvent",
    "SharedEvent",
]


class Event(MadeByExecutor):
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

    def isSet(self) -> bool:  # threading's old name
        """:meth:`is_set`, under the old name ``threading.Event`` keeps
        (deprecated there, with this warning)."""
        warn_old_name("isSet", "is_set")
        return self.is_set()


class LocalEvent(Event):
    """A :class:`unirun.Event` for threads and coroutines of one process."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._waiters = Waiters()
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


# Event words: the flag, and how many set() calls so far; one condition.
_FLAG, _SETS = 0, 1
_WAS_SET = 0


class SharedEvent(MonitorShared, Event):
    """A :class:`unirun.Event` shared with worker processes."""

    def __init__(self, scope: str) -> None:
        self._create_monitor(scope)

    def is_set(self) -> bool:
        return bool(self._monitor.words[_FLAG])

    def set(self) -> None:
        with self._monitor as monitor:
            monitor.commit((_FLAG, 1), (_SETS, monitor.words[_SETS] + 1))
            monitor.notify_all(_WAS_SET)

    def clear(self) -> None:
        with self._monitor as monitor:
            monitor.commit((_FLAG, 0))

    def _set_since(self, sets: int) -> bool:
        # Like threading.Event: a set() during the wait counts even if a clear()
        # follows before this waiter runs again.
        words = self._monitor.words
        return bool(words[_FLAG]) or words[_SETS] != sets

    def wait(self, timeout: float | None = None) -> bool:
        monitor = self._monitor
        if monitor.words[_FLAG]:
            return True
        if timeout is not None and not timeout > 0:  # NaN included, as threading
            return False
        deadline = deadline_of(None if timeout is None else wait_timeout(timeout))
        if not monitor.acquire(deadline):
            return self.is_set()
        try:
            ready = functools.partial(self._set_since, monitor.words[_SETS])
            return monitor.wait_for(_WAS_SET, ready, deadline)
        finally:
            monitor.release()

    async def async_wait(self) -> bool:
        sets = self._monitor.words[_SETS]  # before the flag: a set() from here is seen
        if not self._monitor.words[_FLAG]:
            ready = functools.partial(self._set_since, sets)
            await line_of(self, "_waiters", alike=False).wait(
                functools.partial(self._take_set, ready), None
            )
        return True

    def _take_set(self, ready: Callable[[], bool], timeout: float) -> bool:
        """An async waiter's slice; without the monitor when it need not wait
        (the words are read as ``is_set`` reads them)."""
        if ready():
            return True
        return timeout > 0 and self._wait_ready(_WAS_SET, ready, timeout)

    def __repr__(self) -> str:
        state = "set" if self.is_set() else "unset"
        return f"<unirun.Event {state} (shared with processes)>"
