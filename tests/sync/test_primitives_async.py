"""The async side under asyncio and trio: no blocked loop, and clean cancellation.

Runs on both implementations: "thread" makes the in-process primitives (also
the coroutine backend's), "process" the ones shared with worker processes.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest
from anyio import wait_all_tasks_blocked
from anyio.lowlevel import checkpoint

from conftest import make_executor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from unirun._base import BaseExecutor

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["thread", "process"])
def maker(request: pytest.FixtureRequest) -> Iterator[BaseExecutor]:
    """An executor used only to make primitives of each implementation."""
    ex = make_executor(str(request.param))
    try:
        yield ex
    finally:
        ex.shutdown()


async def _settle() -> None:
    """Let waiters reach their wait (threads included), then let the loop run."""
    await wait_all_tasks_blocked()
    for _ in range(5):
        await checkpoint()


async def test_async_methods_round_trip(maker: BaseExecutor) -> None:
    q: Any = maker.Queue(maxsize=1)
    received: list[int] = []

    async def consume() -> None:
        for _ in range(20):
            received.append(await q.async_get())
            q.task_done()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        for i in range(20):
            await q.async_put(i)
        with anyio.fail_after(30):
            await q.async_join()
    assert received == list(range(20))


async def test_waiting_does_not_block_the_loop(maker: BaseExecutor) -> None:
    """While a coroutine waits on each primitive, the loop keeps running others."""
    lock = maker.Lock()
    lock.acquire()
    q = maker.Queue()
    event = maker.Event()
    sem = maker.Semaphore(0)
    ticks = 0
    async with anyio.create_task_group() as tg:
        tg.start_soon(lock.async_acquire)
        tg.start_soon(q.async_get)
        tg.start_soon(event.async_wait)
        tg.start_soon(sem.async_acquire)
        for _ in range(10):
            await anyio.sleep(0.001)
            ticks += 1

        # Release them from another thread, as a worker would.
        def release_all() -> None:
            lock.release()
            q.put("x")
            event.set()
            sem.release()

        await anyio.to_thread.run_sync(release_all)
    assert ticks == 10
    assert lock.locked()  # taken by the waiter, which kept it
    assert q.empty()


async def test_cancelled_get_loses_no_item(maker: BaseExecutor) -> None:
    q: Any = maker.Queue()
    async with anyio.create_task_group() as tg:
        tg.start_soon(q.async_get)
        await _settle()
        tg.cancel_scope.cancel()
    q.put("kept")
    assert q.get_nowait() == "kept"


async def test_put_racing_a_cancelled_get_delivers_exactly_once(
    maker: BaseExecutor,
) -> None:
    q: Any = maker.Queue()
    got: list[object] = []

    async def get() -> None:
        got.append(await q.async_get())

    for round_ in range(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(get)
            await _settle()
            q.put(round_)
            tg.cancel_scope.cancel()
        left = [q.get_nowait()] if not q.empty() else []
        assert got + left == [round_]
        got.clear()


async def test_wake_passed_on_when_woken_waiter_is_cancelled(
    maker: BaseExecutor,
) -> None:
    """Two getters wait; one item arrives as the first is cancelled: the second
    gets it instead of sleeping forever."""
    q: Any = maker.Queue()
    got_first: list[object] = []
    got_second: list[object] = []

    async def get(into: list[object]) -> None:
        into.append(await q.async_get())

    with anyio.fail_after(30):
        async with anyio.create_task_group() as outer:
            async with anyio.create_task_group() as first:
                first.start_soon(get, got_first)
                await _settle()
                outer.start_soon(get, got_second)
                await _settle()
                q.put("item")
                first.cancel_scope.cancel()
            if got_first:  # the first getter took it before the cancellation
                q.put("other")
    assert got_first + got_second in (["item"], ["item", "other"])
    assert got_second == (["other"] if got_first else ["item"])
    assert q.empty()


async def test_cancelled_acquire_does_not_keep_the_lock(maker: BaseExecutor) -> None:
    lock = maker.Lock()
    for round_ in range(20):
        lock.acquire()
        taken: list[bool] = []

        async def acquire(taken: list[bool] = taken) -> None:
            taken.append(await lock.async_acquire())

        async with anyio.create_task_group() as tg:
            tg.start_soon(acquire)
            await _settle()
            if round_ % 2:
                lock.release()  # races the cancellation below
            tg.cancel_scope.cancel()
        if not round_ % 2:
            assert lock.locked()
            lock.release()
        # Either the waiter took the lock (and holds it) or nobody does.
        assert lock.locked() == bool(taken)
        if taken:
            lock.release()
        assert not lock.locked()


async def test_cancelled_semaphore_acquire_takes_nothing(maker: BaseExecutor) -> None:
    sem = maker.BoundedSemaphore(1)
    sem.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sem.async_acquire)
        await _settle()
        tg.cancel_scope.cancel()
    sem.release()
    assert sem.acquire(blocking=False)
    assert not sem.acquire(blocking=False)
    sem.release()


async def test_cancelled_put_adds_nothing(maker: BaseExecutor) -> None:
    q: Any = maker.Queue(maxsize=1)
    q.put("first")
    async with anyio.create_task_group() as tg:
        tg.start_soon(q.async_put, "second")
        await _settle()
        tg.cancel_scope.cancel()
    assert q.get_nowait() == "first"
    assert q.empty()


async def test_async_with_lock_and_semaphore(maker: BaseExecutor) -> None:
    lock = maker.Lock()
    sem = maker.Semaphore(2)
    inside = most = 0

    async def worker() -> None:
        nonlocal inside, most
        async with sem:
            inside += 1
            most = max(most, inside)
            await anyio.sleep(0.001)
            inside -= 1
        async with lock:
            assert lock.locked()

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(worker)
    assert most == 2
    assert not lock.locked()


async def test_event_wait_from_loop_set_from_thread(maker: BaseExecutor) -> None:
    event = maker.Event()
    started = threading.Event()

    def set_later() -> None:
        started.wait()
        event.set()

    thread = threading.Thread(target=set_later)
    thread.start()
    try:
        with anyio.fail_after(30):
            started.set()
            assert await event.async_wait() is True
    finally:
        thread.join()


@pytest.mark.parametrize("which", ["queue", "lock", "semaphore", "event"])
async def test_cancelled_before_the_wait_starts(
    maker: BaseExecutor, which: str
) -> None:
    """Regression: a wait cancelled before its thread started used to hang."""
    q: Any = maker.Queue()
    lock = maker.Lock()
    lock.acquire()
    sem = maker.Semaphore(0)
    event = maker.Event()
    wait = {
        "queue": q.async_get,
        "lock": lock.async_acquire,
        "semaphore": sem.async_acquire,
        "event": event.async_wait,
    }[which]
    with anyio.fail_after(20):
        with anyio.CancelScope() as scope:
            scope.cancel()
            await wait()
    assert scope.cancelled_caught
    assert lock.locked()
    assert not sem.acquire(blocking=False)


async def test_async_wait_sees_a_set_then_clear_pulse(maker: BaseExecutor) -> None:
    """As threading.Event.wait: a set() while waiting counts even if cleared."""
    event = maker.Event()
    result: list[bool] = []

    async def wait() -> None:
        result.append(await event.async_wait())

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await _settle()

            def pulse() -> None:
                event.set()
                event.clear()

            await anyio.to_thread.run_sync(pulse)
    assert result == [True]
    assert not event.is_set()


@pytest.mark.skipif(sys.version_info < (3, 13), reason="queue.Queue.shutdown is 3.13+")
async def test_shutdown_wakes_async_getters() -> None:
    ex = make_executor("thread")
    try:
        q: Any = ex.Queue()
        errors: list[BaseException] = []

        async def get() -> None:
            try:
                await q.async_get()
            except Exception as exc:
                errors.append(exc)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(get)
                await _settle()
                q.shutdown()
        assert [type(e).__name__ for e in errors] == ["ShutDown"]
    finally:
        ex.shutdown()
