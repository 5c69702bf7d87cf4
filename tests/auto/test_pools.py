"""Auto's inner pools: made on first need, each under its own lock, closed once."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

import unirun
from _auto_tasks import async_nap
from _tasks import square
from unirun._auto.pools import AUTO_THREADS, PROCESSES_PER_CPU, THREAD_COST_CAP, Pools

if TYPE_CHECKING:
    from collections.abc import Iterator


def make_pools(max_workers: int | None = None, cpus: int = 2) -> Pools:
    return Pools(max_workers, None, (), scope="test", cpus=cpus, name="test-pools")


@pytest.fixture
def pools() -> Iterator[Pools]:
    made = make_pools()
    try:
        yield made
    finally:
        made.close(wait=True, cancel_futures=True)


def test_pools_are_made_on_first_need_once(pools: Pools) -> None:
    assert pools.started() == []
    seen: list[object] = []
    barrier = threading.Barrier(4)

    def get() -> None:
        barrier.wait()
        seen.append(pools.thread())

    threads = [threading.Thread(target=get) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(pool) for pool in seen}) == 1
    assert pools.started() == [seen[0]]
    assert isinstance(seen[0], unirun.ThreadExecutor)
    assert seen[0]._max_workers == AUTO_THREADS


def test_making_one_pool_never_waits_for_another(
    pools: Pools, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, release = threading.Event(), threading.Event()
    real = pools._new_coroutine

    def slow_coroutine() -> unirun.CoroutineExecutor:
        inside.set()
        assert release.wait(60)
        return real()

    monkeypatch.setattr(pools, "_new_coroutine", slow_coroutine)
    maker = threading.Thread(target=pools.coroutine)
    maker.start()
    try:
        assert inside.wait(60)
        got: list[unirun.ThreadExecutor] = []
        other = threading.Thread(target=lambda: got.append(pools.thread()))
        other.start()
        other.join(timeout=60)
        # The thread pool came while the coroutine pool was still being made.
        assert got
        assert not release.is_set()
    finally:
        release.set()
        maker.join()


def test_process_pools_size_from_cpus_and_max_workers() -> None:
    pools = make_pools(cpus=3)
    capped = make_pools(max_workers=2, cpus=3)
    try:
        assert pools.process()._max_workers == 3
        assert pools.process(wide=True)._max_workers == 3 * PROCESSES_PER_CPU
        assert pools.process() is not pools.process(wide=True)
        assert capped.process(wide=True)._max_workers == 2
        assert pools.process()._primitive_scope == "test"
        # What the compute-and-wait rule weighs: calls at a time on both pools.
        assert pools.costs().mixed_slots == 3 * PROCESSES_PER_CPU
        assert capped.costs().mixed_slots == 2
        assert make_pools(cpus=64).costs().mixed_slots == AUTO_THREADS
    finally:
        pools.close(wait=True, cancel_futures=False)
        capped.close(wait=True, cancel_futures=False)


def test_thread_cost_is_measured_once_and_capped(pools: Pools) -> None:
    assert pools.thread_s is None
    assert pools.costs().process_s is None
    first = pools.thread_cost()
    assert 0 < first <= THREAD_COST_CAP
    assert pools.thread_cost() == first
    assert pools.costs().thread_s == first


def test_process_cost_is_inf_where_no_process_starts(
    pools: Pools, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(wide: bool) -> unirun.ProcessExecutor:
        raise RuntimeError("no processes here")

    monkeypatch.setattr(pools, "_new_process", refuse)
    assert pools.process_cost() == float("inf")
    assert "worker processes cannot start" in caplog.text
    assert pools.costs().process_s == float("inf")


def test_process_cost_after_shutdown_began_warns_of_nothing(
    pools: Pools, caplog: pytest.LogCaptureFixture
) -> None:
    # shutdown(cancel_futures=True) shuts the pools to new calls; a probe that
    # ends after it finds no round trip to measure, which is not a failure.
    pools.process()
    pools.cancel_queued()
    assert pools.process_cost() == float("inf")
    assert "cannot start" not in caplog.text


def test_closed_pools_make_no_new_pool(pools: Pools) -> None:
    thread = pools.thread()
    assert thread.submit(square, 3).result(timeout=60) == 9
    assert pools.close(wait=True, cancel_futures=False) == [thread]
    assert thread._shutdown
    with pytest.raises(RuntimeError, match="after shutdown"):
        pools.coroutine()
    assert pools.thread() is thread  # made before: still the one


@pytest.mark.anyio
async def test_attach_puts_coroutines_on_the_running_loop(anyio_backend: str) -> None:
    pools = make_pools()
    attached = await pools.attach()
    assert attached is not None
    try:
        assert pools.coroutine() is attached
        assert await attached.submit(async_nap, 0) == 0
        assert await pools.attach() is None  # already there
    finally:
        await attached.__aexit__(None, None, None)
        pools.close(wait=True, cancel_futures=False)


def test_statistics_never_take_off_a_timing_task_they_did_not_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A no-op timing a pool ended between the read of the pools' records and
    # that of the count of such no-ops: the snapshot read done=-1.
    with unirun.AutoExecutor() as ex:
        pools = ex._router.pools
        thread_pool = pools.thread()
        started = pools.started

        class ReadThenTimed:
            def __init__(self, inner: object) -> None:
                self.inner = inner

            def statistics(self) -> unirun.Statistics:
                record = self.inner.statistics()  # type: ignore[attr-defined]
                thread_pool.submit(int).result(timeout=60)  # as pools time one
                pools.measurements += 1
                return record  # type: ignore[no-any-return]

        monkeypatch.setattr(pools, "started", lambda: map(ReadThenTimed, started()))
        record = ex.statistics()
        monkeypatch.undo()
        assert min(record.submitted, record.done) >= 0
        assert record.submitted == (
            record.queued
            + record.running
            + record.done
            + record.failed
            + record.cancelled
        )
