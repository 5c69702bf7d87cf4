"""The Dask backend's primitives: what they promise beyond the shared conformance.

The primitive conformance suite (tests/sync) already runs on "dask". Here: the
stateful comparison with the stdlib, the async side's cancellation guarantees,
release from any process, tasks that wait without starving the cluster, who
owns an RLock, a condition's line, a dict's keys across processes, and what
outlives a worker that died.
"""

from __future__ import annotations

import importlib.util
import pickle
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import cloudpickle
import pytest
from anyio import wait_all_tasks_blocked
from anyio.lowlevel import checkpoint
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

import _primitive_tasks as tasks
import unirun
from conftest import HAS_DASK, dask_session
from unirun._sync.messages import MESSAGES

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

pytestmark = pytest.mark.skipif(not HAS_DASK, reason="needs unirun[dask]")

# The workers of the session's cluster cannot import this module: its own task
# functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


SETTINGS = settings(max_examples=10, stateful_step_count=20, deadline=None)


@pytest.fixture
def ex() -> Iterator[unirun.DaskExecutor]:
    """An executor on the session's cluster with room for six tasks."""
    executor = unirun.DaskExecutor(max_workers=6, client=dask_session().client)
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _stateful() -> ModuleType:
    """The stdlib-model state machines of tests/sync/test_stateful.py."""
    module = sys.modules.get("test_stateful")
    if module is None:
        path = Path(__file__).parent.parent / "sync" / "test_stateful.py"
        if str(path.parent) not in sys.path:  # its helpers, as pytest would add
            sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location("test_stateful", path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["test_stateful"] = module
        spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "machine",
    [
        "QueueMachine",
        "BoundedQueueMachine",
        "LockMachine",
        "SemaphoreMachine",
        "BoundedSemaphoreMachine",
        "EventMachine",
    ],
)
def test_matches_stdlib_step_by_step(ex: unirun.DaskExecutor, machine: str) -> None:
    stateful = _stateful()
    # Fewer steps than on the local primitives: each is a round trip to the
    # scheduler.
    bound = type(machine, (getattr(stateful, machine),), {"executor": ex})
    run_state_machine_as_test(bound, settings=SETTINGS)


def test_any_process_may_release_the_lock(ex: unirun.DaskExecutor) -> None:
    # Unlike distributed.Lock, whose lease only its holder can give back.
    lock = ex.Lock()
    assert ex.submit(_acquire, lock).result(60) is True
    assert lock.locked()
    lock.release()
    assert not lock.locked()
    assert lock.acquire()
    assert ex.submit(_release, lock).result(60) is None
    assert not lock.locked()


def _acquire(lock: unirun.Lock) -> bool:
    return lock.acquire()


def _release(lock: unirun.Lock) -> None:
    lock.release()


def test_waiting_tasks_leave_their_threads_to_others(ex: unirun.DaskExecutor) -> None:
    """Four consumers block on a queue of a cluster with two threads; the
    producer still gets a thread, because a waiting task gives its own up."""
    q = ex.Queue()
    consumers = [ex.submit(tasks.get_one, q) for _ in range(4)]
    producer = ex.submit(_put_all, q, [1, 2, 3, 4])
    assert producer.result(60) is None
    assert sorted(f.result(60) for f in consumers) == [1, 2, 3, 4]


def _put_all(q: unirun.Queue[Any], items: list[Any]) -> None:
    for item in items:
        q.put(item)


def test_primitive_outside_its_cluster_fails_clearly(ex: unirun.DaskExecutor) -> None:
    payload = pickle.dumps(ex.Queue())
    code = (
        "import pickle, sys\n"
        "q = pickle.loads(sys.stdin.buffer.read())\n"
        "try:\n    q.put(1)\n"
        "except RuntimeError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=payload, capture_output=True, check=False
    )
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert b"lives on a Dask cluster" in out.stdout


def test_items_of_every_kind_travel(ex: unirun.DaskExecutor) -> None:
    q = ex.Queue()
    inner = ex.Event()
    items: list[Any] = [None, b"\x00" * 300_000, {"a": (1, 2)}, inner]
    for item in items:
        q.put(item)
    got = [ex.submit(tasks.get_one, q).result(60) for _ in items]
    assert got[:3] == items[:3]
    got[3].set()  # the event came through the queue and is the same event
    assert inner.is_set()


