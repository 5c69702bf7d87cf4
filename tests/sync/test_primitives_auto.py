"""On an AutoExecutor the primitives connect tasks that run on different backends."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import _primitive_tasks as tasks
import unirun
from unirun._sync.locks import SharedLock
from unirun._sync.ringqueue import SharedQueue

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def auto() -> Iterator[unirun.AutoExecutor]:
    """An auto executor, shut down after the test."""
    ex = unirun.AutoExecutor(max_workers=4)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def test_auto_primitives_are_shared_with_processes(
    auto: unirun.AutoExecutor,
) -> None:
    assert isinstance(auto.Queue(), SharedQueue)
    assert isinstance(auto.Lock(), SharedLock)


def test_coroutine_producer_feeds_process_consumer(auto: unirun.AutoExecutor) -> None:
    q = auto.Queue(maxsize=4)
    consumer = auto.options(backend="process").submit(tasks.consume, q)
    producer = auto.options(backend="coroutine").submit(tasks.async_produce, q, 100)
    items, largest = consumer.result(timeout=60)
    assert producer.result(timeout=60) == 100
    assert items == list(range(100))
    assert largest <= 4


def test_one_lock_across_thread_process_and_coroutine_tasks(
    auto: unirun.AutoExecutor,
) -> None:
    lock = auto.Lock()
    entered = auto.Queue()
    go = auto.Event()
    futures = [
        auto.options(backend="thread").submit(tasks.hold, lock, entered, go, 2),
        auto.options(backend="process").submit(tasks.hold, lock, entered, go, 2),
        auto.options(backend="coroutine").submit(
            tasks.async_hold, lock, entered, go, 2
        ),
    ]
    entered.get(timeout=60)
    assert lock.locked()
    go.set()
    intervals = sorted(i for f in futures for i in f.result(timeout=60))
    assert len(intervals) == 6
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert end <= start  # no two holders at once
    assert not lock.locked()


@pytest.mark.anyio
async def test_parent_async_code_feeds_a_process_task(
    auto: unirun.AutoExecutor,
) -> None:
    q: Any = auto.Queue(maxsize=2)
    consumer = auto.options(backend="process").submit(tasks.consume, q)
    with anyio.fail_after(60):
        for i in range(20):
            await q.async_put(i)
        await q.async_put(None)
        items, _ = await consumer
        await q.async_join()
    assert items == list(range(20))
