"""Waiting for a coroutine executor's futures on the thread of the event loop
that runs them: a wait without limit there would never end, so it raises."""

from __future__ import annotations

import concurrent.futures as cf
import threading

import pytest

import unirun
from _tasks import async_sleep_then


@pytest.mark.anyio
async def test_result_on_the_loop_that_runs_the_task_raises_rather_than_hangs() -> None:
    # The loop's thread blocked in result() would never run the task.
    async with unirun.CoroutineExecutor() as ex:
        future = ex.submit(async_sleep_then, 0.01, 7)
        with pytest.raises(RuntimeError, match="await the future there"):
            future.result()
        with pytest.raises(RuntimeError, match="await the future there"):
            future.exception()
        with pytest.raises(TimeoutError):  # a bounded wait is the caller's call
            future.result(timeout=0)
        assert await future == 7


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["coroutine", "auto"])
@pytest.mark.parametrize("of", ["futures", "coroutines", "an asyncio task"])
async def test_result_of_a_gather_on_that_loop_raises_rather_than_hangs(
    kind: str, of: str, anyio_backend: str
) -> None:
    # The gather waits for tasks that only this loop's thread can run.
    if of == "an asyncio task" and anyio_backend != "asyncio":
        pytest.skip("an asyncio task needs an asyncio loop")
    ex: unirun.Executor = (
        unirun.CoroutineExecutor() if kind == "coroutine" else unirun.AutoExecutor()
    )
    async with ex:
        if of == "futures":
            gathered = ex.gather(ex.submit(async_sleep_then, 0.01, 7))
        elif of == "coroutines":
            gathered = ex.gather(async_sleep_then(0.01, 7))
        else:
            import asyncio

            gathered = ex.gather(asyncio.ensure_future(async_sleep_then(0.01, 7)))
        with pytest.raises(RuntimeError, match="await the future there"):
            gathered.result()
        with pytest.raises(TimeoutError):  # a bounded wait is the caller's call
            gathered.result(timeout=0)
        assert await gathered == [7]
        assert gathered.result() == [7]  # done: nothing to wait for


def test_a_task_that_waits_for_a_sibling_with_result_is_told_to_await() -> None:
    with unirun.CoroutineExecutor() as ex:

        async def outer() -> str:
            inner = ex.submit(async_sleep_then, 0.01, 7)
            try:
                inner.result()
            except RuntimeError as error:
                assert await inner == 7
                return str(error)
            return "waited"

        assert "await the future there" in ex.submit(outer).result(timeout=60)


@pytest.mark.anyio
async def test_wait_and_as_completed_on_that_loop_raise_rather_than_hang() -> None:
    async with unirun.CoroutineExecutor() as ex:
        future = ex.submit(async_sleep_then, 0.01, 7)
        for return_when in (unirun.ALL_COMPLETED, unirun.FIRST_COMPLETED):
            with pytest.raises(RuntimeError, match="await the future there"):
                unirun.wait([future], return_when=return_when)
        with pytest.raises(RuntimeError, match="await the future there"):
            next(iter(unirun.as_completed([future])))
        # A bounded wait is the caller's call.
        assert unirun.wait([future], timeout=0) == (set(), {future})
        # One another thread ends can end a wait for the first one; a wait for
        # all of them still needs this loop.
        elsewhere: cf.Future[int] = cf.Future()
        ender = threading.Thread(target=elsewhere.set_result, args=(1,))
        ender.start()
        done = unirun.wait([future, elsewhere], return_when=unirun.FIRST_COMPLETED)
        assert done == ({elsewhere}, {future})
        with pytest.raises(RuntimeError, match="await the future there"):
            unirun.wait([future, elsewhere])
        arriving = unirun.as_completed([future, elsewhere])
        assert next(arriving) is elsewhere
        with pytest.raises(RuntimeError, match="await the future there"):
            next(arriving)
        ender.join()
        assert await future == 7
        # Done: nothing to wait for.
        assert unirun.wait([future]) == ({future}, set())
        assert list(unirun.as_completed([future])) == [future]
