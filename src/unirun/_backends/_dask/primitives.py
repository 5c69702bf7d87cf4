"""Queue, Lock, Semaphore, BoundedSemaphore and Event held by a Dask scheduler.

Everything lives in the scheduler, in its own ``distributed`` primitives, so a
primitive works the same from the caller's process and from tasks on any
worker, and survives the death of any worker:

* a queue is a ``distributed.Queue`` of pickled items, plus a queue of "slot"
  tokens when it is bounded and one of "unfinished" tokens for ``task_done``
  and ``join``;
* a lock and the semaphores are ``distributed.Queue``'s of tokens: ``acquire``
  takes one, ``release`` puts one back (a bounded queue for the bounded ones),
  so any process may release, as with ``threading``, and nothing expires;
* an event is a ``distributed.Event``.

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
from .events import DaskEvent
from .locks import DaskBoundedSemaphore, DaskLock, DaskSemaphore
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

    __slots__ = ("_client", "_ready")

    def __init__(self, client: distributed.Client) -> None:
        self._client = client
        self._ready = False

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

    # Not on Dask yet: a clear error instead of a primitive that half works.
    def RLock(self) -> RLock:
        raise _missing("RLock")

    def Condition(self, lock: AnyLock | None) -> Condition:
        raise _missing("Condition")

    def Barrier(
        self, parties: int, action: Callable[[], object] | None, timeout: float | None
    ) -> Barrier:
        raise _missing("Barrier")

    def Dict(self) -> Dict[Any, Any]:
        raise _missing("Dict")


def _missing(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"{name} is not available on the dask backend yet; Queue, Lock, Semaphore, "
        "BoundedSemaphore and Event are"
    )
