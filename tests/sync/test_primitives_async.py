"""The async side under asyncio and trio: no blocked loop, and clean cancellation.

Runs on both implementations: "thread" makes the in-process primitives (also
the coroutine backend's), "process" the ones shared with worker processes.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest
from anyio import wait_all_tasks_blocked
from anyio.lowlevel import checkpoint

import unirun
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


async def test_async_waiters_queue_in_order_without_a_thread_each(
    maker: BaseExecutor,
) -> None:
    # Each coroutine waiting on a process-shared lock used to block a thread of
    # its own: forty waiters were forty threads.
    lock = maker.Lock()
    lock.acquire()
    order: list[int] = []

    async def take(index: int) -> None:
        async with lock:
            order.append(index)

    before = threading.active_count()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for index in range(40):
                tg.start_soon(take, index)
                await _settle()  # in line before the next one comes
            assert threading.active_count() <= before + 1
            await anyio.to_thread.run_sync(lock.release)
    assert order == list(range(40))  # oldest first
    assert not lock.locked()


async def test_units_released_at_once_reach_every_waiter(maker: BaseExecutor) -> None:
    sem = maker.Semaphore(0)
    got: list[int] = []

    async def take(index: int) -> None:
        await sem.async_acquire()
        got.append(index)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for index in range(30):
                tg.start_soon(take, index)
            await _settle()
            await anyio.to_thread.run_sync(sem.release, 30)
    assert sorted(got) == list(range(30))
    assert not sem.acquire(blocking=False)  # every unit was taken once


@pytest.mark.parametrize("seed", range(6))
async def test_cancelled_waiters_among_others_lose_no_unit(
    maker: BaseExecutor, seed: int
) -> None:
    # Units released while some waiters are cancelled: each unit is either held
    # by a waiter that returned or back in the semaphore, never lost or doubled.
    rng = random.Random(seed)
    sem = maker.Semaphore(0)
    returned: list[int] = []
    scopes = [anyio.CancelScope() for _ in range(12)]

    async def take(index: int) -> None:
        with scopes[index]:
            await sem.async_acquire()
            returned.append(index)

    released = 0
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for index in range(12):
                tg.start_soon(take, index)
            await _settle()
            for index in rng.sample(range(12), 12):
                if rng.random() < 0.5:
                    scopes[index].cancel()
                else:
                    sem.release()
                    released += 1
                await checkpoint()
            for scope in scopes:
                scope.cancel()
    left = 0
    while sem.acquire(blocking=False):
        left += 1
    assert len(returned) + left == released
    assert len(set(returned)) == len(returned)


async def test_a_burst_of_items_reaches_every_async_getter_once(
    maker: BaseExecutor,
) -> None:
    q: Any = maker.Queue()
    got: list[int] = []

    async def get() -> None:
        got.append(await q.async_get())

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(get)
            await _settle()

            def put_all() -> None:
                for item in range(30):
                    q.put(item)

            await anyio.to_thread.run_sync(put_all)
    assert sorted(got) == list(range(30))
    assert q.empty()


async def test_async_event_waiters_share_a_thread_and_all_wake(
    maker: BaseExecutor,
) -> None:
    event = maker.Event()
    woken: list[bool] = []

    async def wait() -> None:
        woken.append(await event.async_wait())

    before = threading.active_count()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(wait)
            await _settle()
            assert threading.active_count() <= before + 1
            await anyio.to_thread.run_sync(event.set)
    assert woken == [True] * 30


@pytest.mark.parametrize("seed", range(6))
async def test_cancelled_getters_among_others_lose_no_item(
    maker: BaseExecutor, seed: int
) -> None:
    rng = random.Random(seed)
    q: Any = maker.Queue()
    got: list[int] = []
    scopes = [anyio.CancelScope() for _ in range(12)]

    async def get(index: int) -> None:
        with scopes[index]:
            got.append(await q.async_get())

    put = 0
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for index in range(12):
                tg.start_soon(get, index)
            await _settle()
            for index in rng.sample(range(12), 12):
                if rng.random() < 0.5:
                    scopes[index].cancel()
                else:
                    q.put(put)
                    put += 1
                await checkpoint()
            for scope in scopes:
                scope.cancel()
    left = []
    while not q.empty():
        left.append(q.get_nowait())
    assert sorted(got + left) == list(range(put))


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


async def test_shutdown_wakes_async_getters_and_putters(maker: BaseExecutor) -> None:
    """On every Python (3.13's queue.Queue.shutdown) and both implementations."""
    empty: Any = maker.Queue()
    full: Any = maker.Queue(maxsize=1)
    full.put("x")
    errors: list[BaseException] = []

    async def wait(call: Any) -> None:
        try:
            await call()
        except Exception as exc:
            errors.append(exc)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait, empty.async_get)
            tg.start_soon(wait, lambda: full.async_put("y"))
            await _settle()
            empty.shutdown()
            full.shutdown()
    assert [type(e) for e in errors] == [unirun.QueueShutDown] * 2
    assert full.get_nowait() == "x"  # shut down, not emptied


