"""Queues, locks, semaphores and events with one semantics on every backend."""

from __future__ import annotations

from typing import Any

from ._api import BoundedSemaphore, Event, Lock, Queue, Semaphore

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
        from ._local import LocalQueue

        return LocalQueue(maxsize)
    from ._shared import SharedQueue

    return SharedQueue(scope, maxsize)


def make_lock(scope: str | None) -> Lock:
    """A lock for threads and coroutines (``scope`` None) or shared with processes."""
    if scope is None:
        from ._local import LocalLock

        return LocalLock()
    from ._shared import SharedLock

    return SharedLock(scope)


def make_semaphore(scope: str | None, value: int) -> Semaphore:
    """A semaphore, local (``scope`` None) or shared with processes."""
    if scope is None:
        from ._local import LocalSemaphore

        return LocalSemaphore(value)
    from ._shared import SharedSemaphore

    return SharedSemaphore(scope, value)


def make_bounded_semaphore(scope: str | None, value: int) -> BoundedSemaphore:
    """A bounded semaphore, local (``scope`` None) or shared with processes."""
    if scope is None:
        from ._local import LocalBoundedSemaphore

        return LocalBoundedSemaphore(value)
    from ._shared import SharedBoundedSemaphore

    return SharedBoundedSemaphore(scope, value)


def make_event(scope: str | None) -> Event:
    """An event, local (``scope`` None) or shared with processes."""
    if scope is None:
        from ._local import LocalEvent

        return LocalEvent()
    from ._shared import SharedEvent

    return SharedEvent(scope)
