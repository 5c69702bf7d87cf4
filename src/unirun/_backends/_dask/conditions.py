"""The Dask backend's Condition: the shared algorithm, its waiters in a line on
the scheduler.

:class:`.Waiting` is ``threading.Condition``'s algorithm; here its line of
waiters is a :class:`.ledger.Ledger` line: ``wait`` joins it (lock held), then
releases the lock and sleeps on the scheduler until notified or timed out, and
a time-out leaves the line in the same step, so a ``notify`` never goes to a
waiter that has gone. Three round trips per wait, one per notify, plus the
lock's.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from typing import TYPE_CHECKING, Any

from ..._sync.conditions import Waiting, _lock_of
from ..._sync.messages import wait_timeout
from ..._sync.waiting import take_in_thread
from .ledger import call, call_blocking
from .locks import DaskLock, DaskRLock
from .remote import off_pool, scheduler_address

if TYPE_CHECKING:
    import distributed

    from ..._sync import Lock, RLock

__all__ = ["DaskCondition"]


class DaskCondition(Waiting):
    """A :class:`unirun.Condition` whose waiters wait on the Dask scheduler.

    A waiter whose worker dies while it waits stays in the line: the one
    ``notify`` that reaches it wakes nobody.
    """

    def __init__(
        self, client: distributed.Client, lock: Lock | RLock | None = None
    ) -> None:
        self._lock = _lock_of(
            lock, (DaskLock, DaskRLock), functools.partial(DaskRLock, client)
        )
        self._address = scheduler_address(client)
        self._name = f"unirun-condition-{uuid.uuid4().hex}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_condition, (self._address, self._name, self._lock))

    def _enter(self, *, in_loop: bool) -> int:
        waiter: int = call(self._address, "line_enter", name=self._name)
        return waiter

    def _sleep(self, waiter: int, timeout: float | None) -> bool:
        # As threading: a time-out of 0 or less (or NaN) does not wait.
        if timeout is not None:
            timeout = wait_timeout(timeout) if timeout > 0 else 0
        try:
            return bool(
                call_blocking(
                    self._address,
                    "line_sleep",
                    name=self._name,
                    waiter=waiter,
                    timeout=timeout,
                    leave=True,
                )
            )
        except BaseException:  # interrupted: leave, passing on a notification
            with contextlib.suppress(Exception):  # the error that came first wins
                self._leave(waiter)
            raise

    def _sleep_slice(self, waiter: int, timeout: float) -> bool:
        return bool(
            call(
                self._address,
                "line_sleep",
                name=self._name,
                waiter=waiter,
                timeout=timeout,
                leave=False,
            )
        )

    async def _async_sleep(self, waiter: int) -> None:
        # A slice that brings a notification to a wait cancelled meanwhile
        # passes it on (take_in_thread's give_back), as does leaving after one.
        try:
            with off_pool():
                await take_in_thread(
                    functools.partial(self._sleep_slice, waiter),
                    functools.partial(self._wake, 1),
                )
        except BaseException:
            with contextlib.suppress(Exception):
                self._leave(waiter)
            raise

    def _leave(self, waiter: int) -> None:
        call(self._address, "line_leave", name=self._name, waiter=waiter, pass_on=True)

    def _wake(self, n: int | None) -> None:
        call(self._address, "line_notify", name=self._name, n=n)

    def __repr__(self) -> str:
        return self._describe("on a Dask cluster")


def _rebuild_condition(address: str, name: str, lock: Lock | RLock) -> DaskCondition:
    condition = DaskCondition.__new__(DaskCondition)
    condition._address, condition._name, condition._lock = address, name, lock
    return condition
