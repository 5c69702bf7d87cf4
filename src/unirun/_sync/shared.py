"""Pickling and per-process identity of the process-shared primitives.

A shared primitive pickles only into tasks of the executor that created it
(:func:`.sending.check_send`) and travels as the names of its OS resources; a
process opens each primitive once, however many tasks bring it, and keeps the
most recently used open between tasks.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any

from .monitor import DATA_OFFSET, Monitor
from .sending import check_send
from .shm import Segment

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MonitorShared", "Shared", "attach", "deadline_of"]

# A stream of tasks that all take the same queue does not reopen it each time.
_attached: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_recent: collections.deque[object] = collections.deque(maxlen=64)
_attach_lock = threading.Lock()


def attach(cls: type[Shared], key: str, state: tuple[Any, ...]) -> Shared:
    """This process's copy of the primitive ``key``, opened on first use."""
    with _attach_lock:
        primitive = _attached.get(key)
        if primitive is None:
            primitive = cls.__new__(cls)
            primitive._key = key
            primitive._open(state)
            _attached[key] = primitive
            _recent.append(primitive)
        return primitive


class Shared:
    """Base of the process-shared primitives: their scope, pickling and identity."""

    _key: str
    _scope: str

    def _register(self, scope: str) -> None:
        self._scope = scope
        self._key = uuid.uuid4().hex
        with _attach_lock:
            _attached[self._key] = self

    def _state(self) -> tuple[Any, ...]:
        """What another process needs to open this primitive (scope first)."""
        raise NotImplementedError

    def _open(self, state: tuple[Any, ...]) -> None:
        """Open the primitive :meth:`_state` described, in this process."""
        raise NotImplementedError

    def __reduce__(self) -> tuple[Any, ...]:
        check_send(self, self._scope)
        return (attach, (type(self), self._key, self._state()))


def deadline_of(timeout: float | None) -> float | None:
    """The ``time.monotonic()`` at which a wait of ``timeout`` seconds ends."""
    return None if timeout is None else time.monotonic() + timeout


class MonitorShared(Shared):
    """A shared primitive whose state is a :class:`.monitor.Monitor`.

    Subclasses pickle what else they hold after the monitor's segment.
    """

    _monitor: Monitor

    def _create_monitor(
        self, scope: str, data: int = 0, *, overflow: bool = False
    ) -> None:
        """Make the monitor (``data`` bytes after it); register the primitive."""
        segment = Segment.create(DATA_OFFSET + data, overflow=overflow)
        self._monitor = Monitor(segment, created=True)
        self._register(scope)

    def _state(self) -> tuple[Any, ...]:
        return (self._scope, self._monitor.segment.state(), *self._more_state())

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, segment, *more = state
        self._monitor = Monitor(Segment.open(segment), created=False)
        self._open_more(tuple(more))

    def _more_state(self) -> tuple[Any, ...]:
        return ()

    def _open_more(self, more: tuple[Any, ...]) -> None:
        pass

    def _wait_ready(
        self, condition: int, ready: Callable[[], bool], timeout: float
    ) -> bool:
        """Wait up to ``timeout`` for ``ready()`` (checked under the mutex).

        What an async method's waiting thread runs, one slice at a time.
        """
        monitor = self._monitor
        with monitor:
            if ready():
                return True
            monitor.wait(condition, time.monotonic() + timeout, ready)
            return ready()

    def _pass_on(self, condition: int) -> None:
        """Hand a wake-up that a cancelled waiter did not use to the next waiter."""
        with self._monitor as monitor:
            monitor.notify(condition)