# -- the async side -------------------------------------------------------------------


async def _settle() -> None:
    await wait_all_tasks_blocked()
    for _ in range(5):
        await checkpoint()


@pytest.mark.anyio
async def test_cancelled_async_get_loses_no_item(ex: unirun.DaskExecutor) -> None:
    q: Any = ex.Queue()
    got: list[object] = []

    async def get() -> None:
        got.append(await q.async_get())

    for round_ in range(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(get)
            await _settle()
            q.put(round_)
            tg.cancel_scope.cancel()
        left = [q.get_nowait()] if not q.empty() else []
        assert got + left == [round_]
        got.clear()


@pytest.mark.anyio
async def test_cancelled_async_acquire_takes_nothing(ex: unirun.DaskExecutor) -> None:
    lock = ex.Lock()
    sem = ex.BoundedSemaphore(1)
    lock.acquire()
    sem.acquire()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lock.async_acquire)
        tg.start_soon(sem.async_acquire)
        await _settle()
        tg.cancel_scope.cancel()
    lock.release()
    sem.release()
    assert lock.acquire(blocking=False)
    assert sem.acquire(blocking=False)
    assert not sem.acquire(blocking=False)


@pytest.mark.anyio
async def test_async_wait_sees_a_set_then_clear_pulse(ex: unirun.DaskExecutor) -> None:
    event = ex.Event()
    result: list[bool] = []

    async def wait() -> None:
        result.append(await event.async_wait())

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await _settle()

            def pulse() -> None:
                event.set()
                event.clear()

            await anyio.to_thread.run_sync(pulse)
    assert result == [True]
    assert not event.is_set()


@pytest.mark.anyio
async def test_async_waits_do_not_block_the_loop(ex: unirun.DaskExecutor) -> None:
    q: Any = ex.Queue()
    event = ex.Event()
    ticks = 0
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(q.async_get)
            tg.start_soon(event.async_wait)
            for _ in range(10):
                await anyio.sleep(0.001)
                ticks += 1
            done = threading.Event()

            def release() -> None:
                q.put("x")
                event.set()
                done.set()

            await anyio.to_thread.run_sync(release)
    assert ticks == 10
    assert done.is_set()
    assert q.empty()


# -- RLock, Condition, Dict: what only a cluster can break ---------------------------


def test_rlock_belongs_to_whoever_took_it(ex: unirun.DaskExecutor) -> None:
    rlock = ex.RLock()
    assert rlock.acquire()
    assert rlock.acquire()  # again: the caller owns it
    # A task, in another process, neither owns nor gets it.
    assert ex.submit(_try_rlock, rlock).result(60) == ("not owner", False)
    rlock.release()
    rlock.release()
    with pytest.raises(RuntimeError, match=re.escape(MESSAGES["unowned"])):
        rlock.release()
    assert ex.submit(_hold_rlock_twice, rlock).result(60) == 2
    assert not rlock.locked()


def _try_rlock(rlock: unirun.RLock) -> tuple[str, bool]:
    try:
        rlock.release()
    except RuntimeError:
        released = "not owner"
    else:
        released = "released"
    return released, rlock.acquire(timeout=0.05)


def _hold_rlock_twice(rlock: unirun.RLock) -> int:
    with rlock, rlock:
        depth = rlock._recursion_count()
    return depth


def test_notify_skips_a_waiter_that_timed_out(ex: unirun.DaskExecutor) -> None:
    """The waiter that gave up left the line: notify(1) wakes the task."""
    cond = ex.Condition()
    ready, woken = ex.Queue(), ex.Queue()
    with cond:
        assert cond.wait(0.01) is False  # joins the line, times out, leaves
    waiter = ex.submit(tasks.wait_notified, cond, ready, woken)
    assert ready.get(timeout=60) == "waiting"
    with cond:  # taken once the task's wait released it: the task is in line
        cond.notify(1)
    assert woken.get(timeout=60) is True
    assert waiter.result(60) is True


