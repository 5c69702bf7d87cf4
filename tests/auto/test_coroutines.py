"""The coroutine path: async calls go to the coroutine backend, some timed."""

from __future__ import annotations

import asyncio
import functools
import time
import types
from typing import TYPE_CHECKING

import pytest

import unirun
from _auto_tasks import async_nap, blocks_loop
from unirun._auto.coroutines import TIME_EVERY, CoroutinePath
from unirun._auto.loopguard import LOOP_BLOCK_S, StepReport, StepTimer
from unirun._auto.pools import Pools
from unirun._options import NO_OPTIONS

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator


@pytest.fixture
def path() -> Iterator[CoroutinePath]:
    pools = Pools(None, None, (), scope="test", cpus=2, name="test-coroutines")
    try:
        yield CoroutinePath(pools)
    finally:
        pools.close(wait=True, cancel_futures=True)


def test_first_call_is_timed_then_the_fast_path(path: CoroutinePath) -> None:
    assert path.submit_known(async_nap, (0,), {}, NO_OPTIONS) is None  # unknown
    assert path.submit(async_nap, (0,), {}, NO_OPTIONS).result(timeout=60) == 0
    verdict = path.explain(async_nap)
    assert verdict is not None
    assert verdict.backend == "coroutine"
    assert verdict.samples == 1
    for _ in range(TIME_EVERY):
        future = path.submit_known(async_nap, (0,), {}, NO_OPTIONS)
        assert future is not None
        assert future.result(timeout=60) == 0
    # One call in TIME_EVERY was timed again.
    again = path.explain(async_nap)
    assert again is not None
    assert again.samples == 2