# -- RLock, Condition, Barrier -------------------------------------------------------


async def test_rlock_belongs_to_the_task_not_the_loop_thread(
    maker: BaseExecutor,
) -> None:
    lock = maker.RLock()
    order: list[str] = []
    release = anyio.Event()

    async def first() -> None:
        async with lock, lock:  # reentrant for its owner task
            assert lock.acquire()  # the sync face sees the same owner
            lock.release()
            order.append("first in")
            await release.wait()
        order.append("first out")

    async def second() -> None:
        async with lock:
            order.append("second in")

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await _settle()
            tg.start_soon(second)
            await _settle()
            assert order == ["first in"]  # same thread, other task: it waits
            release.set()
    assert order == ["first in", "first out", "second in"]
    assert not lock.locked()


async def test_cancelled_condition_wait_takes_the_lock_back_and_passes_on(
    maker: BaseExecutor,
) -> None:
    lock = maker.RLock()
    cond = maker.Condition(lock)
    woken: list[str] = []

    async def waiter(name: str) -> None:
        async with cond:
            await cond.async_wait()
            woken.append(name)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as outer:
            async with anyio.create_task_group() as first:
                first.start_soon(waiter, "first")
                await _settle()
                outer.start_soon(waiter, "second")
                await _settle()
                async with cond:
                    cond.notify()  # meant for the first, which is cancelled now
                first.cancel_scope.cancel()
            if woken == ["first"]:  # it took the notification before the cancel
                async with cond:
                    cond.notify()
    # Either the first used it, or it went on to the second: it was never lost.
    assert woken in (["first", "second"], ["second"])
    assert not lock.locked()  # the cancelled waiter took it back, then let go


async def test_async_barrier_wait_cancelled_leaves_it_whole(
    maker: BaseExecutor,
) -> None:
    barrier = maker.Barrier(2)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(barrier.async_wait)
            await _settle()
            assert barrier.n_waiting == 1
            tg.cancel_scope.cancel()
    assert barrier.n_waiting == 0
    assert not barrier.broken
    results: list[int] = []

    async def party() -> None:
        results.append(await barrier.async_wait())

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(party)
            tg.start_soon(party)
    assert sorted(results) == [0, 1]


async def test_async_wait_leaves_the_loop_free_while_a_party_runs_the_action(
    maker: BaseExecutor,
) -> None:
    # The action runs with the barrier's lock held: the shared barrier's
    # async_wait took that lock with a blocking call on the loop's thread.
    import functools

    import _primitive_tasks as tasks

    started, release, done = maker.Event(), maker.Event(), maker.Event()
    action = functools.partial(tasks.slow_action, started, release, done)
    barrier: Any = maker.Barrier(2, action=action)
    parties = [threading.Thread(target=barrier.wait, args=(60,)) for _ in range(2)]
    for party in parties:
        party.start()
    try:
        assert await anyio.to_thread.run_sync(started.wait, 60)
        async with anyio.create_task_group() as tg:
            tg.start_soon(barrier.async_wait)  # a party of the next cycle
            for _ in range(5):
                await checkpoint()  # the loop runs on meanwhile
            assert not done.is_set()
            tg.cancel_scope.cancel()
    finally:
        release.set()
        for party in parties:
            await anyio.to_thread.run_sync(party.join, 60)
