"""A plain function that returns a coroutine, or an awaitable of another kind.

Only a coroutine is run, as the thread and process backends do, on whichever
route a call takes; any other value, awaitable or not, comes back as is. The
function itself never runs on an event loop: only the coroutine it returns does.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import unirun
from _auto_tasks import loop_thread

if TYPE_CHECKING:
    from collections.abc import Coroutine, Generator


async def double(value: int) -> int:
    await anyio.sleep(0)
    return 2 * value


class Handle:
    """Not a coroutine, but awaitable (a lazy query object, say)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, str]:
        yield from ()
        return f"awaited:{self.value}"


def make_handle(value: int) -> Handle:
    return Handle(value)


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


def test_an_awaitable_that_is_no_coroutine_comes_back_as_is() -> None:
    # (Typed Future[str]: submit's first overload takes any callable that
    # returns an awaitable.)
    with unirun.ThreadExecutor() as pool:
        expected: object = pool.submit(make_handle, 0).result(timeout=60)
    assert type(expected) is Handle
    with unirun.AutoExecutor() as ex:
        results: list[object] = [
            ex.submit(make_handle, i).result(timeout=60) for i in range(4)
        ]
        results += ex.map(make_handle, range(4, 7))
        verdict = ex.explain(make_handle)
    assert [type(result) for result in results] == [Handle] * 7
    assert [getattr(result, "value", None) for result in results] == list(range(7))
    assert verdict is not None
    assert verdict.backend != "coroutine"  # nothing for a loop to run


def test_the_coroutine_route_returns_another_awaitable_as_is() -> None:
    def either(value: int, use_async: bool) -> Coroutine[Any, Any, int] | Handle:
        return double(value) if use_async else Handle(value)

    with unirun.AutoExecutor() as ex:
        assert ex.submit(either, 1, True).result(timeout=60) == 2
        verdict = ex.explain(either)
        assert verdict is not None
        assert verdict.backend == "coroutine"
        handle: object = ex.submit(either, 2, False).result(timeout=60)
        assert ex.submit(either, 3, True).result(timeout=60) == 6
    assert type(handle) is Handle
    assert getattr(handle, "value", None) == 2


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
