"""What a call's outcome decides: a call whose result (or exception) would not
come back from a process as itself stays in this process, as on the thread
backend, whatever its measurements say. Its first call ran here and worked;
every later one must too."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from unirun._auto import verdicts
from unirun._auto.classify import Facts, Need, Verdict

if TYPE_CHECKING:
    from unirun._auto.classify import Costs


def heavy(facts: Facts, costs: Costs) -> Verdict | Need:
    """classify(), for calls that measure as made for processes: a process
    unless the call cannot travel."""
    if facts.transferable is None:
        return Need.TRANSFER
    reason = facts.transfer_error or "made for processes"
    if facts.transferable:
        return Verdict("process", reason, 0.1, 0.1, 1.0, 1.0, False, None, 1)
    return Verdict("thread", reason, 0.1, 0.1, 1.0, 1.0, False, None, 1)


class QuotaError(Exception):
    """An exception that pickles but cannot be rebuilt (two arguments)."""

    def __init__(self, user: str, limit: int) -> None:
        super().__init__(f"{user} is over {limit}")
        self.user, self.limit = user, limit


def returns_a_lock(n: int) -> tuple[int, Any]:
    return n, threading.Lock()


def raises_quota(n: int) -> int:
    raise QuotaError("bob", n)


@pytest.fixture
def auto(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(verdicts, "classify", heavy)
    executor = unirun.AutoExecutor(max_workers=2)
    yield executor
    executor.shutdown(wait=True)


def test_a_result_that_does_not_pickle_keeps_the_calls_here(
    auto: unirun.AutoExecutor,
) -> None:
    assert [auto.submit(returns_a_lock, i).result()[0] for i in range(4)] == [
        0,
        1,
        2,
        3,
    ]
    verdict = auto.explain(returns_a_lock)
    assert verdict is not None
    assert verdict.backend == "thread"
    assert "does not pickle" in verdict.reason


def test_an_exception_that_cannot_be_rebuilt_keeps_the_calls_here(
    auto: unirun.AutoExecutor,
) -> None:
    for i in range(4):
        with pytest.raises(QuotaError) as raised:
            auto.submit(raises_quota, i).result()
        assert (raised.value.user, raised.value.limit) == ("bob", i)
    verdict = auto.explain(raises_quota)
    assert verdict is not None
    assert verdict.backend == "thread"
    assert "QuotaError" in verdict.reason


def test_a_result_that_travels_still_goes_to_processes(
    auto: unirun.AutoExecutor,
) -> None:
    assert auto.submit(abs, -3).result() == 3
    verdict = auto.explain(abs)
    assert verdict is not None
    assert verdict.backend == "process"
