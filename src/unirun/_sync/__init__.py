"""Queues, locks, conditions, barriers, events and dicts: one semantics everywhere.

An executor makes its primitives through a :class:`Kernel`: the in-process one
(:data:`LOCAL`) for executors whose tasks share the caller's process, a
:class:`SharedKernel` for executors whose tasks run in worker processes. A
backend with primitives of its own (a cluster's, say) supplies its own kernel.
:class:`PrimitiveMethods` gives executors and their views ``ex.Queue()`` and
the rest, each a call to that kernel.

Where to read: each primitive's module has its public type and both versions
(``queues`` and ``ringqueue``, ``locks``, ``semaphores``, ``conditions``,
``barriers``, ``events``, ``dicts``); ``held`` is what lock-like ones share.
``waiting`` is how async code waits in this process. The shared versions are
built on ``monitor`` (shared words, waiter slots rung by ``doorbells``) and its
``lanes`` (a ``mutex`` that a holder's death releases, and a journal), over the
OS resources of ``shm``; ``shared`` is how they pickle and open. ``sending`` is
where a primitive may be pickled to; ``messages`` the stdlib's error messages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeAlias, TypeVar

from .barriers import Barrier, LocalBarrier, SharedBarrier
from .conditions import Condition, LocalCondition, SharedCondition
from .dicts import Dict, LocalDict
from .events import Event, LocalEvent, SharedEvent
from .locks import LocalLock, LocalRLock, Lock, RLock, SharedLock, SharedRLock
from .logdicts import SharedDict
from .queues import LocalQueue, Queue, QueueShutDown
from .ringqueue import SharedQueue
from .semaphores import (
    BoundedSemaphore,
    LocalBoundedSemaphore,
    LocalSemaphore,
    Semaphore,
    SharedBoundedSemaphore,
    SharedSemaphore,
)
from .sending import sending_to

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "LOCAL",
    "PRIMITIVES",
    "Barrier",
    "BoundedSemaphore",
    "Condition",
    "Dict",
    "Event",
    "Kernel",
    "Lock",
    "MakesPrimitives",
    "PrimitiveMethods",
    "Queue",
    "QueueShutDown",
    "RLock",
    "Semaphore",
    "SharedKernel",
    "sending_to",
]


T = TypeVar("T")
#: What a Condition may be made over (the name: methods called Lock shadow it).
AnyLock: TypeAlias = Lock | RLock


class Kernel(ABC):
    """Makes the primitives of one executor: one method per primitive.

    Arguments arrive as the caller gave them; the primitive checks them.
    """

    __slots__ = ()

    @abstractmethod
    def Queue(self, maxsize: int) -> Queue[Any]:
        """A FIFO queue; ``maxsize <= 0`` means unbounded."""

    @abstractmethod
    def Lock(self) -> Lock:
        """A mutual-exclusion lock."""

    @abstractmethod
    def RLock(self) -> RLock:
        """A reentrant lock."""

    @abstractmethod
    def Condition(self, lock: AnyLock | None) -> Condition:
        """A condition variable over ``lock`` (a new RLock if None)."""

    @abstractmethod
    def Semaphore(self, value: int) -> Semaphore:
        """A counting semaphore."""

    @abstractmethod
    def BoundedSemaphore(self, value: int) -> BoundedSemaphore:
        """A semaphore that may not rise above ``value``."""

    @abstractmethod
    def Event(self) -> Event:
        """An event flag."""

    @abstractmethod
    def Barrier(
        self, parties: int, action: Callable[[], object] | None, timeout: float | None
    ) -> Barrier:
        """A barrier for ``parties`` parties."""

    @abstractmethod
    def Dict(self) -> Dict[Any, Any]:
        """A mapping, every operation atomic."""


#: Each primitive's class in this process and across processes: the one table
#: both built-in kernels read. The shared classes take the executor's scope first.
PRIMITIVES: Final[dict[Any, tuple[type[Any], type[Any]]]] = {
    Queue: (LocalQueue, SharedQueue),
    Lock: (LocalLock, SharedLock),
    RLock: (LocalRLock, SharedRLock),
    Condition: (LocalCondition, SharedCondition),
    Semaphore: (LocalSemaphore, SharedSemaphore),
    BoundedSemaphore: (LocalBoundedSemaphore, SharedBoundedSemaphore),
    Event: (LocalEvent, SharedEvent),
    Barrier: (LocalBarrier, SharedBarrier),
    Dict: (LocalDict, SharedDict),
}


class _TableKernel(Kernel):
    """A kernel that makes each primitive from one column of :data:`PRIMITIVES`."""

    __slots__ = ("_column", "_leading")

    def __init__(self, column: int, leading: tuple[object, ...]) -> None:
        self._column = column
        self._leading = leading  # the arguments every class of the column takes

    def _make(self, kind: Callable[..., T], *args: object) -> T:
        made: T = PRIMITIVES[kind][self._column](*self._leading, *args)
        return made

    def Queue(self, maxsize: int) -> Queue[Any]:
        return self._make(Queue, maxsize)

    def Lock(self) -> Lock:
        return self._make(Lock)

    def RLock(self) -> RLock:
        return self._make(RLock)

    def Condition(self, lock: AnyLock | None) -> Condition:
        return self._make(Condition, lock)

    def Semaphore(self, value: int) -> Semaphore:
        return self._make(Semaphore, value)

    def BoundedSemaphore(self, value: int) -> BoundedSemaphore:
        return self._make(BoundedSemaphore, value)

    def Event(self) -> Event:
        return self._make(Event)

    def Barrier(
        self, parties: int, action: Callable[[], object] | None, timeout: float | None
    ) -> Barrier:
        return self._make(Barrier, parties, action, timeout)

    def Dict(self) -> Dict[Any, Any]:
        return self._make(Dict)


#: The kernel of every executor whose tasks run in the caller's process.
LOCAL: Kernel = _TableKernel(0, ())


class SharedKernel(_TableKernel):
    """Primitives shared with the worker processes of one executor.

    ``scope`` names that executor: its primitives pickle only into its tasks.
    """

    __slots__ = ("scope",)

    def __init__(self, scope: str) -> None:
        super().__init__(1, (scope,))
        self.scope = scope


class MakesPrimitives(Protocol):
    """The primitive-making part of :class:`unirun.Executor`."""

    def Queue(self, maxsize: int = 0) -> Queue[Any]:
        """A FIFO queue for this executor's tasks and the caller."""
        ...

    def Lock(self) -> Lock:
        """A lock for this executor's tasks and the caller."""
        ...

    def RLock(self) -> RLock:
        """A reentrant lock for this executor's tasks and the caller."""
        ...

    def Condition(self, lock: AnyLock | None = None) -> Condition:
        """A condition variable for this executor's tasks and the caller."""
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

    def Barrier(
        self,
        parties: int,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> Barrier:
        """A barrier for this executor's tasks and the caller."""
        ...

    def Dict(self) -> Dict[Any, Any]:
        """A mapping shared by this executor's tasks and the caller."""
        ...


class PrimitiveMethods:
    """``ex.Queue()``, ``ex.Lock()``...: each asks the executor's :class:`Kernel`."""

    __slots__ = ()

    def _kernel(self) -> Kernel:
        raise NotImplementedError

    def Queue(self, maxsize: int = 0) -> Queue[Any]:
        """A FIFO queue usable by this executor's tasks and by the caller.

        Sync methods are :class:`queue.Queue`'s (3.13's, ``shutdown``
        included); ``async_put``, ``async_get`` and ``async_join`` wait
        without blocking an event loop. On executors whose tasks run in other
        processes, the queue is shared with them. ``maxsize <= 0`` means
        unbounded.
        """
        return self._kernel().Queue(maxsize)

    def Lock(self) -> Lock:
        """A lock usable by this executor's tasks and by the caller.

        :class:`threading.Lock`'s methods, plus ``async_acquire`` and
        ``async with``.
        """
        return self._kernel().Lock()

    def RLock(self) -> RLock:
        """A reentrant lock, as :class:`threading.RLock`, plus async.

        Its owner is the calling task in a coroutine, else the calling thread
        (and process).
        """
        return self._kernel().RLock()

    def Condition(self, lock: AnyLock | None = None) -> Condition:
        """A condition variable, as :class:`threading.Condition`, plus async.

        ``lock`` is a Lock or RLock of this executor; a new RLock if None.
        """
        return self._kernel().Condition(lock)

    def Semaphore(self, value: int = 1) -> Semaphore:
        """A counting semaphore, as :class:`threading.Semaphore`, plus async."""
        return self._kernel().Semaphore(value)

    def BoundedSemaphore(self, value: int = 1) -> BoundedSemaphore:
        """A semaphore that may not rise above ``value``, plus async."""
        return self._kernel().BoundedSemaphore(value)

    def Event(self) -> Event:
        """An event flag, as :class:`threading.Event`, plus ``async_wait``."""
        return self._kernel().Event()

    def Barrier(
        self,
        parties: int,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> Barrier:
        """A barrier, as :class:`threading.Barrier`, plus ``async_wait``.

        On executors whose tasks run in other processes, ``action`` travels
        by value and runs in the process of the last party to arrive.
        """
        return self._kernel().Barrier(parties, action, timeout)

    def Dict(self) -> Dict[Any, Any]:
        """A mapping shared by this executor's tasks, each operation atomic.

        On executors whose tasks run in other processes, keys and values are
        pickled (a read returns a copy).
        """
        return self._kernel().Dict()