def test_a_coroutine_the_table_let_go_leaves_the_fast_path(
    path: CoroutinePath, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("unirun._auto.cache.CACHE_SIZE", 4)
    assert path.submit(async_nap, (0,), {}, NO_OPTIONS).result(timeout=60) == 0
    assert path.submit_known(async_nap, (0,), {}, NO_OPTIONS) is not None
    others = [functools.partial(async_nap, 0) for _ in range(4)]
    for other in others:  # the table is full: the oldest goes
        assert path.submit(other, (), {}, NO_OPTIONS).result(timeout=60) == 0
    assert path.explain(async_nap) is None
    assert path.submit_known(async_nap, (0,), {}, NO_OPTIONS) is None  # not known
    assert path.submit(async_nap, (0,), {}, NO_OPTIONS).result(timeout=60) == 0
    assert path.explain(async_nap) is not None


def test_loop_blocking_coroutine_moves_to_a_thread(path: CoroutinePath) -> None:
    import unirun

    with pytest.warns(unirun.LoopBlockedWarning, match="blocks_loop"):
        path.submit(blocks_loop, (0.3,), {}, NO_OPTIONS).result(timeout=60)
    verdict = path.explain(blocks_loop)
    assert verdict is not None
    assert verdict.backend == "thread"
    future = path.submit_known(blocks_loop, (0.001,), {}, NO_OPTIONS)
    assert future is not None
    assert future.result(timeout=60) == 0.001
    # Still a thread verdict: the loop is not blocked again.
    assert path.explain(blocks_loop) is verdict


def test_a_light_timer_reports_each_step_but_never_confirms_a_block() -> None:
    reports: list[StepReport] = []

    async def blocks_in_its_second_step() -> int:
        await asyncio.sleep(0)
        time.sleep(LOOP_BLOCK_S * 1.2)  # the step under test: it blocks the loop
        return 7

    async def main() -> int:
        result: int = await StepTimer(blocks_in_its_second_step(), reports.append)
        return result

    assert asyncio.run(main()) == 7
    [report] = reports
    assert report.longest >= LOOP_BLOCK_S
    assert report.busy >= report.longest
    assert report.wall >= report.busy
    # Only a detailed timer tells a block from GIL starvation.
    assert not report.blocked
    assert not report.detailed


@pytest.mark.parametrize("detailed", [False, True], ids=["light", "detailed"])
def test_a_timer_with_no_callback_keeps_its_report(detailed: bool) -> None:
    async def two_steps() -> int:
        await asyncio.sleep(0)
        return 5

    timer = StepTimer(two_steps(), None, detailed)

    async def main() -> int:
        assert timer.report is None  # not before the coroutine ends
        result: int = await timer
        return result

    assert asyncio.run(main()) == 5
    assert timer.report is not None
    assert timer.report.detailed is detailed
    assert timer.report.wall >= timer.report.busy > 0


@pytest.mark.parametrize("detailed", [False, True], ids=["light", "detailed"])
def test_a_timer_reports_once_when_its_coroutine_fails(detailed: bool) -> None:
    reports: list[StepReport] = []

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def main() -> None:
        await StepTimer(fails(), reports.append, detailed)

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(main())
    assert len(reports) == 1
    assert reports[0].detailed is detailed


@pytest.mark.parametrize("detailed", [False, True], ids=["light", "detailed"])
def test_a_timer_passes_sent_values_through(detailed: bool) -> None:
    reports: list[StepReport] = []

    @types.coroutine
    def ask() -> Generator[str, int, int]:
        answer = yield "question"
        return answer

    async def asker() -> int:
        return 2 * await ask()

    timer = StepTimer(asker(), reports.append, detailed)
    assert timer.send(None) == "question"
    assert reports == []
    with pytest.raises(StopIteration) as stop:
        timer.send(21)
    assert stop.value.value == 42
    assert len(reports) == 1


def test_a_long_step_under_a_light_timer_makes_the_next_call_detailed(
    path: CoroutinePath,
) -> None:
    assert path.submit(async_nap, (0,), {}, NO_OPTIONS).result(timeout=60) == 0
    entry = path._known[id(async_nap)]
    # A light timer saw a long step (it cannot tell a block from starvation).
    path.done(entry, async_nap, StepReport(0.2, 0.2, 0.2, False, False))
    assert entry.suspect
    suspect = path.explain(async_nap)
    assert suspect is not None
    assert suspect.backend == "coroutine"
    assert suspect.samples == 2
    # The next call is timed in detail; its short steps clear the suspicion.
    future = path.submit_known(async_nap, (0,), {}, NO_OPTIONS)
    assert future is not None
    assert future.result(timeout=60) == 0
    assert not path._known[id(async_nap)].suspect
    cleared = path.explain(async_nap)
    assert cleared is not None
    assert cleared.samples == 3


def test_max_workers_caps_the_coroutines_running_at_once() -> None:
    # As on every backend (docs/semantics.md): auto's coroutine pool ignored it.
    running = peak = 0

    async def task(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return i

    with unirun.AutoExecutor(max_workers=2) as ex:
        assert list(ex.map(task, range(10))) == list(range(10))
    assert 1 <= peak <= 2


async def blocks_then_reports_its_thread(seconds: float) -> int:
    """Blocks its loop (a sync sleep between awaits), then says where it ran."""
    import threading

    import anyio

    await anyio.sleep(0)
    time.sleep(seconds)
    return threading.get_ident()


@pytest.mark.anyio
async def test_a_loop_blocking_coroutine_stays_on_the_callers_loop() -> None:
    # Inside async with, the caller's loop is where its locks, events and
    # sessions work: a coroutine that blocked it is told of, not moved away.
    import threading

    caller = threading.get_ident()
    async with unirun.AutoExecutor() as ex:
        with pytest.warns(
            unirun.LoopBlockedWarning, match="stay on the caller's"
        ) as warned:
            assert await ex.submit(blocks_then_reports_its_thread, 0.3) == caller
        # Shown where the coroutine is defined, not inside unirun.
        code = blocks_then_reports_its_thread.__code__
        assert (warned[0].filename, warned[0].lineno) == (
            code.co_filename,
            code.co_firstlineno,
        )
        for _ in range(3):
            assert await ex.submit(blocks_then_reports_its_thread, 0.001) == caller
        verdict = ex.explain(blocks_then_reports_its_thread)
        assert verdict is not None
        assert verdict.backend == "coroutine"
        assert "stays on the caller's loop" in verdict.reason
