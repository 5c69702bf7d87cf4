"""RLock, Condition, Barrier, Dict and Queue.shutdown between tasks, on every backend.

As ``test_primitives_conformance.py``: tasks use the sync methods or the async
ones, and the parent talks to the same objects from plain sync code.
"""

from __future__ import annotations

import functools
import itertools
import pickle
import queue
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

import pytest

import _primitive_tasks as tasks
import unirun
from conftest import make_executor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from unirun._base import BaseExecutor


@pytest.fixture(params=["sync", "async"])
def caller(request: pytest.FixtureRequest) -> str:
    """Whether the tasks use the sync or the async methods."""
    return str(request.param)


@pytest.fixture
def roomy(kind: str) -> Iterator[BaseExecutor]:
    """An executor that runs at least four tasks at once."""
    options: dict[str, object] = {}
    if kind in ("thread", "process"):
        options["max_workers"] = 4
    ex = make_executor(kind, **options)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def _pick(caller: str, sync: Any, asynchronous: Any) -> Any:
    return sync if caller == "sync" else asynchronous


# -- RLock ---------------------------------------------------------------------------


def test_rlock_excludes_other_tasks_and_lets_its_owner_in_again(
    roomy: BaseExecutor, caller: str
) -> None:
    lock = roomy.RLock()
    entered = roomy.Queue()
    go = roomy.Event()
    hold = _pick(caller, tasks.hold_twice, tasks.async_hold_twice)
    futures = [roomy.submit(hold, lock, entered, go, 2) for _ in range(3)]
    entered.get(timeout=60)
    with pytest.raises(queue.Empty):  # one holder inside: nobody else enters
        entered.get(timeout=0.2)
    assert lock.locked()
    assert not lock._is_owned()  # held by a task, not by this thread
    go.set()
    intervals = sorted(i for f in futures for i in f.result(timeout=60))
    assert len(intervals) == 6
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert end <= start
    assert not lock.locked()


def test_rlock_held_by_the_parent_cannot_be_released_by_a_task(
    executor: BaseExecutor,
) -> None:
    lock = executor.RLock()
    with lock:
        outcome = executor.submit(tasks.misuse, "release", lock).result(timeout=60)
        assert outcome == "RuntimeError: cannot release un-acquired lock"
        assert lock._recursion_count() == 1
    assert not lock.locked()


# -- Condition -----------------------------------------------------------------------


def test_notify_wakes_exactly_n_waiters(roomy: BaseExecutor, caller: str) -> None:
    cond = roomy.Condition()
    ready, woken = roomy.Queue(), roomy.Queue()
    wait = _pick(caller, tasks.wait_notified, tasks.async_wait_notified)
    futures = [roomy.submit(wait, cond, ready, woken) for _ in range(3)]
    for _ in futures:
        assert ready.get(timeout=60) == "waiting"
    with cond:  # taken once every waiter has released it in wait()
        cond.notify(2)
    assert [woken.get(timeout=60), woken.get(timeout=60)] == [True, True]
    with pytest.raises(queue.Empty):
        woken.get(timeout=0.2)
    with cond:
        cond.notify_all()
    assert [f.result(timeout=60) for f in futures] == [True, True, True]


def test_wait_for_sees_the_state_the_parent_changes(
    roomy: BaseExecutor, caller: str
) -> None:
    lock = roomy.Lock()
    cond = roomy.Condition(lock)
    box = roomy.Dict()
    wait = _pick(caller, tasks.wait_for_count, tasks.async_wait_for_count)
    futures = [roomy.submit(wait, cond, box, 3) for _ in range(2)]
    for count in range(1, 4):
        with cond:
            box["count"] = count
            cond.notify_all()
    assert [f.result(timeout=60) for f in futures] == [3, 3]
    assert not lock.locked()


def test_condition_misuse_raises_threadings_errors(executor: BaseExecutor) -> None:
    cond = executor.Condition()
    with pytest.raises(RuntimeError, match="cannot wait on un-acquired lock"):
        cond.wait(0)
    with pytest.raises(RuntimeError, match="cannot notify on un-acquired lock"):
        cond.notify()
    with cond:
        assert cond.wait(0) is False
        assert cond.wait_for(lambda: 0, timeout=0) == 0


def test_threadings_old_names_work_and_warn_as_there(executor: BaseExecutor) -> None:
    # Event.isSet() and Condition.notifyAll(): deprecated in threading, with a
    # warning, and still called by older code.
    event, stdlib_event = executor.Event(), threading.Event()
    cond, stdlib_cond = executor.Condition(), threading.Condition()
    event.set()
    stdlib_event.set()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert event.isSet() is stdlib_event.isSet() is True
        with cond, stdlib_cond:
            cond.notifyAll()
            stdlib_cond.notifyAll()
    assert [(w.category, str(w.message), w.filename) for w in seen] == [
        (DeprecationWarning, "isSet() is deprecated, use is_set() instead", __file__),
    ] * 2 + [
        (
            DeprecationWarning,
            "notifyAll() is deprecated, use notify_all() instead",
            __file__,
        ),
    ] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(RuntimeError, match="cannot notify on un-acquired lock"):
            cond.notifyAll()


# -- Barrier -------------------------------------------------------------------------


