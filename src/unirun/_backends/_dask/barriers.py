"""The Dask backend's Barrier: the shared algorithm over a Dask Condition.

:class:`.Cycle` is ``threading.Barrier``'s algorithm, run with a lock held;
here the lock is a :class:`.DaskLock`, the waits are a :class:`.DaskCondition`
over it, and the state and count live in a :class:`.ledger.Ledger` cell, read
once each time the lock is taken and written through on each change. The
action travels by value and runs in the process of the last party to arrive.
"""

from __future__ import annotations

import contextlib
import pickle
import uuid
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import anyio

from ..._sync.barriers import Cycle, _Wait, async_run_steps, run_steps
from .conditions import DaskCondition
from .ledger import call
from .locks import DaskLock
from .remote import scheduler_address
from .tokens import dumps_by_value

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import distributed

__all__ = ["DaskBarrier"]


class DaskBarrier(Cycle):
    """A :class:`unirun.Barrier` held by the Dask scheduler.

    A party whose worker dies while it waits still counts as waiting: the
    others' waits time out (breaking the barrier) if they have a time-out, or
    ``abort()`` from the caller releases them.
    """

    def __init__(
        self,
        client: distributed.Client,
        parties: int,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._configure(parties, action, timeout)
        self._pickled_action = (
            None
            if action is None
            else dumps_by_value(action, "give {} to a barrier of a Dask cluster")
        )
        self._address = scheduler_address(client)
        self._name = f"unirun-barrier-{uuid.uuid4().hex}"
        self._cond = DaskCondition(client, DaskLock(client))
        self._state = (0, 0)  # filling, nobody inside: the cell's default

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_barrier,
            (
                self._address,
                self._name,
                self._cond,
                self._parties,
                self._timeout,
                self._pickled_action,
            ),
        )

    # -- the state, in a cell of the scheduler ----------------------------------------

    def _load(self) -> None:
        """Read the cell into the copy that the lock's holder works on."""
        self._state = self._peek()

    def _peek(self) -> tuple[int, int]:
        # Never into self._state: another thread of this process may hold the
        # lock and be working on that copy.
        state = call(self._address, "cell_get", name=self._name, default=(0, 0))
        return (int(state[0]), int(state[1]))

    def _get(self) -> tuple[int, int]:
        return self._state

    def _put(self, state: int | None = None, count: int | None = None) -> None:
        old_state, old_count = self._state
        self._state = (
            old_state if state is None else state,
            old_count if count is None else count,
        )
        call(self._address, "cell_set", name=self._name, value=list(self._state))

    def _notify_all(self) -> None:
        self._cond.notify_all()

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        with self._cond:
            self._load()
            yield

    def _action(self) -> Callable[[], object] | None:
        if self._run is None and self._pickled_action is not None:
            self._run = pickle.loads(self._pickled_action)
        return self._run

    def _fresh(self, ready: Callable[[], bool]) -> Callable[[], bool]:
        """``ready``, judged on the state as it is now."""

        def check() -> bool:
            self._load()
            return ready()

        return check

    # -- waiting --------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> int:
        with self._held():
            return run_steps(self._steps(timeout), self._wait)

    def _wait(self, request: _Wait) -> bool:
        return bool(self._cond.wait_for(self._fresh(request.ready), request.timeout))

    async def async_wait(self) -> int:
        async with self._cond:  # held across the waits, which release it
            self._load()
            return await async_run_steps(
                self._steps(None), self._async_wait, nullcontext
            )

    async def _async_wait(self, request: _Wait) -> bool:
        with anyio.move_on_after(request.timeout):
            await self._cond.async_wait_for(self._fresh(request.ready))
        self._load()
        return request.ready()

    def __repr__(self) -> str:
        return self._describe("on a Dask cluster")


def _rebuild_barrier(
    address: str,
    name: str,
    cond: DaskCondition,
    parties: int,
    timeout: float | None,
    pickled_action: bytes | None,
) -> DaskBarrier:
    barrier = DaskBarrier.__new__(DaskBarrier)
    barrier._address, barrier._name, barrier._cond = address, name, cond
    barrier._parties, barrier._timeout, barrier._run = parties, timeout, None
    barrier._pickled_action = pickled_action
    barrier._state = (0, 0)
    return barrier
