"""What the stateful tests share: the comparison with the stdlib, and the runner.

Hypothesis drives random sequences of calls, in one thread, against a unirun
primitive and the stdlib object it must match; every call must return the same
value or raise the same exception (type and message) on both. A call that
would block forever in one thread is only made when the model says it returns
at once. Each machine runs on the primitives of every kind of executor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

import unirun

if TYPE_CHECKING:
    from collections.abc import Callable

    from unirun._base import BaseExecutor

#: Small enough for every machine on every kind to run in seconds on two cores.
SETTINGS = settings(max_examples=20, stateful_step_count=25, deadline=None)

M = TypeVar("M", bound="PrimitiveMachine")


def outcome(call: Callable[[], object]) -> tuple[object, ...]:
    """What a call did: its result, or the type and message of what it raised."""
    try:
        return ("returned", call())
    except Exception as exc:
        return ("raised", type(exc), str(exc))


class PrimitiveMachine(RuleBasedStateMachine):
    """Base: the executor whose primitives are under test, and the comparison."""

    executor: ClassVar[BaseExecutor]

    def same(
        self, actual: Callable[[], object], expected: Callable[[], object]
    ) -> tuple[object, ...]:
        """Run both calls; assert they did the same thing; return the outcome."""
        model = outcome(expected)
        got = outcome(actual)
        assert got == model, f"unirun: {got!r}, stdlib: {model!r}"
        return model

    def teardown(self) -> None:
        # Drop the primitives now, not when the garbage collector gets to the
        # machine: a shared one collected while multiprocessing's resource
        # tracker is busy makes it warn about reentrant use.
        primitives = (
            unirun.Queue,
            unirun.Lock,
            unirun.RLock,
            unirun.Condition,
            unirun.Semaphore,
            unirun.Event,
            unirun.Barrier,
            unirun.Dict,
        )
        for name, value in list(vars(self).items()):
            if isinstance(value, primitives):
                delattr(self, name)


def run_machine(machine: type[M], ex: BaseExecutor) -> None:
    """Run ``machine`` against the primitives of ``ex``."""
    bound = type(machine.__name__, (machine,), {"executor": ex})
    run_state_machine_as_test(cast("type[M]", bound), settings=SETTINGS)
