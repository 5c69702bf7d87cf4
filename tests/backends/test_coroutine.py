"""What only the coroutine backend does: real cancellation, the caller's loop."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import gc
import inspect
import threading
import warnings
import weakref
from typing import Any, Literal

import anyio
import pytest

import unirun
from _tasks import (
    Payload,
    async_fail,
    async_fail_with,
    async_sleep_then,
    fail_with,
    init_fail,
    square,
    thread_name,
)


@pytest.mark.anyio
async def test_async_with_runs_tasks_on_the_callers_loop() -> None:
    here = threading.current_thread()

    async def where() -> threading.Thread:
        return threading.current_thread()

    async with unirun.CoroutineExecutor() as ex:
        assert await ex.submit(where) is here
        # Sync functions still go to a worker thread, never blocking the loop.
        assert await ex.submit(thread_name) != here.name


def test_own_loop_runs_in_background_thread() -> None:
    async def where() -> str:
        return threading.current_thread().name

    with unirun.CoroutineExecutor() as ex:
        assert ex.submit(where).result(timeout=60).startswith("CoroutineExecutor-")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_backend_choice(backend: str) -> None:
    import sniffio

    async def library() -> str:
        return sniffio.current_async_library()

    with unirun.CoroutineExecutor(backend=backend) as ex:  # type: ignore[arg-type]  # parametrised literal
        assert ex.submit(library).result(timeout=60) == backend


def test_bad_backend_rejected() -> None:
    with pytest.raises(ValueError, match="backend must be"):
        unirun.CoroutineExecutor(backend="curio")  # type: ignore[arg-type]  # bad input on purpose


def test_cancel_running_coroutine_runs_its_cleanup() -> None:
    started = threading.Event()
    cleaned_up = threading.Event()

    async def task() -> None:
        try:
            started.set()
            await anyio.sleep_forever()
        finally:
            cleaned_up.set()

    with unirun.CoroutineExecutor() as ex:
        future = ex.submit(task)
        assert started.wait(60)
        assert future.cancel()
        assert cleaned_up.wait(60)
        with pytest.raises(cf.CancelledError):
            future.result()


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["cancel()", "cancel() in a thread", "await abandoned"])
async def test_cancel_running_coroutine_inside_async_with_runs_its_cleanup(
    how: str,
) -> None:
    # Submitted on the loop itself: on asyncio before 3.12 its task starts
    # without a queued Job, and the task is what stops it.
    started = anyio.Event()
    cleaned_up = anyio.Event()

    async def task() -> None:
        try:
            started.set()
            await anyio.sleep_forever()
        finally:
            cleaned_up.set()

    async with unirun.CoroutineExecutor() as ex:
        future = ex.submit(task)
        with anyio.fail_after(60):
            await started.wait()
            assert future.running()
            if how == "cancel()":
                assert future.cancel()
            elif how == "cancel() in a thread":
                assert await anyio.to_thread.run_sync(future.cancel)
            else:
                with anyio.CancelScope() as scope:
                    scope.cancel()
                    await future
            await cleaned_up.wait()
        assert future.cancelled()


def test_an_ended_coroutine_task_is_not_kept_by_its_future() -> None:
    async def own_task() -> weakref.ref[asyncio.Task[Any]]:
        task = asyncio.current_task()
        assert task is not None
        return weakref.ref(task)

    async def main() -> tuple[unirun.Future[Any], weakref.ref[asyncio.Task[Any]]]:
        async with unirun.CoroutineExecutor() as ex:
            future = ex.submit(own_task)
            return future, await future

    future, task = asyncio.run(main())
    gc.collect()
    assert future.done()
    assert task() is None  # the Future, still held, let go of its task


@pytest.mark.anyio
@pytest.mark.parametrize("beside", [False, True])
async def test_the_loop_is_busy_while_a_task_runs_and_idle_after_it(
    beside: bool,
) -> None:
    release = anyio.Event()

    async def task() -> None:
        await release.wait()

    async def at_once() -> None:
        return None

    async with unirun.CoroutineExecutor() as ex:
        future = ex.submit(task)
        if beside:  # a job with a time-out runs (and ends) another way
            await ex.options(timeout=60).submit(at_once)
        await anyio.sleep(0.05)
        release.set()
        await future
        await anyio.sleep(0)  # the loop's turn after the last task ended
        (ended,) = ex.statistics().workers
        assert ended.busy_s >= 0.05
        await anyio.sleep(0.05)
        (later,) = ex.statistics().workers
        assert later.busy_s == ended.busy_s  # no task runs: the clock stopped
        assert later.idle_s > ended.idle_s


def test_max_concurrency_caps_running_tasks() -> None:
    running = 0
    peak = 0
    release = threading.Event()
    arrived = threading.Semaphore(0)
    lock = threading.Lock()

    async def task() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        arrived.release()
        await anyio.to_thread.run_sync(release.wait)
        with lock:
            running -= 1

    with unirun.CoroutineExecutor(max_concurrency=2) as ex:
        futures = [ex.submit(task) for _ in range(6)]
        assert arrived.acquire(timeout=60)
        assert arrived.acquire(timeout=60)
        assert sum(f.running() for f in futures) == 2
        release.set()
        cf.wait(futures, timeout=60)
    assert peak == 2
    assert all(f.result() is None for f in futures)


def test_timeout_cancels_coroutine() -> None:
    cancelled = threading.Event()

    async def task() -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    with unirun.CoroutineExecutor() as ex:
        future = ex.options(timeout=0.05).submit(task)
        with pytest.raises(unirun.TaskTimeoutError):
            future.result(timeout=60)
        assert cancelled.wait(60)


def test_failing_initializer_breaks_executor() -> None:
    ex = unirun.CoroutineExecutor(initializer=init_fail)
    try:
        with pytest.raises(unirun.BrokenExecutor, match="initializer failed"):
            ex.submit(square, 1).result(timeout=60)
    finally:
        ex.shutdown()


@pytest.mark.anyio
async def test_failing_initializer_breaks_executor_inside_async_with() -> None:
    # Submitted on the loop itself: the path that starts a task at once must
    # refuse too, as the queued one does.
    async def echo(value: int) -> int:
        return value

    async with unirun.CoroutineExecutor(initializer=init_fail) as ex:
        with pytest.raises(unirun.BrokenExecutor, match="initializer failed"):
            await ex.submit(echo, 1)


def test_submit_from_trio_thread_to_asyncio_executor() -> None:
    # A wake-up scheduled from a trio thread carries trio's context; tasks must
    # still run in the asyncio loop's own context (anyio would pick trio).
    async def main() -> int:
        with unirun.CoroutineExecutor(backend="asyncio") as ex:
            return await ex.submit(square, 6)

    assert anyio.run(main, backend="trio") == 36


@pytest.mark.anyio
async def test_error_in_async_with_body_leaves_as_itself_gh11() -> None:
    # Not an ExceptionGroup: the error the body raised.
    with pytest.raises(ValueError, match="from the body"):  # noqa: PT012
        async with unirun.CoroutineExecutor() as ex:
            await ex.submit(async_sleep_then, 0, None)
            raise ValueError("from the body")


@pytest.mark.anyio
async def test_an_exception_group_the_body_raises_leaves_as_itself() -> None:
    group = ExceptionGroup("the body's own", [ValueError(1), KeyError(2)])
    with pytest.raises(ExceptionGroup) as caught:  # noqa: PT012
        async with unirun.CoroutineExecutor() as ex:
            await ex.submit(async_sleep_then, 0, None)
            raise group
    assert caught.value is group


@pytest.mark.anyio
async def test_error_of_awaited_task_leaves_async_with_as_itself_gh11() -> None:
    with pytest.raises(KeyError, match="boom"):
        async with unirun.CoroutineExecutor() as ex:
            await ex.submit(async_fail, "boom")


def test_dropped_executor_lets_its_loop_thread_end_gh12() -> None:
    import gc

    ex = unirun.CoroutineExecutor()
    assert ex.submit(async_sleep_then, 0, None).result(timeout=60) is None
    (loop_thread,) = [
        t for t in threading.enumerate() if t.name.startswith("CoroutineExecutor-")
    ]
    del ex
    gc.collect()
    loop_thread.join(60)
    assert not loop_thread.is_alive()


def test_max_concurrency_is_another_name_for_max_workers_gh11() -> None:
    with unirun.CoroutineExecutor(max_concurrency=3) as ex:
        assert ex._max_workers == 3
    with pytest.raises(TypeError, match="name the same limit"):
        unirun.CoroutineExecutor(max_workers=2, max_concurrency=3)


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


async def set_and_wait(entered: anyio.Event, release: anyio.Event) -> str:
    VAR.set("set by the first task")
    entered.set()
    await release.wait()
    return VAR.get()


async def read_var(entered: anyio.Event, release: anyio.Event) -> str:
    await entered.wait()
    try:
        return VAR.get()
    finally:
        release.set()


@pytest.mark.parametrize("attached", [False, True])
def test_each_task_has_its_own_context_as_in_asyncio_gh13(attached: bool) -> None:
    # A ContextVar a task sets is its own, as with asyncio.create_task.
    async def on_the_callers_loop() -> list[str]:
        entered, release = anyio.Event(), anyio.Event()
        async with unirun.CoroutineExecutor() as executor:
            first = executor.submit(set_and_wait, entered, release)
            second = executor.submit(read_var, entered, release)
            return [await first, await second]

    if attached:
        got = anyio.run(on_the_callers_loop)
    else:
        with unirun.CoroutineExecutor() as executor:

            async def events() -> tuple[anyio.Event, anyio.Event]:
                return anyio.Event(), anyio.Event()

            entered, release = executor.submit(events).result()
            first = executor.submit(set_and_wait, entered, release)
            second = executor.submit(read_var, entered, release)
            got = [first.result(), second.result()]
    assert got == ["set by the first task", "unset"]


@pytest.mark.anyio
async def test_cancel_futures_cancels_tasks_made_but_not_yet_run_gh12() -> None:
    # With a concurrency limit, a task made but not yet run (waiting for its
    # slot) is pending: shutdown(cancel_futures=True) cancels it, and it never runs.
    ran: list[int] = []
    started, release = anyio.Event(), anyio.Event()

    async def first() -> str:
        started.set()
        await release.wait()
        return "first"

    async def record(i: int) -> None:
        ran.append(i)

    async with unirun.CoroutineExecutor(max_workers=1) as executor:
        running = executor.submit(first)
        await started.wait()
        rest = [executor.submit(record, i) for i in range(3)]
        executor.shutdown(wait=False, cancel_futures=True)  # in the same turn
        release.set()
    assert await running == "first"
    assert [f.cancelled() for f in rest] == [True] * 3
    assert ran == []


def test_tasks_go_through_the_loops_task_factory() -> None:
    # As asyncio.create_task: a loop's task factory (tracing, instrumentation)
    # makes the task each job runs in.
    import asyncio

    class Traced(asyncio.Task):  # type: ignore[type-arg]
        pass

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        return Traced(coro, loop=loop, **kwargs)

    async def main() -> list[bool]:
        asyncio.get_running_loop().set_task_factory(factory)
        async with unirun.CoroutineExecutor() as executor:
            futures = [executor.submit(in_traced_task, Traced) for _ in range(3)]
            return [await future for future in futures]

    assert asyncio.run(main()) == [True] * 3


async def in_traced_task(kind: type) -> bool:
    import asyncio

    return isinstance(asyncio.current_task(), kind)


@pytest.mark.anyio
@pytest.mark.parametrize("ends_by", ["an item's error", "the map's time-out"])
async def test_a_map_that_fails_under_async_for_leaves_running_items_running(
    ends_by: str,
) -> None:
    # As with `for` (and the stdlib's map): only the items that have not started
    # are cancelled. Cancelling the awaiting coroutine is what stops them all.
    started, release = anyio.Event(), anyio.Event()
    finished: list[int] = []

    async def item(i: int) -> int:
        if i == 0:
            await started.wait()
            raise ValueError("the first item fails")
        started.set()
        await release.wait()
        finished.append(i)
        return i

    async with unirun.CoroutineExecutor() as ex:
        if ends_by == "an item's error":
            with pytest.raises(ValueError, match="first item"):
                async for _ in ex.map(item, [0, 1]):
                    pass
        else:
            with pytest.raises(TimeoutError):
                async for _ in ex.map(item, [1], timeout=0.05):
                    pass
        release.set()
    assert finished == [1]


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [None, 600])
@pytest.mark.parametrize("fn", [fail_with, async_fail_with])
async def test_a_failed_task_on_the_callers_loop_lets_go_of_its_arguments(
    fn: Any, timeout: float | None
) -> None:
    # The conformance test's promise, on the caller's loop: from 3.12 a failed
    # call's traceback holds every frame that awaited it (trio's too), and none
    # may hold the Future.
    async with unirun.CoroutineExecutor() as ex:
        gc.collect()
        gc.disable()
        try:
            payload = Payload()
            freed = weakref.ref(payload)
            future = ex.options(timeout=timeout).submit(fn, payload)
            del payload
            try:
                await future
            except ValueError:
                pass
            del future
            with anyio.move_on_after(10):
                while freed() is not None:
                    await anyio.sleep(0.01)
            assert freed() is None
        finally:
            gc.enable()


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["gather.cancel()", "shutdown(cancel_futures=True)"])
async def test_gathered_coroutines_cancelled_before_they_ran_are_closed(
    how: str,
) -> None:
    # As asyncio closes the coroutine of a task cancelled before it ran: no
    # "coroutine ... was never awaited" warning. Tasks start at the loop's next
    # turn, so none of these has begun when it is cancelled.
    async def leaf(x: int) -> int:
        await anyio.sleep(0)
        return x

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        async with unirun.CoroutineExecutor() as ex:
            coroutines = [leaf(1), leaf(2)]
            gathered = ex.gather(*coroutines)
            if how == "gather.cancel()":
                assert gathered.cancel()
            else:
                ex.shutdown(wait=False, cancel_futures=True)
            states = {inspect.getcoroutinestate(c) for c in coroutines}
            assert states == {"CORO_CLOSED"}
            del coroutines
            with pytest.raises(cf.CancelledError):
                await gathered
        gc.collect()
    assert [str(w.message) for w in seen] == []


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_plain_function_returning_a_coroutine_runs_on_either_library(
    backend: Literal["asyncio", "trio"],
) -> None:
    # Trio refused the worker thread's result ("Trio expected a sync function");
    # any other awaitable comes back as is, as on the thread backend.
    from _tasks import make_handle, start_square

    with unirun.CoroutineExecutor(backend=backend) as ex:
        assert ex.submit(start_square, 6).result(timeout=60) == 36
        assert type(ex.submit(make_handle, 6).result(timeout=60)).__name__ == "Handle"