def test_dict_keys_compare_as_in_a_dict_across_processes(
    ex: unirun.DaskExecutor,
) -> None:
    d: unirun.Dict[Any, Any] = ex.Dict()
    d[1] = "caller"
    ex.submit(_set_item, d, 1.0, "task").result(60)
    ex.submit(_set_item, d, True, "other task").result(60)
    assert d.copy() == {1: "other task"}
    assert type(next(iter(d))) is int  # the first key stays, as in a dict


def _set_item(d: unirun.Dict[Any, Any], key: object, value: object) -> None:
    d[key] = value


def test_dict_and_queue_outlive_a_worker_that_died(tmp_path: Path) -> None:
    # An embedded cluster of its own: the session's stays whole.
    with unirun.DaskExecutor(max_workers=2) as own:
        d: unirun.Dict[str, int] = own.Dict()
        q = own.Queue()
        lock = own.Lock()
        marker = tmp_path / "died-once"
        assert own.submit(_write_then_die_once, d, q, lock, str(marker)).result(120)
        assert d.copy() == {"first try": 1, "second try": 2}
        assert [q.get(timeout=60), q.get(timeout=60)] == [1, 2]
        # The lock taken by the task that died stays taken: nothing expires.
        assert lock.acquire(timeout=0.05) is False
        lock.release()  # any process may release it
        d["after"] = 3
        assert own.submit(dict, d.items()).result(60)["after"] == 3


def _write_then_die_once(
    d: unirun.Dict[str, int], q: unirun.Queue[int], lock: unirun.Lock, marker: str
) -> bool:
    import os

    if not os.path.exists(marker):
        d["first try"] = 1
        q.put(1)
        lock.acquire()
        with open(marker, "w"):
            pass
        os._exit(5)
    d["second try"] = 2
    q.put(2)
    return True


def test_barrier_parties_outnumber_the_clusters_threads(
    ex: unirun.DaskExecutor,
) -> None:
    """Five parties on a cluster of two threads: each waiting party gives its
    thread up, so the others get one and the barrier opens."""
    barrier = ex.Barrier(5)
    parties = [ex.submit(tasks.wait_at, barrier) for _ in range(4)]
    mine = barrier.wait(timeout=60)
    assert sorted([mine, *(f.result(60) for f in parties)]) == [0, 1, 2, 3, 4]


class _LateTokens:
    """Tokens in which ``arrive`` lands just after the first look found none:
    a producer's last put and its shutdown, racing a getter that was waiting."""

    def __init__(self, arrive: list[Any], then: list[Any] | None = None) -> None:
        self.held: list[Any] = []
        self.arrive, self.then = arrive, then

    def take_now(self) -> Any:
        from unirun._sync.waiting import NOT_YET

        if self.held:
            return self.held.pop(0)
        self.held += self.arrive
        if self.then is not None:
            self.then.append(1)  # the shutdown's token
        self.arrive = []
        return NOT_YET

    def take(self, timeout: float | None) -> Any:
        if not self.held:
            raise TimeoutError
        return self.held.pop(0)

    def give(self, value: Any, timeout: float | None = None) -> None:
        self.held.append(value)

    def count(self) -> int:
        return len(self.held)


def _racing_queue() -> Any:
    """A DaskQueue whose last item and shutdown arrive as a get looks."""
    from unirun._backends._dask.queues import DaskQueue

    shut = _LateTokens([])
    q: Any = DaskQueue.__new__(DaskQueue)
    q.maxsize, q._slots = 0, None
    q._items = _LateTokens([pickle.dumps("last")], shut.held)
    q._unfinished, q._shut = _LateTokens([]), shut
    q._unfinished.held.append(1)
    return q


def test_get_racing_a_shutdown_still_gets_the_last_item() -> None:
    q = _racing_queue()
    assert q.get(timeout=5) == "last"
    with pytest.raises(unirun.QueueShutDown):
        q.get(timeout=5)


@pytest.mark.anyio
async def test_async_get_racing_a_shutdown_still_gets_the_last_item() -> None:
    q = _racing_queue()
    assert await q.async_get() == "last"
    with pytest.raises(unirun.QueueShutDown):
        await q.async_get()


