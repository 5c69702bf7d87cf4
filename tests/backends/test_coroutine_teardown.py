"""How a coroutine executor's jobs end when it does: nothing accepted is left
pending, the loop's busy clock stops, and ``shutdown`` keeps the stdlib's word."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import sys
import threading
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest

import unirun
from _tasks import square
from unirun._future import Future

if TYPE_CHECKING:
    from collections.abc import Callable

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("teardown", default="unset")


async def wait_for(event: anyio.Event) -> str:
    await event.wait()
    return "released"


async def noop() -> None:
    return None


def busy_of(executor: unirun.CoroutineExecutor) -> float:
    """The loop's busy time (its clock: after shutdown no worker is listed)."""
    return executor._runner._clock.read().busy_s


async def settled_busy(executor: unirun.CoroutineExecutor) -> tuple[float, float]:
    """The busy clock read twice, the loop's turns after the last job ended."""
    for _ in range(3):
        await anyio.sleep(0)
    first = busy_of(executor)
    await anyio.sleep(0.01)
    return first, busy_of(executor)


@pytest.mark.anyio
@pytest.mark.parametrize("leave_by", ["an exception", "a cancellation"])
async def test_jobs_waiting_for_a_slot_end_cancelled_when_async_with_is_left(
    leave_by: str,
) -> None:
    started = anyio.Event()

    async def first() -> None:
        started.set()
        await anyio.sleep_forever()

    futures: list[unirun.Future[Any]] = []
    with anyio.CancelScope() as scope:
        try:
            async with unirun.CoroutineExecutor(max_workers=1) as ex:
                futures.append(ex.submit(first))
                futures += [ex.submit(noop) for _ in range(3)]  # wait for the slot
                await started.wait()
                if leave_by == "an exception":
                    raise ValueError("the body failed")
                scope.cancel()
                await anyio.sleep_forever()
        except ValueError:
            pass
    # Nothing accepted is left pending: the running job was cancelled, and each
    # that waited for its slot ended cancelled (or, on trio, ran to its end if
    # the slot reached it before the cancellation did).
    assert unirun.wait(futures, timeout=0).not_done == set()
    assert futures[0].cancelled()
    assert all(f.cancelled() or f.result() is None for f in futures[1:])
    stats = ex.statistics()
    assert (stats.queued, stats.running) == (0, 0)
    assert stats.cancelled + stats.done == 4


@pytest.mark.anyio
async def test_the_clock_stops_when_a_job_that_waited_for_a_slot_is_cancelled() -> None:
    started, release = anyio.Event(), anyio.Event()

    async def hold() -> None:
        started.set()
        await release.wait()

    async with unirun.CoroutineExecutor(max_workers=1) as ex:
        running = ex.submit(hold)
        await started.wait()
        waiting = ex.submit(noop)
        for _ in range(3):
            await anyio.sleep(0)  # its task starts, and waits for the slot
        assert waiting.cancel()
        release.set()
        await running
        first, later = await settled_busy(ex)
    assert later == first


def test_the_clock_stops_when_a_job_is_cancelled_before_its_task_runs() -> None:
    # Before 3.12 a task submitted on the loop is made at once and runs at the
    # loop's next turn: here, after the turn that settles the clock.
    async def main() -> tuple[float, float]:
        go = asyncio.Event()

        async def first() -> None:
            await go.wait()

        async with unirun.CoroutineExecutor() as ex:
            ex.submit(first)
            await asyncio.sleep(0)  # it runs: the clock starts
            go.set()
            await asyncio.sleep(0)  # it ends in this turn, and asks for a settle
            assert ex.submit(noop).cancel()  # made before the settle, run after it
            return await settled_busy(ex)

    first, later = asyncio.run(main())
    assert later == first


def test_the_clock_stops_after_shutdown_cancelled_jobs_that_waited_for_a_slot() -> None:
    ready, release = threading.Event(), threading.Event()
    ex = unirun.CoroutineExecutor(max_workers=1)

    async def hold() -> list[unirun.Future[None]]:
        waiting = [ex.submit(noop) for _ in range(3)]
        for _ in range(3):
            await anyio.sleep(0)  # their tasks start, and wait for the slot
        ready.set()
        await anyio.to_thread.run_sync(release.wait)
        return waiting

    running = ex.submit(hold)
    assert ready.wait(60)
    threading.Timer(0.05, release.set).start()
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in running.result(timeout=0))
    first = busy_of(ex)
    assert threading.Event().wait(0.01) is False  # time passes, nothing runs
    assert busy_of(ex) == first


@pytest.mark.anyio
async def test_shutdown_in_another_thread_waits_for_jobs_on_the_callers_loop() -> None:
    release = threading.Event()

    async def slow() -> str:
        await anyio.to_thread.run_sync(release.wait)
        return "done"

    async with unirun.CoroutineExecutor() as ex:
        future = ex.submit(slow)

        def shut_down() -> bool:
            # Released later by a timer: a shutdown that returned at once
            # would find the job still running.
            threading.Timer(0.1, release.set).start()
            ex.shutdown(wait=True)
            return future.done()

        assert await anyio.to_thread.run_sync(shut_down)
        assert await future == "done"


@pytest.mark.anyio
async def test_cancel_futures_cancels_jobs_started_but_not_yet_run() -> None:
    # No limit: on the loop's own thread a job's task is made at once (or, on
    # trio before 3.12, it is spawned at once); until it runs it is pending.
    ran: list[int] = []

    async def record(i: int) -> None:
        ran.append(i)

    async with unirun.CoroutineExecutor() as ex:
        futures = [ex.submit(record, i) for i in range(3)]
        ex.shutdown(wait=False, cancel_futures=True)  # in the same turn
        assert [f.cancelled() for f in futures] == [True] * 3
    assert ran == []
    assert ex.statistics().cancelled == 3


