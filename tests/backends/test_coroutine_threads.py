"""Plain functions on the coroutine backend wait for a worker thread as queued
tasks, as on the thread backend: not running, cancellable, their time-out not
yet counting, and cancelled by ``shutdown(cancel_futures=True)``."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import unirun

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The worker threads that plain functions share on the coroutine backend
#: (anyio's default), and the size of the thread executor it is set against.
THREADS = 40

KINDS = ["thread", "coroutine-asyncio", "coroutine-trio"]


def make(kind: str) -> unirun.Executor:
    if kind == "thread":
        return unirun.ThreadExecutor(THREADS)
    backend = kind.removeprefix("coroutine-")
    return unirun.CoroutineExecutor(backend=backend)  # type: ignore[arg-type]  # parametrised literal


class Threads:
    """``THREADS`` calls that hold every worker thread until :meth:`release`."""

    def __init__(self, ex: unirun.Executor) -> None:
        self._taken = threading.Semaphore(0)
        self._release = threading.Event()
        self.futures = [ex.submit(self._hold) for _ in range(THREADS)]
        for _ in range(THREADS):
            assert self._taken.acquire(timeout=60), "a worker thread never came"

    def _hold(self) -> str:
        self._taken.release()
        assert self._release.wait(timeout=60)
        return "held"

    def release(self) -> None:
        self._release.set()


async def _turn() -> None:
    await anyio.sleep(0)


def settle(ex: unirun.Executor) -> None:
    """Let a coroutine executor's loop take every call submitted so far.

    Its tasks start in order: once a task submitted after them has passed a
    turn of the loop, each has run up to its wait for a worker thread. (On
    the thread backend they stay in the queue, and there is nothing to wait
    for.)
    """
    if isinstance(ex, unirun.CoroutineExecutor):
        ex.submit(_turn).result(timeout=60)


@pytest.fixture(params=KINDS)
def held(request: pytest.FixtureRequest) -> Iterator[tuple[unirun.Executor, Threads]]:
    ex = make(request.param)
    threads = Threads(ex)
    try:
        yield ex, threads
    finally:
        threads.release()
        ex.shutdown(wait=True)


def test_a_call_waiting_for_a_thread_is_queued_and_cancellable(
    held: tuple[unirun.Executor, Threads],
) -> None:
    ex, threads = held
    ran: list[int] = []
    waiting = [ex.submit(ran.append, i) for i in range(5)]
    settle(ex)
    assert not any(future.running() for future in waiting)
    stats = ex.statistics()
    assert (stats.running, stats.queued) == (THREADS, 5)  # the marker ended
    assert waiting[0].cancel()
    assert waiting[0].cancelled()
    threads.release()
    assert [future.result(timeout=60) for future in threads.futures] == [
        "held"
    ] * THREADS
    for future in waiting[1:]:
        assert future.result(timeout=60) is None
    assert sorted(ran) == [1, 2, 3, 4]


def test_shutdown_cancel_futures_cancels_the_calls_waiting_for_a_thread(
    held: tuple[unirun.Executor, Threads],
) -> None:
    ex, threads = held
    ran: list[int] = []
    waiting = [ex.submit(ran.append, i) for i in range(20)]
    settle(ex)
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(future.cancelled() for future in waiting)
    threads.release()
    ex.shutdown(wait=True)
    assert [future.result(timeout=0) for future in threads.futures] == [
        "held"
    ] * THREADS
    assert ran == []
    stats = ex.statistics()
    marker = isinstance(ex, unirun.CoroutineExecutor)
    assert (stats.done, stats.cancelled, stats.running, stats.queued) == (
        THREADS + marker,
        20,
        0,
        0,
    )


def test_a_time_out_counts_from_when_a_thread_takes_the_call(
    held: tuple[unirun.Executor, Threads],
) -> None:
    ex, threads = held
    timed = ex.options(timeout=0.2)
    quick = timed.submit(str, "ran")
    never = threading.Event()
    stuck = timed.submit(never.wait, 60)
    # They cannot start while every thread is held, so cannot time out either.
    waiting: list[cf.Future[Any]] = [quick, stuck]
    finished, _ = cf.wait(waiting, timeout=1.0)
    assert not finished
    threads.release()
    assert quick.result(timeout=60) == "ran"
    with pytest.raises(unirun.TaskTimeoutError):
        stuck.result(timeout=60)  # once it runs, its time-out counts
    never.set()


async def _turn_async() -> None:
    await anyio.sleep(0)


@pytest.mark.anyio
async def test_calls_a_failed_async_with_drops_end_cancelled_for_wait() -> None:
    # The body fails while calls wait for a thread: they never run. They must
    # end cancelled in every waiter's eyes, concurrent.futures.wait() included
    # (it hung on one that had not started and was never notified).
    ex = unirun.CoroutineExecutor()
    release, taken = threading.Event(), threading.Semaphore(0)

    def hold() -> bool:
        taken.release()
        return release.wait(60)

    def all_taken() -> bool:
        return all(taken.acquire(timeout=60) for _ in range(THREADS))

    futures: dict[str, Any] = {}

    async def body() -> None:
        async with ex:
            futures["holders"] = [ex.submit(hold) for _ in range(THREADS)]
            own = anyio.CapacityLimiter(1)  # not the threads the holders take
            assert await anyio.to_thread.run_sync(all_taken, limiter=own)
            dropped = futures["dropped"] = ex.submit(str, "never")
            cancelled_first = futures["cancelled first"] = ex.submit(str, "never")
            await ex.submit(_turn_async)  # both wait for a thread now
            assert cancelled_first.cancel()
            # The holders end once the teardown reached the dropped call.
            dropped.add_done_callback(lambda _: release.set())
            raise RuntimeError("the body fails")

    with pytest.raises(RuntimeError, match="the body fails"):
        await body()
    holders = futures.pop("holders")
    _, not_done = await anyio.to_thread.run_sync(cf.wait, list(futures.values()), 60)
    assert not not_done
    assert [future.cancelled() for future in futures.values()] == [True, True]
    # Running, they ran on: a thread cannot be cancelled (as cancel() says),
    # and each Future has what its call returned.
    assert [holder.result(timeout=0) for holder in holders] == [True] * THREADS


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("fn", [str, _turn_async])
def test_a_close_that_cancels_reaches_the_calls_the_loop_is_starting(
    backend: str, fn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loop takes the calls out of its inbox, then starts them one by one:
    # a close in between saw none of them, and they ran after it returned.
    ex = unirun.CoroutineExecutor(backend=backend)  # type: ignore[arg-type]  # parametrised literal
    ex.submit(_turn_async).result(timeout=60)  # the loop runs
    runner = ex._runner
    spawn = runner._spawn
    closes: list[threading.Thread] = []

    def close_then_spawn(job: Any) -> None:
        if not closes:  # the first call the loop starts: close meanwhile
            closes.append(
                threading.Thread(
                    target=ex.shutdown, kwargs={"wait": False, "cancel_futures": True}
                )
            )
            closes[0].start()
            closes[0].join(60)
        spawn(job)

    monkeypatch.setattr(runner, "_spawn", close_then_spawn)
    futures = [ex.submit(fn, "x") for _ in range(20)]
    ex.shutdown(wait=True)
    assert closes, "the loop started no call"
    assert [future.cancelled() for future in futures] == [True] * 20
    assert ex.statistics().cancelled == 20


@pytest.mark.parametrize("kind", ["thread", "coroutine-asyncio"])
def test_shutdown_wait_joins_the_threads_that_ran_plain_functions(kind: str) -> None:
    # As ThreadPoolExecutor joins its threads; asyncio's own loop tells anyio's
    # worker threads to end as it ends, and used to return before they had.
    # Many executors: one that ends in time by chance proves nothing.
    for _ in range(20):
        ex = make(kind)
        worker = ex.submit(threading.current_thread).result(timeout=60)
        assert worker is not threading.current_thread()
        ex.shutdown(wait=True)
        assert not worker.is_alive()


def test_a_worker_thread_that_is_never_told_to_end_is_left_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from unirun._backends._job import AbandonedCalls

    release = threading.Event()
    stuck = threading.Thread(target=release.wait, name="never told")
    stuck.start()
    calls = AbandonedCalls()
    calls.threads.add(stuck)
    try:
        with caplog.at_level("WARNING", logger="unirun"):
            calls.join_threads(patience=0.05)
        assert stuck.is_alive()
        assert "never told" in caplog.text
    finally:
        release.set()
        stuck.join()


class HeldInThread:
    """A plain function that runs in a worker thread until the teardown under
    test cancels a coroutine of the same block (whose end lets it go)."""

    def __init__(self) -> None:
        self.taken, self.release = threading.Event(), threading.Event()

    def __call__(self) -> str:
        self.taken.set()
        assert self.release.wait(60)
        return "returned"

    def released_by(self, future: unirun.Future[Any]) -> None:
        future.add_done_callback(lambda _: self.release.set())


@pytest.mark.anyio
@pytest.mark.parametrize("leave", ["error", "cancel"])
async def test_a_running_function_outlives_the_block_with_its_result(
    leave: str,
) -> None:
    # Leaving `async with` marked it cancelled and dropped what it returned
    # (a thread cannot be cancelled: cancel() said so); cancelled, the block
    # did not even wait for it.
    held = HeldInThread()
    with anyio.CancelScope() as scope:
        try:
            async with unirun.CoroutineExecutor() as ex:
                running = ex.submit(held)
                held.released_by(ex.submit(anyio.sleep_forever))
                assert await anyio.to_thread.run_sync(held.taken.wait, 60)
                if leave == "error":
                    raise RuntimeError("the body fails")
                scope.cancel()
                await anyio.sleep_forever()
        except RuntimeError:
            pass
    assert running.result(timeout=0) == "returned"


@pytest.mark.anyio
async def test_a_running_function_keeps_its_future_when_its_awaiter_leaves() -> None:
    # The awaiter's cancellation marked it cancelled at once; it ran on, and
    # what it returned was lost. As on threads: the Future waits for it.
    held = HeldInThread()
    async with unirun.CoroutineExecutor() as ex:
        running = ex.submit(held)
        assert await anyio.to_thread.run_sync(held.taken.wait, 60)
        with anyio.CancelScope() as scope:
            scope.cancel()
            await running  # cancelled at once, as its awaiter
        assert running.running()
        held.release.set()
        assert await running == "returned"


def test_a_call_that_ended_as_its_job_stopped_waiting_hands_over_none_too() -> None:
    # Ended (returning None) just as its job's task was torn down, so the job
    # never got what it returned: abandon() gives it, None being an outcome,
    # not "not ended" (its Future would have stayed running for good).
    from unirun._backends._job import NOT_ENDED, AbandonedCalls, Job

    def thread_call() -> tuple[unirun.Future[None], Any]:
        future: unirun.Future[None] = unirun.Future()
        job = Job(future, print, (), {}, None, is_async=False)
        return future, AbandonedCalls().wrap(lambda: None, job, None)

    _, queued = thread_call()
    assert queued.abandon() is NOT_ENDED  # no thread took it: it never runs
    future, ran = thread_call()
    assert ran() is None  # a worker thread ran it
    assert future.running()
    assert ran.abandon() is None  # its outcome
