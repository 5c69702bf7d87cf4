"""DESIGN 4: gather returns a Future of the list, usable sync and async."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures as cf
import gc
from typing import TYPE_CHECKING

import pytest

import unirun
from _tasks import async_square, fail_if_negative, signal_then_wait, square
from gates import Gate

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from unirun._base import BaseExecutor


def test_gather_results_in_order(executor: BaseExecutor) -> None:
    futures = [executor.submit(square, i) for i in range(10)]
    assert executor.gather(*futures).result(timeout=60) == [i * i for i in range(10)]


def test_gather_same_future_twice_fills_both_places(executor: BaseExecutor) -> None:
    # As asyncio.gather: a future given twice gives its outcome twice.
    twice = executor.submit(square, 4)
    other = executor.submit(square, 5)
    gathered = executor.gather(twice, other, twice)
    assert gathered.result(timeout=60) == [16, 25, 16]
    failing = executor.submit(fail_if_negative, -2)
    both = executor.gather(failing, failing, return_exceptions=True)
    assert [type(e) for e in both.result(timeout=60)] == [ValueError, ValueError]


def test_gather_empty(executor: BaseExecutor) -> None:
    assert executor.gather().result(timeout=0) == []


def test_gather_first_exception_fails(executor: BaseExecutor) -> None:
    gathered = executor.gather(
        executor.submit(square, 2), executor.submit(fail_if_negative, -5)
    )
    with pytest.raises(ValueError, match="negative: -5"):
        gathered.result(timeout=60)


def test_gather_return_exceptions(executor: BaseExecutor) -> None:
    gathered = executor.gather(
        executor.submit(square, 3),
        executor.submit(fail_if_negative, -1),
        return_exceptions=True,
    )
    first, second = gathered.result(timeout=60)
    assert first == 9
    assert isinstance(second, ValueError)


def test_gather_coroutines_run_on_executor(executor: BaseExecutor) -> None:
    if executor.crosses_processes:
        pytest.skip("a coroutine object cannot travel to another process")
    assert executor.gather(async_square(3), async_square(4)).result(60) == [9, 16]


def test_gather_rejects_non_awaitables(executor: BaseExecutor) -> None:
    with pytest.raises(TypeError, match="futures and awaitables"):
        executor.gather(42)  # type: ignore[call-overload]  # bad input on purpose


def test_gather_cancel_cancels_pending_children(
    executor: BaseExecutor, tmp_path: Path
) -> None:
    gate = Gate(tmp_path)
    child = executor.submit(signal_then_wait, gate.started, gate.release, 1)
    never = unirun.Future[int]()
    gathered = executor.gather(child, never)
    assert gathered.cancel()
    assert never.cancelled()
    done, _ = cf.wait([gathered], timeout=60)
    assert gathered in done
    gate.open()


@pytest.mark.anyio
async def test_gather_awaited(kind: str) -> None:
    from conftest import make_executor

    executor = make_executor(kind)
    try:
        futures = [executor.submit(square, i) for i in range(5)]
        assert await executor.gather(*futures) == [0, 1, 4, 9, 16]
    finally:
        executor.shutdown()


def test_gather_takes_tasks_and_futures_of_the_callers_loop(
    executor: BaseExecutor,
) -> None:
    # As asyncio.gather: an asyncio task or future is awaited where it lives.
    async def later(x: int) -> int:
        await asyncio.sleep(0)
        return x

    async def fails() -> None:
        await asyncio.sleep(0)
        raise ValueError("the task failed")

    async def main() -> None:
        task = asyncio.ensure_future(later(2))
        gathered = executor.gather(task, executor.submit(square, 3))
        assert await asyncio.wait_for(gathered, 60) == [2, 9]
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        of_future = executor.gather(future)
        future.set_result("set later")
        assert await asyncio.wait_for(of_future, 60) == ["set later"]
        with pytest.raises(ValueError, match="the task failed"):
            await asyncio.wait_for(executor.gather(asyncio.ensure_future(fails())), 60)
        # Cancelling the gather cancels the task, on its own loop.
        waiting = asyncio.ensure_future(asyncio.Event().wait())
        executor.gather(waiting).cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 60)

    asyncio.run(main())


@pytest.mark.parametrize("fn", [square, async_square])
def test_tasks_leave_nothing_for_the_cycle_collector(
    executor: BaseExecutor, fn: Callable[[int], object]
) -> None:
    # Each task's objects go as the task's last reference does. A cycle through
    # a done future's callbacks kept every future of a gather (and each map's
    # items) alive until a full collection, and made the collections slower.
    # Unirun's types are enough to tell: each such cycle holds some.
    def work() -> None:
        assert [executor.submit(fn, i).result(timeout=60) for i in range(50)] == [
            i * i for i in range(50)
        ]
        gathered = executor.gather(*[executor.submit(fn, i) for i in range(50)])
        assert gathered.result(timeout=60) == [i * i for i in range(50)]
        assert list(executor.map(fn, range(50))) == [i * i for i in range(50)]

    work()  # workers started, functions timed: the executor's own objects made
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds stays in gc.garbage
    try:
        work()
        gc.collect()
        # Unirun's own objects: a Dask cluster's comms, say, make cycles of
        # their own in the background.
        found = collections.Counter(
            type(o).__qualname__
            for o in gc.garbage
            if type(o).__module__.startswith("unirun")
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not found


@pytest.mark.parametrize("ends", ["results", "first error"])
def test_a_finished_gather_keeps_no_child(executor: BaseExecutor, ends: str) -> None:
    # The gather's result holds the values; the children, their tracebacks
    # and what they refer to are let go, as asyncio.gather lets them go.
    import weakref

    first: unirun.Future[int] = unirun.Future()
    second: unirun.Future[int] = unirun.Future()
    gathered = executor.gather(first, second)
    if ends == "results":
        first.set_result(1)
        second.set_result(2)
    else:
        first.set_exception(ValueError("boom"))
    children = [weakref.ref(first), weakref.ref(second)]
    del first, second
    gc.collect()
    assert gathered.done()
    assert [child() for child in children] == [None, None]
