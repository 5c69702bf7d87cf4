"""The primitives behave the same on every backend, used from sync and async tasks.

Each test runs on every kind of executor, with tasks that use the sync methods
and with tasks that use the async ones; the parent talks to the same objects
from plain sync code.
"""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING, Any

import pytest

import _primitive_tasks as tasks
import unirun
from conftest import make_executor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from unirun._base import BaseExecutor

CALLERS = ("sync", "async")


@pytest.fixture(params=CALLERS)
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


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted(
        [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals]
    )
    inside = most = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        inside += step
        most = max(most, inside)
    return most


def test_producer_consumer_bounded_queue(roomy: BaseExecutor, caller: str) -> None:
    q = roomy.Queue(maxsize=3)
    consumer = roomy.submit(_pick(caller, tasks.consume, tasks.async_consume), q)
    producer = roomy.submit(_pick(caller, tasks.produce, tasks.async_produce), q, 200)
    items, largest = consumer.result(timeout=60)
    assert producer.result(timeout=60) == 200
    assert items == list(range(200))
    assert largest <= 3
    assert q.empty()
    q.join()  # every item was marked done


def test_parent_feeds_task_and_joins(executor: BaseExecutor, caller: str) -> None:
    q = executor.Queue()
    consumer = executor.submit(_pick(caller, tasks.consume, tasks.async_consume), q)
    for i in range(50):
        q.put(i)
    q.put(None)
    q.join()
    assert consumer.done() or consumer.result(timeout=60)
    assert consumer.result(timeout=60)[0] == list(range(50))


@pytest.mark.parametrize("value", [1, 2])
def test_mutual_exclusion_and_semaphore_caps(
    roomy: BaseExecutor, caller: str, value: int
) -> None:
    """No more than ``value`` holders at once, and ``value`` is reached."""
    guard: unirun.Lock | unirun.Semaphore = (
        roomy.Lock() if value == 1 else roomy.BoundedSemaphore(value)
    )
    entered = roomy.Queue()
    go = roomy.Event()
    holders = 3
    futures = [
        roomy.submit(_pick(caller, tasks.hold, tasks.async_hold), guard, entered, go, 2)
        for _ in range(holders)
    ]
    for _ in range(value):
        entered.get(timeout=60)
    # `value` holders are inside and wait for `go`: nobody else may enter.
    with pytest.raises(queue.Empty):
        entered.get(timeout=0.2)
    if isinstance(guard, unirun.Lock):
        assert guard.locked()
    go.set()
    intervals = [interval for f in futures for interval in f.result(timeout=60)]
    assert len(intervals) == holders * 2
    assert _max_overlap(intervals) == value
    if isinstance(guard, unirun.Lock):
        assert not guard.locked()
    else:
        with pytest.raises(ValueError, match="released too many times"):
            guard.release()


def test_event_wakes_every_waiter(roomy: BaseExecutor, caller: str) -> None:
    event = roomy.Event()
    ready = roomy.Queue()
    wait = _pick(caller, tasks.wait_for_event, tasks.async_wait_for_event)
    futures = [roomy.submit(wait, event, ready) for _ in range(3)]
    for _ in futures:
        assert ready.get(timeout=60) == "waiting"
    assert not any(f.done() for f in futures) or not event.is_set()
    event.set()
    assert [f.result(timeout=60) for f in futures] == [True, True, True]
    assert event.is_set()
    event.clear()
    assert not event.is_set()


def test_time_outs(executor: BaseExecutor, caller: str) -> None:
    lock = executor.Lock()
    sem = executor.Semaphore(0)
    empty = executor.Queue()
    full = executor.Queue(maxsize=1)
    full.put("x")
    event = executor.Event()
    assert lock.acquire()
    fn = _pick(caller, tasks.time_outs, tasks.async_time_outs)
    results = executor.submit(fn, lock, sem, empty, full, event).result(timeout=60)
    if caller == "sync":
        assert results == [False] * 5 + ["Empty", "Empty", "Full", "Full"]
    else:
        assert results == ["cancelled"] * 5
    # Nothing was taken or added by the waits that gave up.
    assert lock.locked()
    lock.release()
    assert not sem.acquire(blocking=False)
    assert empty.qsize() == 0
    assert full.qsize() == 1
    assert full.get_nowait() == "x"


@pytest.mark.parametrize(
    ("make", "call", "expected"),
    [
        ("Lock", "release", "RuntimeError: release unlocked lock"),
        (
            "BoundedSemaphore",
            "release",
            "ValueError: Semaphore released too many times",
        ),
        ("Queue", "task_done", "ValueError: task_done() called too many times"),
        (
            "Lock",
            "acquire",
            "ValueError: can't specify a timeout for a non-blocking call",
        ),
        (
            "Semaphore",
            "acquire",
            "ValueError: can't specify timeout for non-blocking acquire",
        ),
    ],
)
def test_misuse_raises_the_stdlib_error_inside_tasks(
    executor: BaseExecutor, make: str, call: str, expected: str
) -> None:
    primitive = getattr(executor, make)()
    assert executor.submit(tasks.misuse, call, primitive).result(timeout=60) == expected
    assert tasks.misuse(call, primitive) == expected  # and in the parent


def test_invalid_arguments_fail_in_the_caller(executor: BaseExecutor) -> None:
    with pytest.raises(ValueError, match="initial value must be >= 0"):
        executor.Semaphore(-1)
    with pytest.raises(ValueError, match="initial value must be >= 0"):
        executor.BoundedSemaphore(-1)
    q = executor.Queue(maxsize=1)
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)
    q.put(1)
    with pytest.raises(ValueError, match="non-negative"):
        q.put(2, timeout=-1)
    with pytest.raises(ValueError, match="timeout value must be"):
        executor.Lock().acquire(timeout=-2)
    with pytest.raises(ValueError, match="one or more"):
        executor.Semaphore().release(0)


def test_task_result_comes_from_a_queue_the_parent_filled(
    executor: BaseExecutor,
) -> None:
    q = executor.Queue()
    q.put({"nested": [1, 2, (3, 4)]})
    assert executor.submit(tasks.get_one, q).result(timeout=60) == {
        "nested": [1, 2, (3, 4)]
    }


def test_views_make_primitives_of_their_executor(executor: BaseExecutor) -> None:
    view = executor.options(timeout=60)
    q = view.Queue()
    assert type(q) is type(executor.Queue())
    q.put(5)
    assert view.submit(tasks.get_one, q).result(timeout=60) == 5
    assert isinstance(view.Lock(), unirun.Lock)
    assert isinstance(view.Semaphore(), unirun.Semaphore)
    assert isinstance(view.BoundedSemaphore(), unirun.BoundedSemaphore)
    assert isinstance(view.Event(), unirun.Event)


def test_primitives_outlive_the_executor(kind: str) -> None:
    ex = make_executor(kind)
    q = ex.Queue()
    lock = ex.Lock()
    ex.shutdown()
    q.put(1)
    assert q.get() == 1
    with lock:
        assert lock.locked()
