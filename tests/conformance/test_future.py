"""Future is a concurrent.futures.Future that is awaitable; wait and as_completed."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import gc
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import unirun
from _tasks import square
from unirun._gather import gather_futures

if TYPE_CHECKING:
    from unirun._base import BaseExecutor


def test_future_works_with_stdlib_wait_and_as_completed(executor: BaseExecutor) -> None:
    futures = [executor.submit(square, i) for i in range(6)]
    done, not_done = cf.wait(futures, timeout=60)
    assert done == set(futures)
    assert not not_done
    assert sorted(f.result() for f in cf.as_completed(futures)) == [
        i * i for i in range(6)
    ]


def test_unirun_wait_and_as_completed(executor: BaseExecutor) -> None:
    futures = [executor.submit(square, i) for i in range(6)]
    done, _ = unirun.wait(futures, timeout=60, return_when=unirun.ALL_COMPLETED)
    assert done == set(futures)
    assert {f.result() for f in unirun.as_completed(futures + futures)} == {
        i * i for i in range(6)
    }


def test_as_completed_reads_its_futures_at_the_first_step_as_the_stdlib() -> None:
    # The stdlib's as_completed is a generator: it reads its argument (and fails
    # on a bad one) at the first step, not when called.
    done: unirun.Future[int] = unirun.Future()
    done.set_result(1)
    later: list[unirun.Future[int]] = []
    iterator = unirun.as_completed(later)
    later.append(done)
    assert list(iterator) == [done]
    bad: Any = unirun.as_completed(None)  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(TypeError):
        next(bad)

    async def read() -> list[unirun.Future[int]]:
        futures: list[unirun.Future[int]] = []
        iterator = unirun.as_completed(futures)
        futures.append(done)
        return [future async for future in iterator]

    assert asyncio.run(read()) == [done]


def test_as_completed_timeout_message_matches_stdlib() -> None:
    never: unirun.Future[int] = unirun.Future()
    with pytest.raises(TimeoutError) as ours:
        list(unirun.as_completed([never], timeout=0))
    with pytest.raises(TimeoutError) as stdlib:
        list(cf.as_completed([never], timeout=0))
    assert str(ours.value) == str(stdlib.value)


@pytest.mark.anyio
async def test_as_completed_async_for(kind: str) -> None:
    from conftest import make_executor

    executor = make_executor(kind)
    try:
        futures = [executor.submit(square, i) for i in range(6)]
        seen = [f.result() async for f in unirun.as_completed(futures)]
        assert sorted(seen) == [i * i for i in range(6)]
    finally:
        executor.shutdown()


@pytest.mark.anyio
async def test_as_completed_async_timeout() -> None:
    never: unirun.Future[int] = unirun.Future()
    with pytest.raises(TimeoutError, match=r"1 \(of 1\) futures unfinished"):
        async for _ in unirun.as_completed([never], timeout=0.01):
            pass


@pytest.mark.anyio
async def test_future_await_set_from_other_thread() -> None:
    future: unirun.Future[str] = unirun.Future()

    def complete() -> None:
        future.set_result("from a thread")

    async with anyio.create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, complete)
        assert await future == "from a thread"


@pytest.mark.anyio
async def test_awaiting_cancelled_future_raises_stdlib_cancelled() -> None:
    future: unirun.Future[int] = unirun.Future()
    future.cancel()
    with pytest.raises(cf.CancelledError):
        await future


@pytest.mark.anyio
async def test_cancelled_awaiter_cancels_pending_future() -> None:
    future: unirun.Future[int] = unirun.Future()
    with anyio.move_on_after(0.01):
        await future
    assert future.cancelled()


def test_asyncio_wrap_future_accepts_future(executor: BaseExecutor) -> None:
    async def main() -> int:
        return await asyncio.wrap_future(executor.submit(square, 12))

    assert asyncio.run(main()) == 144


def test_future_repr_shows_state() -> None:
    future: unirun.Future[int] = unirun.Future()
    assert "state=pending" in repr(future)
    future.set_result(3)
    assert "state=finished returned int" in repr(future)


def test_repr_names_states_as_the_stdlib_does() -> None:
    ours: unirun.Future[int] = unirun.Future()
    theirs: cf.Future[int] = cf.Future()
    for future in (ours, theirs):
        future.cancel()
        future.set_running_or_notify_cancel()
    assert "state=cancelled>" in repr(ours)
    assert "state=cancelled>" in repr(theirs)


def test_as_completed_forgets_each_future_it_yields(executor: BaseExecutor) -> None:
    futures = [executor.submit(square, i) for i in range(3)]
    refs = [weakref.ref(f) for f in futures]
    iterator = unirun.as_completed(futures)
    del futures
    for _ in range(3):
        next(iterator)  # dropped at once
    gc.collect()
    assert all(ref() is None for ref in refs)


@pytest.mark.parametrize("timeout", [float("inf"), 1e300, 10**20])
def test_a_time_out_too_long_for_any_clock_waits_without_limit(
    timeout: float,
) -> None:
    # result() and exception() alike (the stdlib raises OverflowError for both).
    for method, outcome in (("result", 7), ("exception", ValueError("failed"))):
        future: unirun.Future[int] = unirun.Future()
        future.set_running_or_notify_cancel()
        if isinstance(outcome, BaseException):
            setter = threading.Timer(0.01, future.set_exception, [outcome])
        else:
            setter = threading.Timer(0.01, future.set_result, [outcome])
        setter.start()
        assert getattr(future, method)(timeout) is outcome
        setter.join()


@pytest.mark.parametrize("ending", ["result", "exception", "cancel"])
def test_a_done_future_drops_its_callbacks(ending: str) -> None:
    # As asyncio's futures: the callbacks run once, then go. A gather's callback
    # refers to every child, so children that kept it were a reference cycle
    # only the garbage collector could free (all of a gather's futures lived
    # on after it, until the next full collection).
    children: list[unirun.Future[int]] = [unirun.Future() for _ in range(3)]
    gathered = gather_futures(list(children), return_exceptions=True)
    called: list[unirun.Future[int]] = []
    children[0].add_done_callback(called.append)
    for child in children:
        if ending == "result":
            child.set_result(1)
        elif ending == "exception":
            child.set_exception(ValueError("no"))
        else:
            assert child.cancel()
    assert called == [children[0]]  # each callback ran, once
    assert gathered.done()
    gc.collect()
    gc.disable()
    try:
        alive: list[weakref.ref[object]] = [weakref.ref(f) for f in children]
        alive.append(weakref.ref(gathered))
        del children, gathered, called, child
        assert [ref() for ref in alive] == [None] * 4  # freed with no collection
    finally:
        gc.enable()


@pytest.mark.parametrize("future_type", [unirun.Future, cf.Future])
def test_set_running_on_a_finished_future_logs_and_raises_as_the_stdlib(
    future_type: type[cf.Future[int]], caplog: pytest.LogCaptureFixture
) -> None:
    future = future_type()
    future.set_result(1)
    with (
        caplog.at_level(logging.CRITICAL, logger="concurrent.futures"),
        pytest.raises(RuntimeError, match="Future in unexpected state"),
    ):
        future.set_running_or_notify_cancel()
    assert f"Future {id(future)} in unexpected state: FINISHED" in caplog.text


@pytest.mark.anyio
async def test_as_completed_async_for_takes_a_nan_time_out_as_for_does() -> None:
    # The sync iteration, as the stdlib's, sets no limit for NaN; `async for`
    # raised anyio's ValueError.
    future: unirun.Future[int] = unirun.Future()
    future.set_result(1)
    timeout = float("nan")
    assert [f.result() for f in unirun.as_completed([future], timeout)] == [1]
    assert [f.result() async for f in unirun.as_completed([future], timeout)] == [1]
