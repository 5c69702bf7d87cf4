"""The scheduler extension behind the Dask Condition, Barrier and Dict, alone.

:class:`Ledger` runs on the scheduler's event loop; here it runs on one of
ours, with no cluster: its lines against a model of a FIFO line, its logs'
compare-and-append.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import HAS_DASK

pytestmark = pytest.mark.skipif(not HAS_DASK, reason="needs unirun[dask]")


def _ledger() -> Any:
    from unirun._backends._dask.ledger import Ledger

    return Ledger()


def test_notify_wakes_the_oldest_waiters_exactly() -> None:
    async def main() -> list[bool]:
        ledger = _ledger()
        waiters = [ledger.line_enter("c") for _ in range(3)]
        assert ledger.line_notify("c", 2) == 2
        return [await ledger.line_sleep("c", w, 0, True) for w in waiters]

    assert asyncio.run(main()) == [True, True, False]


def test_a_waiter_that_timed_out_takes_no_notification() -> None:
    async def main() -> tuple[bool, int, bool]:
        ledger = _ledger()
        gone, staying = ledger.line_enter("c"), ledger.line_enter("c")
        timed_out = await ledger.line_sleep("c", gone, 0.001, True)
        woke = ledger.line_notify("c", 1)
        return timed_out, woke, await ledger.line_sleep("c", staying, 0, True)

    assert asyncio.run(main()) == (False, 1, True)
    assert not _ledger().lines  # and a fresh ledger holds nothing


def test_a_sleeping_waiter_wakes_on_notify() -> None:
    async def main() -> bool:
        ledger = _ledger()
        waiter = ledger.line_enter("c")
        sleeping = asyncio.ensure_future(ledger.line_sleep("c", waiter, None, True))
        await asyncio.sleep(0)  # let it start waiting
        ledger.line_notify("c", None)
        result: bool = await sleeping
        assert not ledger.lines  # nothing left behind
        return result

    assert asyncio.run(main()) is True


def test_leaving_after_a_notification_passes_it_on() -> None:
    async def main() -> tuple[bool, bool]:
        ledger = _ledger()
        first, second = ledger.line_enter("c"), ledger.line_enter("c")
        ledger.line_notify("c", 1)
        passed = ledger.line_leave("c", first, True)  # cancelled after waking
        return passed, await ledger.line_sleep("c", second, 0, True)

    assert asyncio.run(main()) == (True, True)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.just("enter"), st.integers(0, 3), st.none())))
def test_line_matches_a_fifo_model(steps: list[str | int | None]) -> None:
    """Enter, notify(n) and notify_all against a plain list of waiters."""
    ledger = _ledger()
    model: list[int] = []
    woken: set[int] = set()
    for step in steps:
        if step == "enter":
            model.append(ledger.line_enter("c"))
        else:
            count = len(model) if step is None else min(int(step), len(model))
            assert ledger.line_notify("c", step) == count
            woken.update(model[:count])
            del model[:count]
    line = ledger.lines.get("c")
    assert (list(line.waiting) if line else []) == model
    assert (line.woken if line else set()) == woken


def test_log_appends_only_after_what_the_writer_saw() -> None:
    ledger = _ledger()
    assert ledger.log_append("d", 0, 0, [[1, b"k", b"v"]]) == [True]
    # A writer that had not seen that record is told what it missed.
    assert ledger.log_append("d", 0, 0, [[1, b"x", b"y"]]) == [
        False,
        0,
        0,
        [[1, b"k", b"v"]],
    ]
    assert ledger.log_read("d", 0, 1) == [0, 1, []]
    # A rewrite starts a generation; a reader of the old one starts over.
    assert not ledger.log_rewrite("d", 0, 0, [])
    assert ledger.log_rewrite("d", 0, 1, [[1, b"k", b"w"]])
    assert ledger.log_read("d", 0, 1) == [1, 0, [[1, b"k", b"w"]]]


def test_ready_says_what_the_scheduler_lacks() -> None:
    from unirun._backends._dask.ledger import ready

    class NoUnirun:
        def run_on_scheduler(self, function: object) -> None:
            raise ModuleNotFoundError("No module named 'unirun'")

    with pytest.raises(RuntimeError, match="unirun installed where the scheduler"):
        ready(NoUnirun())  # type: ignore[arg-type]  # the client's one method used