def test_barrier_moves_parties_in_lockstep(roomy: BaseExecutor, caller: str) -> None:
    log = roomy.Queue()
    barrier = roomy.Barrier(3, functools.partial(tasks.put_from_worker, log, "open"))
    party = _pick(caller, tasks.pass_barrier, tasks.async_pass_barrier)
    futures = [roomy.submit(party, barrier, 4) for _ in range(2)]
    mine = tasks.pass_barrier(barrier, 4)
    rounds = [mine, *(f.result(timeout=60) for f in futures)]
    for number in range(4):
        assert sorted(indices[number] for indices in rounds) == [0, 1, 2]
    assert [log.get(timeout=60) for _ in range(4)] == ["open"] * 4
    assert log.empty()  # the action ran once per round
    assert barrier.n_waiting == 0
    assert not barrier.broken


def test_abort_breaks_the_barrier_for_waiting_tasks(
    roomy: BaseExecutor, caller: str
) -> None:
    barrier = roomy.Barrier(3)
    ready = roomy.Queue()
    wait = _pick(caller, tasks.wait_until_broken, tasks.async_wait_until_broken)
    futures = [roomy.submit(wait, barrier, ready) for _ in range(2)]
    for _ in futures:
        ready.get(timeout=60)
    barrier.abort()
    assert [f.result(timeout=60) for f in futures] == ["broken", "broken"]
    assert barrier.broken
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait()
    barrier.reset()
    assert not barrier.broken


def test_a_wait_that_times_out_breaks_the_barrier(executor: BaseExecutor) -> None:
    barrier = executor.Barrier(2, timeout=0.05)
    outcome = executor.submit(tasks.wait_at, barrier).exception(timeout=60)
    assert isinstance(outcome, threading.BrokenBarrierError)
    assert barrier.broken


# -- Dict ----------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [1e300, float("inf")])
def test_a_barrier_wait_too_long_to_wait_for_raises_overflow_error(
    executor: BaseExecutor, timeout: float
) -> None:
    # As threading.Barrier: refused when the party would wait (the shared one
    # waited for ever), and the barrier is left as it was.
    barrier = executor.Barrier(2)
    with pytest.raises(OverflowError):
        barrier.wait(timeout)
    assert barrier.n_waiting == 0
    assert not barrier.broken
    other = threading.Thread(target=barrier.wait, args=(60,))
    other.start()
    assert barrier.wait(60) in (0, 1)
    other.join(60)


def test_the_manager_dict_example(roomy: BaseExecutor) -> None:
    """Five tasks write ``n**2``; the parent reads the whole dict."""
    d = roomy.Dict()
    unirun.wait([roomy.submit(tasks.square_into, d, n) for n in range(5)])
    assert dict(sorted(d.items())) == {n: n**2 for n in range(5)}


def test_setdefault_has_one_winner(roomy: BaseExecutor) -> None:
    d = roomy.Dict()
    winners = [roomy.submit(tasks.first_writer, d, me) for me in range(8)]
    results = {f.result(timeout=60) for f in winners}
    assert len(results) == 1
    assert d["winner"] in results


def test_pop_gives_each_key_to_one_task(roomy: BaseExecutor) -> None:
    d = roomy.Dict()
    d.update((key, key) for key in range(200))
    takers = [roomy.submit(tasks.take_keys, d, range(200)) for _ in range(4)]
    taken = [key for f in takers for key in f.result(timeout=60)]
    assert sorted(taken) == list(range(200))
    assert len(d) == 0


# -- Queue.shutdown ------------------------------------------------------------------


def test_shutdown_wakes_blocked_getters_after_the_last_item(
    roomy: BaseExecutor, caller: str
) -> None:
    q, ready = roomy.Queue(), roomy.Queue()
    get = _pick(caller, tasks.get_until_shut, tasks.async_get_until_shut)
    futures = [roomy.submit(get, q, ready) for _ in range(2)]
    for _ in futures:
        ready.get(timeout=60)
    for i in range(10):
        q.put(i)
    q.shutdown()
    items = sorted(i for f in futures for i in f.result(timeout=60))
    assert items == list(range(10))  # what was put before still arrives
    with pytest.raises(unirun.QueueShutDown):
        q.put(11)
    with pytest.raises(unirun.QueueShutDown):
        q.get_nowait()


def test_shutdown_wakes_blocked_putters(roomy: BaseExecutor, caller: str) -> None:
    q, ready = roomy.Queue(maxsize=2), roomy.Queue()
    put = _pick(caller, tasks.put_until_shut, tasks.async_put_until_shut)
    future = roomy.submit(put, q, ready)
    ready.get(timeout=60)
    while not q.full():  # the putter fills it, then blocks
        pass
    q.shutdown(immediate=True)
    assert future.result(timeout=60) >= 2
    assert q.empty()
    q.join()  # immediate shutdown marked the removed items done


def test_immediate_shutdown_empties_the_queue(executor: BaseExecutor) -> None:
    q = executor.Queue()
    for i in range(5):
        q.put(i)
    assert q.get() == 0
    q.task_done()
    q.shutdown(immediate=True)
    assert q.qsize() == 0
    with pytest.raises(unirun.QueueShutDown):
        q.get()
    q.join()
    with pytest.raises(ValueError, match="task_done"):
        q.task_done()


def test_queue_shutdown_error_is_the_stdlibs_where_it_exists(
    executor: BaseExecutor,
) -> None:
    if sys.version_info >= (3, 13):
        assert unirun.QueueShutDown is queue.ShutDown
    assert issubclass(unirun.QueueShutDown, Exception)
    q = executor.Queue()
    q.shutdown()
    error = executor.submit(tasks.get_one, q).exception(timeout=60)
    assert type(error) is unirun.QueueShutDown  # raised in a task, as itself
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is unirun.QueueShutDown
