"""Every primitive of a DaskExecutor, held by the Dask scheduler.

Everything lives in the scheduler, in its own ``distributed`` primitives, so a
primitive works the same from the caller's process and from tasks on any
worker, and survives the death of any worker:

* a queue is a ``distributed.Queue`` of pickled items, plus a queue of "slot"
  tokens when it is bounded and one of "unfinished" tokens for ``task_done``
  and ``join``;
* a lock and the semaphores are ``distributed.Queue``'s of tokens: ``acquire``
  takes one, ``release`` puts one back (a bounded queue for the bounded ones),
  so any process may release, as with ``threading``, and nothing expires;
* an event is a ``distributed.Event``;
* an RLock is a lock plus its owner's record, kept in the owner's process
  (only the owner needs it);
* a condition's waiters, a barrier's state and a dict's log live in a small
  scheduler extension, :mod:`.ledger` (``distributed`` has nothing a waiter
  can leave atomically on a time-out, and a dict built from a lock and
  variables would stay locked by a holder that died); a barrier waits on a
  condition over a lock.

A task that blocks on one leaves its worker's thread pool meanwhile
(:func:`remote.off_pool`), so waiting tasks never starve the task they wait
for. Async waits run in helper threads, in short slices: a cancelled wait
puts back what it took (at the back of a queue).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..._sync import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Dict,
    Event,
    Kernel,
    Lock,
    Queue,
    RLock,
    Semaphore,
)
from . import ledger
from .barriers import DaskBarrier
from .conditions import DaskCondition
from .dicts import DaskDict
from .events import DaskEvent
from .locks import DaskBoundedSemaphore, DaskLock, DaskRLock, DaskSemaphore
from .queues import DaskQueue
from .remote import quiet_expected_errors
from .tokens import executor_clients

if TYPE_CHECKING:
    from collections.abc import Callable

    import distributed

    from ..._sync import AnyLock

__all__ = ["DaskKernel"]


class DaskKernel(Kernel):
    """Makes the primitives of one :class:`DaskExecutor`, on its scheduler."""

    __slots__ = ("_client", "_ledger", "_ready")

    def __init__(self, client: distributed.Client) -> None:
        self._client = client
        self._ready = False
        self._ledger = False

    @property
    def client(self) -> distributed.Client:
        """The executor's client, readied for primitives on first use."""
        if not self._ready:
            self._ready = True
            executor_clients.add(self._client)
            try:
                self._client.run_on_scheduler(quiet_expected_errors)
            except Exception:  # a scheduler that cannot import unirun: noisy logs
                pass
        return self._client

    def Queue(self, maxsize: int) -> Queue[Any]:
        return DaskQueue(self.client, maxsize)

    def Lock(self) -> Lock:
        return DaskLock(self.client)

    def Semaphore(self, value: int) -> Semaphore:
        return DaskSemaphore(self.client, value)

    def BoundedSemaphore(self, value: int) -> BoundedSemaphore:
        return DaskBoundedSemaphore(self.client, value)

    def Event(self) -> Event:
        return DaskEvent(self.client)

    @property
    def ledger_client(self) -> distributed.Client:
        """The client, its scheduler's :mod:`.ledger` installed on first use."""
        client = self.client
        if not self._ledger:
            ledger.ready(client)
            self._ledger = True
        return client

    def RLock(self) -> RLock:
        return DaskRLock(self.client)

    def Condition(self, lock: AnyLock | None) -> Condition:
        return DaskCondition(self.ledger_client, lock)

    def Barrier(
        self, parties: int, action: Callable[[], object] | None, timeout: float | None
    ) -> Barrier:
        return DaskBarrier(self.ledger_client, parties, action, timeout)

    def Dict(self) -> Dict[Any, Any]:
        return DaskDict(self.ledger_client)
