"""``async with AutoExecutor()``: coroutine work runs on the caller's event loop.

As with ``CoroutineExecutor`` inside ``async with``: anything bound to the
caller's loop (a lock, an event, a client session) works in the tasks, and an
exception from the body leaves as itself.
"""

from __future__ import annotations

import asyncio
import threading

import anyio
import pytest

import unirun
from _auto_tasks import async_nap, loop_thread, nap

pytestmark = pytest.mark.anyio


async def test_async_with_runs_coroutines_on_callers_loop_gh11() -> None:
    async with unirun.AutoExecutor() as ex:
        assert await ex.submit(loop_thread) == threading.get_ident()
        # Plain functions still run off the loop.
        assert await ex.submit(nap, 0.001) == 0.001
        assert [x async for x in ex.map(async_nap, [0.001] * 3)] == [0.001] * 3


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_with_tasks_share_callers_asyncio_lock_gh11() -> None:
    lock = asyncio.Lock()
    locked = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> str:
        async with lock:
            locked.set()
            await release.wait()
        return "held"

    async def waiter() -> str:
        await locked.wait()
        async with lock:
            return "after"

    with anyio.fail_after(60):  # on another loop the tasks would never wake
        async with unirun.AutoExecutor() as ex:
            first = ex.submit(holder)
            second = ex.submit(waiter)
            await locked.wait()
            assert lock.locked()
            release.set()
            assert await first == "held"
            assert await second == "after"


async def _forever() -> None:
    await anyio.sleep_forever()


async def test_async_with_body_error_leaves_as_itself_gh11() -> None:
    futures: list[unirun.Future[object]] = []

    async def body() -> None:
        async with unirun.AutoExecutor() as ex:
            futures.append(ex.submit(nap, 0.01))
            futures.append(ex.submit(_forever))
            raise ValueError("boom")

    with anyio.fail_after(60):  # it waited for the coroutine for ever
        with pytest.raises(ValueError, match="boom") as info:
            await body()
    assert type(info.value) is ValueError
    # Leaving waited for the plain function, as shutdown() does, and cancelled
    # the coroutine, as CoroutineExecutor does.
    assert futures[0].result(timeout=0) == 0.01
    assert futures[1].cancelled()


async def test_a_cancelled_async_with_cancels_its_coroutines() -> None:
    with anyio.fail_after(60):  # it waited for the coroutine for ever
        with anyio.CancelScope() as scope:
            async with unirun.AutoExecutor() as ex:
                future = ex.submit(_forever)
                await anyio.sleep(0)  # it runs
                scope.cancel()
                await anyio.sleep(60)  # cancelled at once
    assert scope.cancelled_caught
    assert future.cancelled()


async def test_async_with_after_sync_use_keeps_own_loop() -> None:
    # The coroutine pool already runs on a loop of its own: it stays there.
    ex = unirun.AutoExecutor()
    assert ex.submit(async_nap, 0.001).result(timeout=60) == 0.001
    async with ex:
        assert await ex.submit(loop_thread) != threading.get_ident()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(async_nap, 0)