async def read_var() -> str:
    return VAR.get()


def read_var_sync() -> str:
    return VAR.get()


@pytest.mark.anyio
async def test_jobs_run_in_the_executors_context_on_every_loop() -> None:
    # A copy of the context the executor was entered in, whoever submits.
    VAR.set("before entering")
    async with unirun.CoroutineExecutor() as ex:
        VAR.set("set in the body")
        assert await ex.submit(read_var) == "before entering"
        assert await ex.submit(read_var_sync) == "before entering"

        async def shut_down_inside() -> None:
            ex.shutdown(wait=True)

        # A task of its own executor is known as one (it would wait for itself).
        with pytest.raises(RuntimeError):
            await ex.submit(shut_down_inside)


def test_a_task_factory_of_the_documented_two_arguments_works() -> None:
    # loop.set_task_factory documents factory(loop, coro); create_task passes a
    # context only when it is given one.
    made: list[asyncio.Task[Any]] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop)
        made.append(task)
        return task

    async def main() -> tuple[int, str]:
        asyncio.get_running_loop().set_task_factory(factory)
        VAR.set("before entering")
        async with unirun.CoroutineExecutor() as ex:
            VAR.set("set in the body")
            # A time-out: the job goes through the loop's task factory.
            squared = await ex.options(timeout=60).submit(square_async, 6)
            return squared, await ex.options(timeout=60).submit(read_var)

    assert asyncio.run(main()) == (36, "before entering")
    assert len(made) >= 2


def test_cancel_futures_cancels_jobs_a_task_factory_made_that_have_not_run() -> None:
    ran: list[int] = []

    async def record(i: int) -> None:
        ran.append(i)

    def factory(loop: asyncio.AbstractEventLoop, coro: Any) -> asyncio.Task[Any]:
        return asyncio.Task(coro, loop=loop)  # starts at the loop's next turn

    async def main() -> list[bool]:
        asyncio.get_running_loop().set_task_factory(factory)
        async with unirun.CoroutineExecutor() as ex:
            # A time-out: the job goes through the loop's task factory.
            futures = [ex.options(timeout=60).submit(record, i) for i in range(3)]
            if sys.version_info >= (3, 12):
                await asyncio.sleep(0)  # queued, then made in this turn
            ex.shutdown(wait=False, cancel_futures=True)
            return [f.cancelled() for f in futures]

    assert asyncio.run(main()) == [True] * 3
    assert ran == []


async def square_async(x: int) -> int:
    return x * x


def test_cancel_returns_false_when_the_task_finishes_as_it_is_stopped() -> None:
    future: Future[int] = Future()

    def stopper(abandon: bool) -> bool:
        future.set_result(7)  # the task finished before the stop reached it
        return True

    assert future._start(stopper)
    assert future.cancel() is False
    assert not future.cancelled()
    assert future.result() == 7


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_zero_time_out_job_cancelled_as_it_starts_leaves_the_loop_running(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    start: Callable[..., bool] = Future._start

    def start_then_cancelled(self: Future[Any], stopper: Any = None) -> bool:
        started = start(self, stopper)
        if started:
            self._mark_cancelled()  # a cancel() that lands right after the start
        return started

    with unirun.CoroutineExecutor(backend=backend) as ex:  # type: ignore[arg-type]  # parametrised literal
        monkeypatch.setattr(Future, "_start", start_then_cancelled)
        doomed = ex.options(timeout=0).submit(square_async, 2)
        assert unirun.wait([doomed], timeout=60).not_done == set()
        monkeypatch.undo()
        assert doomed.cancelled()
        # The loop lives on.
        assert ex.submit(square_async, 3).result(timeout=60) == 9
        assert ex.submit(square, 4).result(timeout=60) == 16


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_shutdown_waits_for_a_plain_function_that_ran_past_its_time_out(
    backend: str,
) -> None:
    # As ThreadExecutor: a thread cannot be stopped, so shutdown(wait=True)
    # waits for it (no thread of the executor is left running its task).
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def overruns() -> None:
        started.set()
        release.wait(60)
        finished.append(True)

    ex = unirun.CoroutineExecutor(backend=backend)  # type: ignore[arg-type]  # parametrised literal
    future = ex.options(timeout=1.0).submit(overruns)
    assert started.wait(60)
    with pytest.raises(unirun.TaskTimeoutError):
        future.result(timeout=60)
    threading.Timer(0.05, release.set).start()
    ex.shutdown(wait=True)
    assert finished == [True]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("timeout", [None, 60.0])
def test_a_job_that_raises_cancelled_error_itself_fails_inside_async_with(
    backend: str, timeout: float | None
) -> None:
    # Nobody cancelled these tasks: asyncio's loop took the error for a
    # cancellation (trio never did); a task really cancelled still ends so.
    async def own_error() -> None:
        raise asyncio.CancelledError("mine")

    async def main() -> None:
        started = anyio.Event()

        async def stuck() -> None:
            started.set()
            await anyio.sleep_forever()

        async with unirun.CoroutineExecutor() as ex:
            view = ex.options(timeout=timeout)
            failed = view.submit(own_error)
            error = await anyio.to_thread.run_sync(failed.exception, 60)
            assert isinstance(error, asyncio.CancelledError)
            assert str(error) == "mine"
            assert not failed.cancelled()
            cancelled = view.submit(stuck)
            await started.wait()
            assert cancelled.cancel()
            with pytest.raises(cf.CancelledError):
                await cancelled

    anyio.run(main, backend=backend)
