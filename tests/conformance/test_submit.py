"""DESIGN 1 and 2: submit takes sync and async callables; results come back as is."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from _tasks import (
    Payload,
    add,
    async_fail,
    async_fail_with,
    async_raise_cancelled,
    async_square,
    echo_kwargs,
    fail_if_negative,
    fail_with,
    first_word,
    make_handle,
    raise_cancelled,
    record_start,
    square,
    start_square,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from unirun._base import BaseExecutor


def test_submit_sync_returns_result(executor: BaseExecutor) -> None:
    future = executor.submit(add, 2, b=3)
    assert isinstance(future, unirun.Future)
    assert isinstance(future, cf.Future)
    assert future.result(timeout=60) == 5


def test_submit_async_callable_returns_result(executor: BaseExecutor) -> None:
    assert executor.submit(async_square, 7).result(timeout=60) == 49


def test_submit_keeps_keyword_arguments_named_like_options(
    executor: BaseExecutor,
) -> None:
    # A task's own `timeout=` or `name=` must reach the task, not the executor.
    future = executor.submit(echo_kwargs, 1, timeout=5, name="x", fn="y")
    assert future.result(timeout=60) == ((1,), {"timeout": 5, "name": "x", "fn": "y"})


def test_submit_exception_type_and_message_unchanged(executor: BaseExecutor) -> None:
    future = executor.submit(fail_if_negative, -3)
    with pytest.raises(ValueError, match="negative: -3"):
        future.result(timeout=60)
    assert type(future.exception()) is ValueError


def test_submit_async_exception_unchanged(executor: BaseExecutor) -> None:
    with pytest.raises(KeyError, match="boom"):
        executor.submit(async_fail, "boom").result(timeout=60)


def test_a_plain_task_raising_stop_iteration_fails_with_it(
    executor: BaseExecutor,
) -> None:
    # As the stdlib: the task's own error, not PEP 479's RuntimeError (which a
    # coroutine on the way back to the Future would turn it into).
    future = executor.submit(first_word, "")
    with pytest.raises(StopIteration):
        future.result(timeout=60)
    assert type(future.exception()) is StopIteration


@pytest.mark.parametrize("fn", [raise_cancelled, async_raise_cancelled])
def test_a_task_that_raises_cancelled_error_itself_fails_with_it(
    executor: BaseExecutor, fn: Callable[[str], object]
) -> None:
    # As on ThreadPoolExecutor: nobody cancelled the task, so its future is not
    # cancelled; the error is the task's own (asyncio's loop took it for one).
    import asyncio

    future = executor.submit(fn, "mine")
    error = future.exception(timeout=60)
    assert not future.cancelled()
    assert isinstance(error, asyncio.CancelledError)
    assert str(error) == "mine"


def test_submit_remote_traceback_is_cause(executor: BaseExecutor) -> None:
    exc = executor.submit(fail_if_negative, -1).exception(timeout=60)
    assert isinstance(exc, ValueError)
    if executor.crosses_processes:
        assert isinstance(exc.__cause__, unirun.RemoteTraceback)
        assert "fail_if_negative" in str(exc.__cause__)
    else:
        assert exc.__traceback__ is not None


def test_submit_runs_exactly_once(executor: BaseExecutor, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    executor.submit(record_start, str(marker), 1).result(timeout=60)
    assert marker.exists()
    marker.unlink()
    executor.shutdown(wait=True)
    assert not marker.exists()


def test_submit_non_callable_fails_fast(executor: BaseExecutor) -> None:
    with pytest.raises(TypeError, match="callable"):
        executor.submit(42)  # type: ignore[call-overload]  # the point of the test


def test_submit_from_many_threads(executor: BaseExecutor) -> None:
    barrier = threading.Barrier(4)
    results: list[list[int]] = [[] for _ in range(4)]

    def client(slot: int) -> None:
        barrier.wait()
        futures = [executor.submit(square, slot * 100 + i) for i in range(25)]
        results[slot] = [f.result(timeout=60) for f in futures]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for slot in range(4):
        assert results[slot] == [(slot * 100 + i) ** 2 for i in range(25)]


def test_submit_lambda_and_closure(executor: BaseExecutor) -> None:
    offset = 10
    assert executor.submit(lambda x: x + offset, 5).result(timeout=60) == 15


def test_result_timeout_raises_builtin_timeout(executor: BaseExecutor) -> None:
    future: unirun.Future[int] = unirun.Future()
    with pytest.raises(TimeoutError):
        future.result(timeout=-1)
    with pytest.raises(cf.TimeoutError):
        future.result(timeout=0)


@pytest.mark.anyio
async def test_submit_awaited_from_async_code(kind: str) -> None:
    from conftest import make_executor

    executor = make_executor(kind)
    try:
        assert await executor.submit(add, 1, 2) == 3
        assert await executor.submit(async_square, 4) == 16
        with pytest.raises(ValueError, match="negative"):
            await executor.submit(fail_if_negative, -2)
    finally:
        executor.shutdown()


def test_run_in_executor_accepts_executor(kind: str) -> None:
    import asyncio

    from conftest import make_executor

    executor = make_executor(kind)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, square, 9)

    try:
        assert asyncio.run(main()) == 81
    finally:
        executor.shutdown()


@pytest.mark.parametrize("timeout", [None, 600])
@pytest.mark.parametrize("fn", [fail_with, async_fail_with])
def test_a_failed_task_lets_go_of_its_arguments_without_the_cyclic_collector(
    executor: BaseExecutor, fn: Callable[[Payload], None], timeout: float | None
) -> None:
    # As the stdlib: the error, its traceback and the task's arguments are freed
    # once the Future is dropped, not at the next collection (no cycle through
    # the frames that ran it, or, from 3.12, the frames that awaited it).
    gc.collect()
    gc.disable()
    try:
        payload = Payload()
        freed = weakref.ref(payload)
        future = executor.options(timeout=timeout).submit(fn, payload)
        del payload
        try:
            future.result(timeout=60)
        except ValueError:
            pass
        del future
        # The worker lets go of the call's frame as it returns, just after.
        deadline = time.monotonic() + 10
        while freed() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert freed() is None
    finally:
        gc.enable()


def test_a_coroutine_a_plain_function_returns_is_run(executor: BaseExecutor) -> None:
    # As the thread and process backends do: the function's coroutine runs.
    assert executor.submit(start_square, 7).result(timeout=60) == 49


def test_another_awaitable_a_plain_function_returns_comes_back_as_is(
    executor: BaseExecutor,
) -> None:
    # Only a coroutine is run: the coroutine backend awaited any awaitable, so
    # the same call gave the awaitable on threads and its result on the loop.
    handle: Any = executor.submit(make_handle, 7).result(timeout=60)
    assert (type(handle).__name__, handle.value) == ("Handle", 7)
