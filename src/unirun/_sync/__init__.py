"""Queues, locks, semaphores and events with one semantics on every backend."""

from __future__ import annotations

from typing import Any

from .events import Event
from .locks import BoundedSemaphore, Lock, Semaphore
from .queues import Queue

__all__ = [
    "BoundedSemaphore",
    "Event",
    "Lock",
    "Queue",
    "Semaphore",
    "make_bounded_semaphore",
    "make_event",
    "make_lock",
    "make_queue",
    "make_semaphore",
]


def make_queue(scope: str | None, maxsize: int) -> Queue[Any]:
    """A queue for threads and coroutines (``scope`` None) or shared with processes."""
    if scope is None:
        from .queues import LocalQueue

        return LocalQueue(maxsize)
    from .queues import SharedQueue

    return SharedQueue(scope, maxsize)


def make_lock(scope: str | None) -> Lock:
    """A lock for threads and coroutines (``scope`` None) or shared with processes."""
    if scope is None:
        from .locks import LocalLock

        return LocalLock()
    from .locks import SharedLock

    return SharedLock(scope)


def make_semaphore(scope: str | None, value: int) -> Semaphore:
    """A semaphore, local (``scope`` None) or shared with processes."""
    if scope is None:
        from .locks import LocalSemaphore

        return LocalSemaphore(value)
    from .locks import SharedSemaphore

    return SharedSemaphore(scope, value)


def make_bounded_semaphore(scope: str | None, value: int) -> BoundedSemaphore:
    """A bounded semaphore, local (``scope`` None) or shared with processes."""
    if scope is None:
        from .locks import LocalBoundedSemaphore

        return LocalBoundedSemaphore(value)
    from .locks import SharedBoundedSemaphore

    return SharedBoundedSemaphore(scope, value)


def make_event(scope: str | None) -> Event:
    """An event, local (``scope`` None) or shared with processes."""
    if scope is None:
        from .events import LocalEvent

        return LocalEvent()
    from .events import SharedEvent

    return SharedEvent(scope)
