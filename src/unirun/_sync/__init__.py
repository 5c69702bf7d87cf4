"""Queues, locks, semaphores and events with one semantics on every backend.

An executor makes its primitives through a :class:`Kernel`: the in-process one
(:data:`LOCAL`) for executors whose tasks share the caller's process, a
:class:`SharedKernel` for executors whose tasks run in worker processes. A
backend with primitives of its own (a cluster's, say) supplies its own kernel.
:class:`PrimitiveMethods` gives executors and their views ``ex.Queue()`` and
the rest, each a call to that kernel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

from .events import Event
from .locks import BoundedSemaphore, Lock, Semaphore
from .queues import Queue

__all__ = [
    "LOCAL",
    "BoundedSemaphore",
    "Event",
    "Kernel",
    "Lock",
    "MakesPrimitives",
    "PrimitiveMethods",
    "Queue",
    "Semaphore",
    "SharedKernel",
]


class Kernel(ABC):
    """Makes the primitives of one executor: one method per primitive."""

    __slots__ = ()

    @abstractmethod
    def Queue(self, maxsize: int) -> Queue[Any]:
        """A FIFO queue; ``maxsize <= 0`` means unbounded."""

    @abstractmethod
    def Lock(self) -> Lock:
        """A mutual-exclusion lock."""

    @abstractmethod
    def Semaphore(self, value: int) -> Semaphore:
        """A counting semaphore."""

    @abstractmethod
    def BoundedSemaphore(self, value: int) -> BoundedSemaphore:
        """A semaphore that may not rise above ``value``."""

    @abstractmethod
    def Event(self) -> Event:
        """An event flag."""


class _LocalKernel(Kernel):
    """Primitives for threads and coroutines of this process."""

    __slots__ = ()

    def Queue(self, maxsize: int) -> Queue[Any]:
        from .queues import LocalQueue

        return LocalQueue(maxsize)

    def Lock(self) -> Lock:
        from .locks import LocalLock

        return LocalLock()

    def Semaphore(self, value: int) -> Semaphore:
        from .locks import LocalSemaphore

        return LocalSemaphore(value)

    def BoundedSemaphore(self, value: int) -> BoundedSemaphore:
        from .locks import LocalBoundedSemaphore

        return LocalBoundedSemaphore(value)

    def Event(self) -> Event:
        from .events import LocalEvent

        return LocalEvent()


#: The kernel of every executor whose tasks run in the caller's process.
LOCAL: Kernel = _LocalKernel()


class SharedKernel(Kernel):
    """Primitives shared with the worker processes of one executor.

    ``scope`` names that executor: its primitives pickle only into its tasks.
    """

    __slots__ = ("scope",)

    def __init__(self, scope: str) -> None:
        self.scope = scope

    def Queue(self, maxsize: int) -> Queue[Any]:
        from .queues import SharedQueue

        return SharedQueue(self.scope, maxsize)

    def Lock(self) -> Lock:
        from .locks import SharedLock

        return SharedLock(self.scope)

    def Semaphore(self, value: int) -> Semaphore:
        from .locks import SharedSemaphore

        return SharedSemaphore(self.scope, value)

    def BoundedSemaphore(self, value: int) -> BoundedSemaphore:
        from .locks import SharedBoundedSemaphore

        return SharedBoundedSemaphore(self.scope, value)

    def Event(self) -> Event:
        from .events import SharedEvent

        return SharedEvent(self.scope)


class MakesPrimitives(Protocol):
    """The primitive-making part of :class:`unirun.Executor`."""

    def Queue(self, maxsize: int = 0) -> Queue[Any]:
        """A FIFO queue for this executor's tasks and the caller."""
        ...

    def Lock(self) -> Lock:
        """A lock for this executor's tasks and the caller."""
        ...

    def Semaphore(self, value: int = 1) -> Semaphore:
        """A counting semaphore for this executor's tasks and the caller."""
        ...

    def BoundedSemaphore(self, value: int = 1) -> BoundedSemaphore:
        """A bounded semaphore for this executor's tasks and the caller."""
        ...

    def Event(self) -> Event:
        """An event flag for this executor's tasks and the caller."""
        ...


class PrimitiveMethods:
    """``ex.Queue()``, ``ex.Lock()``...: each asks the executor's :class:`Kernel`."""

    __slots__ = ()

    def _kernel(self) -> Kernel:
        raise NotImplementedError

    def Queue(self, maxsize: int = 0) -> Queue[Any]:
        """A FIFO queue usable by this executor's tasks and by the caller.

        Sync methods are :class:`queue.Queue`'s; ``async_put``, ``async_get``
        and ``async_join`` wait without blocking an event loop. On executors
        whose tasks run in other processes, the queue is shared with them.
        ``maxsize <= 0`` means unbounded.
        """
        return self._kernel().Queue(maxsize)

    def Lock(self) -> Lock:
        """A lock usable by this executor's tasks and by the caller.

        :class:`threading.Lock`'s methods, plus ``async_acquire`` and
        ``async with``.
        """
        return self._kernel().Lock()

    def Semaphore(self, value: int = 1) -> Semaphore:
        """A counting semaphore, as :class:`threading.Semaphore`, plus async."""
        return self._kernel().Semaphore(value)

    def BoundedSemaphore(self, value: int = 1) -> BoundedSemaphore:
        """A semaphore that may not rise above ``value``, plus async."""
        return self._kernel().BoundedSemaphore(value)

    def Event(self) -> Event:
        """An event flag, as :class:`threading.Event`, plus ``async_wait``."""
        return self._kernel().Event()
