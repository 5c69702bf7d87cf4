"""A plain function that returns a coroutine.

The coroutine is run, as the thread and process backends do, on whichever
route a call takes; a plain value comes back as is. The function itself never
runs on an event loop: only the coroutine it returns does.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import unirun
from _auto_tasks import loop_thread

if TYPE_CHECKING:
    from collections.abc import Coroutine


async def double(value: int) -> int:
    await anyio.sleep(0)
    return 2 * value


def test_a_call_may_return_a_value_after_one_returned_a_coroutine() -> None:
    both_running = threading.Barrier(2, timeout=30)
    threads: list[int] = []

    def handler(value: int, use_async: bool) -> Coroutine[Any, Any, int] | int:
        threads.append(threading.get_ident())
        if use_async:
            return double(value)
        both_running.wait()  # two calls at once: neither holds up the other
        return value

    def run(executor: unirun.Executor) -> list[object]:
        results: list[object] = [executor.submit(handler, 1, True).result(timeout=60)]
        futures = [executor.submit(handler, value, False) for value in (2, 3)]
        results += [future.result(timeout=60) for future in futures]
        results.append(executor.submit(handler, 4, True).result(timeout=60))
        return results

    with unirun.ThreadExecutor(max_workers=2) as pool:
        expected = run(pool)
    assert expected == [2, 2, 3, 8]
    with unirun.AutoExecutor() as ex:
        loop = ex.submit(loop_thread).result(timeout=60)
        threads.clear()
        assert run(ex) == expected
        verdict = ex.explain(handler)
        assert verdict is not None
        assert verdict.backend == "coroutine"  # the route under test
    assert loop not in threads  # the function ran on worker threads


@pytest.mark.anyio
async def test_inside_async_with_a_plain_function_never_runs_on_the_loop() -> None:
    # Only the coroutine it returns runs there: the function's own code (a
    # blocking setup, say) would freeze the caller's loop.
    caller = threading.get_ident()
    factories: list[int] = []
    bodies: list[int] = []

    async def body(value: int) -> int:
        await anyio.sleep(0)
        bodies.append(threading.get_ident())
        return value

    def factory(value: int) -> Coroutine[Any, Any, int]:
        factories.append(threading.get_ident())
        return body(value)

    async with unirun.AutoExecutor() as ex:
        assert await ex.submit(factory, 0) == 0  # the probe, on a worker thread
        verdict = ex.explain(factory)
        assert verdict is not None
        assert verdict.backend == "coroutine"
        factories.clear()
        bodies.clear()
        futures = [ex.submit(factory, value) for value in (1, 2, 3)]
        assert [await future for future in futures] == [1, 2, 3]
    assert len(factories) == 3
    assert caller not in factories
    assert bodies == [caller] * 3  # on the caller's loop, as coroutines run
