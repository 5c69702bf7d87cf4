"""Edge cases of the primitives' arguments, set against the stdlib's answer.

Each runs on the primitives in this process (``thread``) and on those shared
with processes (``process``); the stdlib's ``threading`` or ``queue`` object
is asked the same and sets the expectation.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any

import pytest

from conftest import make_executor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from unirun._base import BaseExecutor
    from unirun._sync.monitor import Monitor


@pytest.fixture(params=["thread", "process"])
def ex(request: pytest.FixtureRequest) -> Iterator[BaseExecutor]:
    """An executor whose primitives live in this process, then one whose
    primitives are shared with processes."""
    executor = make_executor(str(request.param))
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _raised(call: Any) -> type[BaseException] | None:
    try:
        call()
    except Exception as error:  # what the stdlib raises sets the expectation
        return type(error)
    return None


@pytest.mark.parametrize("timeout", [float("inf"), 1e300, "1"])
def test_a_wait_refused_for_its_time_out_leaves_no_waiter_in_line(
    ex: BaseExecutor, timeout: Any
) -> None:
    # The shared condition's refused wait kept its place in line: the next
    # notify() went to it, and the real waiter was not woken.
    expected = threading.Condition()
    with expected:
        error = _raised(lambda: expected.wait(timeout))
    assert error is not None
    cond = ex.Condition()
    with cond:
        for _ in range(3):
            with pytest.raises(error):
                cond.wait(timeout)
    inside, got = threading.Event(), []

    def waiter() -> None:
        with cond:
            inside.set()
            got.append(cond.wait(30))

    thread = threading.Thread(target=waiter)
    thread.start()
    assert inside.wait(60)
    with cond:  # taken once the waiter is in line and let go of it
        cond.notify()
    thread.join(60)
    assert got == [True]


def test_an_unbounded_put_never_reads_its_time_out(ex: BaseExecutor) -> None:
    # As queue.Queue: the item goes in (the shared queue raised, and lost it).
    expected: queue.Queue[str] = queue.Queue()
    expected.put("x", timeout="1")  # type: ignore[arg-type]  # as a user may
    q = ex.Queue()
    q.put("x", timeout="1")  # type: ignore[arg-type]
    assert (q.qsize(), q.get_nowait()) == (expected.qsize(), expected.get_nowait())


def test_notify_wakes_as_many_waiters_as_threading_counts_down(
    ex: BaseExecutor,
) -> None:
    cond = ex.Condition()
    monitor: Monitor | None = getattr(cond, "_monitor", None)
    if monitor is None:
        pytest.skip("the line of waiters in this process counts as threading")
    with monitor:
        slots = [monitor.enter(7) for _ in range(3)]
        # threading's notify(n) wakes while n > 0, one less each time
        assert monitor.notify(7, 1.5) == 2  # type: ignore[arg-type]  # as a user may
        assert monitor.notify(7, 0.5) == 1  # type: ignore[arg-type]
        for slot in slots:
            monitor.leave(slot)


@pytest.mark.parametrize("kind", ["Semaphore", "BoundedSemaphore"])
def test_a_whole_float_value_counts_as_its_int(ex: BaseExecutor, kind: str) -> None:
    # threading takes Semaphore(os.cpu_count() / 2); the shared one refused it.
    expected = getattr(threading, kind)(2.0)
    sem = getattr(ex, kind)(2.0)
    got = [sem.acquire(timeout=0) for _ in range(3)]
    assert got == [expected.acquire(timeout=0) for _ in range(3)] == [True, True, False]


def test_a_dict_merges_and_reverses_as_dict_does(ex: BaseExecutor) -> None:
    expected: dict[Any, Any] = {"a": 1, "b": 2}
    d = ex.Dict()
    d.update(expected)
    assert list(reversed(d)) == list(reversed(expected))
    merged = d | {"b": 3, "c": 4}
    assert merged == expected | {"b": 3, "c": 4}
    assert type(merged) is dict  # a copy, as d.copy() is
    assert {"b": 3, "z": 0} | d == {"b": 3, "z": 0} | expected
    same = d
    d |= [("c", 5)]  # as dict.update: pairs too
    expected |= [("c", 5)]
    assert d is same
    assert d.copy() == expected
    pairs: Any = [("x", 1)]  # not a mapping: refused by |, as dict refuses it
    assert _raised(lambda: d | pairs) is _raised(lambda: expected | pairs) is TypeError