def test_barrier_state_read_without_the_lock_leaves_the_holders_alone(
    ex: unirun.DaskExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``n_waiting`` read from another thread while a party, holding the
    barrier's lock, writes the state through to the scheduler: the reader sees
    the state before or after, and the party goes on from its own."""
    from unirun._backends._dask import barriers, ledger

    barrier = ex.Barrier(1)
    real_call = ledger.call
    party = threading.current_thread()
    seen: list[int] = []

    def call_with_a_reader(address: str, op: str, **kwargs: Any) -> Any:
        if op == "cell_set" and threading.current_thread() is party and not seen:
            # The party has its new count and is about to write it: a reader
            # in another thread looks at the barrier right then.
            reader = threading.Thread(target=lambda: seen.append(barrier.n_waiting))
            reader.start()
            reader.join()
        return real_call(address, op, **kwargs)

    monkeypatch.setattr(barriers, "call", call_with_a_reader)
    assert barrier.wait(timeout=30) == 0
    assert seen == [0]  # the cell before the write: filling, nobody inside
    # Left filling and empty, not draining for ever with a count of -1.
    assert barrier.wait(timeout=30) == 0
    assert barrier.n_waiting == 0
    assert not barrier.broken


class _ShutAfterFirstLook:
    """A shut-down flag that a shutdown sets just after put's first look."""

    def __init__(self) -> None:
        self.looks = 0

    def count(self) -> int:
        self.looks += 1
        return int(self.looks > 1)


def test_a_put_that_gets_a_slot_at_once_after_a_shutdown_raises() -> None:
    # An immediate shutdown drained the queue (freeing its slots) between the
    # put's first look and its take of a slot: the put takes one at once, and
    # must still see the shutdown, not add an item to the emptied queue.
    from unirun._backends._dask.queues import DaskQueue

    q: Any = DaskQueue.__new__(DaskQueue)
    q.maxsize = 1
    q._items, q._unfinished, q._slots = (
        _LateTokens([]),
        _LateTokens([]),
        _LateTokens([]),
    )
    q._slots.held.append(1)  # a free slot
    q._shut = _ShutAfterFirstLook()
    with pytest.raises(unirun.QueueShutDown):
        q.put("late")
    assert q._items.held == []
    assert q._slots.held == [1]  # given back


class _ItemsLandingLate(_LateTokens):
    """Items whose next put lands on the scheduler only after ``before_landing``
    ran: an immediate shutdown, drain and all, between a put's first look and
    its item's arrival."""

    def __init__(self, before_landing: Callable[[], None]) -> None:
        super().__init__([])
        self.before_landing: Callable[[], None] | None = before_landing

    def give(self, value: Any, timeout: float | None = None) -> None:
        before, self.before_landing = self.before_landing, None
        if before is not None:
            before()
        super().give(value, timeout)


@pytest.mark.parametrize("maxsize", [0, 1])
@pytest.mark.parametrize("form", ["sync", "async"])
def test_a_put_landing_after_an_immediate_shutdowns_drain_is_drained(
    maxsize: int, form: str
) -> None:
    # As queue.Queue: the put took place before the shutdown (it returns) and
    # its item was dropped with the rest, counted done; join() does not wait.
    from unirun._backends._dask.queues import DaskQueue

    q: Any = DaskQueue.__new__(DaskQueue)
    q.maxsize = maxsize
    q._items = _ItemsLandingLate(lambda: q.shutdown(immediate=True))
    q._unfinished, q._shut, q._drained = (_LateTokens([]) for _ in range(3))
    q._slots = None
    if maxsize:
        q._slots = _LateTokens([])
        q._slots.held.append(1)  # a free slot
    if form == "sync":
        q.put("late")
    else:
        anyio.run(q.async_put, "late")
    assert q.is_shutdown
    assert q._items.held == []
    assert q.unfinished_tasks == 0
    assert q._wait_joined(0)
    if maxsize:
        assert q._slots.held == [1]  # its slot given back
    with pytest.raises(unirun.QueueShutDown):
        q.get(timeout=5)
