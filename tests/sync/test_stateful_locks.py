"""Stateful tests of RLock, Condition and Barrier against ``threading``'s.

See ``_stateful.py``: every call must do what the stdlib object does, on the
primitives of every kind of executor. Calls that would block forever in one
thread are left out; calls from a second thread check ownership.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest
from _stateful import PrimitiveMachine, outcome, run_machine
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from _primitive_tasks import CountingAction, FailingAction

if TYPE_CHECKING:
    from collections.abc import Callable

    from unirun import Barrier, Condition, RLock
    from unirun._base import BaseExecutor

TIMEOUTS = st.sampled_from([-1, -1.0, 0, 0.001, -0.5, -2])
WAITS = st.sampled_from([None, 0, 0.0, 0.001, -1, -0.001])


def from_another_thread(lock: Any) -> list[tuple[object, ...]]:
    """What a second thread gets: a try to take ``lock``, then a release."""
    outcomes: list[tuple[object, ...]] = []

    def run() -> None:
        outcomes.append(outcome(lambda: lock.acquire(False)))
        outcomes.append(outcome(lock.release))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return outcomes


# -- RLock ---------------------------------------------------------------------------


class RLockMachine(PrimitiveMachine):
    """``ex.RLock()`` against ``threading.RLock()``."""

    def __init__(self) -> None:
        super().__init__()
        self.lock: RLock = self.executor.RLock()
        self.model: Any = threading.RLock()  # its _is_owned() is not in the stubs

    @rule(blocking=st.booleans(), timeout=TIMEOUTS)
    def acquire(self, blocking: bool, timeout: float) -> None:
        # The only thread owns it or nobody does: it never blocks.
        self.same(
            lambda: self.lock.acquire(blocking, timeout),
            lambda: self.model.acquire(blocking, timeout),
        )

    @rule()
    def acquire_default(self) -> None:
        self.same(self.lock.acquire, self.model.acquire)

    @rule()
    def release(self) -> None:
        self.same(self.lock.release, self.model.release)

    @rule()
    def with_block(self) -> None:
        with self.lock as got, self.model as expected:
            assert got == expected
            self.check_ownership()
        self.check_ownership()

    @rule()
    def another_thread(self) -> None:
        assert from_another_thread(self.lock) == from_another_thread(self.model)

    @invariant()
    def check_ownership(self) -> None:
        self.same(self.lock._recursion_count, self.model._recursion_count)
        self.same(self.lock._is_owned, self.model._is_owned)
        assert self.lock.locked() == bool(self.model._recursion_count())


# -- Condition -----------------------------------------------------------------------


class ConditionMachine(PrimitiveMachine):
    """``ex.Condition(lock)`` against ``threading.Condition(lock)``."""

    def __init__(self) -> None:
        super().__init__()
        self.cond: Condition
        self.model: threading.Condition
        self.reentrant = True

    @initialize(lock=st.sampled_from(["default", "RLock", "Lock"]))
    def create(self, lock: str) -> None:
        self.reentrant = lock != "Lock"
        if lock == "default":
            self.cond, self.model = self.executor.Condition(), threading.Condition()
        elif lock == "RLock":
            self.cond = self.executor.Condition(self.executor.RLock())
            self.model = threading.Condition(threading.RLock())
        else:
            self.cond = self.executor.Condition(self.executor.Lock())
            self.model = threading.Condition(threading.Lock())

    @rule()
    def acquire_nowait(self) -> None:
        self.same(lambda: self.cond.acquire(False), lambda: self.model.acquire(False))

    @precondition(lambda self: self.reentrant)
    @rule()
    def acquire_reentrant(self) -> None:
        self.same(self.cond.acquire, self.model.acquire)

    @rule()
    def release(self) -> None:
        self.same(self.cond.release, self.model.release)

    @rule(n=st.integers(-1, 3))
    def notify(self, n: int) -> None:
        self.same(lambda: self.cond.notify(n), lambda: self.model.notify(n))

    @rule()
    def notify_all(self) -> None:
        self.same(self.cond.notify_all, self.model.notify_all)

    @rule(timeout=WAITS.filter(lambda t: t is not None))
    def wait(self, timeout: float) -> None:
        self.same(lambda: self.cond.wait(timeout), lambda: self.model.wait(timeout))

    @rule(timeout=WAITS, value=st.sampled_from([0, 1, "", "yes", None]))
    def wait_for(self, timeout: float | None, value: object) -> None:
        if timeout is None and not value:
            return  # would block forever in one thread
        self.same(
            lambda: self.cond.wait_for(lambda: value, timeout),
            lambda: self.model.wait_for(lambda: value, timeout),
        )

    @invariant()
    def ownership_matches(self) -> None:
        self.same(lambda: self.cond.notify(0), lambda: self.model.notify(0))


# -- Barrier -------------------------------------------------------------------------

ACTIONS: dict[str, Callable[[], Any]] = {
    "none": lambda: None,
    "counting": CountingAction,
    "failing": FailingAction,
}


class BarrierMachine(PrimitiveMachine):
    """``ex.Barrier(parties, action, timeout)`` against ``threading.Barrier``."""

    def __init__(self) -> None:
        super().__init__()
        self.barrier: Barrier
        self.model: threading.Barrier
        self.actions: tuple[Any, Any] = (None, None)
        self.timeout: float | None = None

    @initialize(
        parties=st.integers(1, 3),
        action=st.sampled_from(sorted(ACTIONS)),
        timeout=st.sampled_from([None, 0, 0.001]),
    )
    def create(self, parties: int, action: str, timeout: float | None) -> None:
        self.actions = (ACTIONS[action](), ACTIONS[action]())
        self.timeout = timeout
        self.barrier = self.executor.Barrier(parties, self.actions[0], timeout)
        self.model = threading.Barrier(parties, self.actions[1], timeout)

    @rule(timeout=WAITS)
    def wait(self, timeout: float | None) -> None:
        forever = timeout is None and self.timeout is None
        if forever and self.model.parties > 1 and not self.model.broken:
            return  # would wait forever for the other parties
        self.same(lambda: self.barrier.wait(timeout), lambda: self.model.wait(timeout))

    @rule()
    def abort(self) -> None:
        self.same(self.barrier.abort, self.model.abort)

    @rule()
    def reset(self) -> None:
        self.same(self.barrier.reset, self.model.reset)

    @invariant()
    def state_matches(self) -> None:
        assert self.barrier.parties == self.model.parties
        assert self.barrier.n_waiting == self.model.n_waiting
        assert self.barrier.broken == self.model.broken
        calls = [getattr(action, "calls", None) for action in self.actions]
        assert calls[0] == calls[1]


# -- the tests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "machine",
    [RLockMachine, ConditionMachine, BarrierMachine],
    ids=lambda machine: str(machine.__name__).removesuffix("Machine"),
)
def test_matches_threading(
    machine: type[PrimitiveMachine], executor: BaseExecutor
) -> None:
    name = machine.__name__.removesuffix("Machine")
    if name in executor.lacks:
        pytest.skip(f"{name} is not available on the {executor.kind} backend yet")
    run_machine(machine, executor)


@pytest.mark.parametrize("parties", [0, -1])
def test_barrier_needs_a_party(executor: BaseExecutor, parties: int) -> None:
    """As 3.13's threading.Barrier (earlier ones accept 0 and never open)."""
    with pytest.raises(ValueError, match="parties must be > 0"):
        executor.Barrier(parties)


def test_condition_refuses_a_foreign_lock(executor: BaseExecutor) -> None:
    with pytest.raises(TypeError, match="Lock or RLock made by an executor"):
        executor.Condition(threading.Lock())  # type: ignore[arg-type]  # the point
