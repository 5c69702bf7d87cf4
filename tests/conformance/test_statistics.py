"""Issue 15: ``statistics()``, one frozen record with the same fields everywhere."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import pickle
from typing import TYPE_CHECKING

import pytest

import unirun
from _tasks import fail_if_negative, record_start, signal_then_wait, square
from conftest import make_executor
from gates import Gate

if TYPE_CHECKING:
    from pathlib import Path

    from unirun._base import BaseExecutor


def _adds_up(stats: unirun.Statistics) -> bool:
    return (
        stats.done + stats.failed + stats.cancelled + stats.running + stats.queued
        == stats.submitted
    )


def test_statistics_is_a_frozen_snapshot(executor: BaseExecutor) -> None:
    stats = executor.statistics()
    assert isinstance(stats, unirun.Statistics)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.submitted = 3  # type: ignore[misc]  # frozen on purpose
    assert stats.submitted == 0
    assert _adds_up(stats)


def test_statistics_is_hashable_and_its_verdicts_read_only(
    executor: BaseExecutor,
) -> None:
    assert executor.submit(square, 3).result(timeout=60) == 9
    stats = executor.statistics()
    assert hash(stats) == hash(dataclasses.replace(stats))
    with pytest.raises(TypeError):
        stats.verdicts["f"] = None  # type: ignore[index]  # read-only on purpose
    assert dict(stats.verdicts) == stats.verdicts
    assert pickle.loads(pickle.dumps(stats)) == stats


@pytest.mark.parametrize("kind", ["thread", "process", "coroutine", "auto"])
def test_statistics_after_shutdown_list_no_worker(kind: str) -> None:
    # The coroutine executor still listed its stopped event loop. (A Dask
    # executor on a joined cluster leaves its workers up, and counts them.)
    ex = make_executor(kind)
    assert ex.submit(square, 3).result(timeout=60) == 9
    ex.shutdown(wait=True)
    stats = ex.statistics()
    assert (stats.workers_alive, stats.workers) == (0, ())
    assert stats.done == 1


def test_statistics_count_every_outcome_gh15(kind: str, tmp_path: Path) -> None:
    executor = make_executor(kind, max_workers=1)
    gate = Gate(tmp_path)
    try:
        assert executor.submit(square, 3).result(timeout=60) == 9
        with pytest.raises(ValueError):
            executor.submit(fail_if_negative, -1).result(timeout=60)
        running = executor.submit(signal_then_wait, gate.started, gate.release, 1)
        gate.wait_started()
        queued = executor.submit(record_start, str(tmp_path / "never"), 2)
        cancelled = executor.submit(record_start, str(tmp_path / "never2"), 3)
        assert cancelled.cancel()
        stats = executor.statistics()
        assert (stats.submitted, stats.done, stats.failed) == (5, 1, 1)
        assert (stats.running, stats.queued, stats.cancelled) == (1, 1, 1)
        assert _adds_up(stats)
        assert stats.workers_alive >= 1
        assert stats.workers_started >= 1
        assert all(w.busy_s >= 0 and w.idle_s >= 0 for w in stats.workers)
        gate.open()
        assert running.result(timeout=60) == 1
        assert queued.result(timeout=60) == 2
        stats = executor.statistics()
        assert (stats.done, stats.running, stats.queued) == (3, 0, 0)
        assert _adds_up(stats)
    finally:
        gate.open()
        executor.shutdown()


def test_statistics_count_time_outs_as_failures_gh15(
    executor: BaseExecutor, tmp_path: Path
) -> None:
    gate = Gate(tmp_path)
    try:
        future = executor.options(timeout=0.2).submit(
            signal_then_wait, gate.started, gate.release, 1
        )
        with pytest.raises(unirun.TaskTimeoutError):
            future.result(timeout=60)
        stats = executor.statistics()
        assert (stats.failed, stats.timed_out) == (1, 1)
        assert _adds_up(stats)
    finally:
        gate.open()


@pytest.mark.parametrize("chunksize", [1, 2, None])
def test_statistics_count_a_failed_map_item_as_failed(
    executor: BaseExecutor, chunksize: int | None
) -> None:
    # Whether it ran alone or in a batch (one task): a batch that stopped at
    # the item's error counted as done.
    with pytest.raises(ValueError, match="negative"):
        list(executor.map(fail_if_negative, [0, 1, 2, -1, 4, 5], chunksize=chunksize))
    executor.shutdown(wait=True)
    stats = executor.statistics()
    assert stats.failed == 1, stats
    assert stats.running == stats.queued == 0
    assert _adds_up(stats)


def test_statistics_add_up_while_tasks_run(executor: BaseExecutor) -> None:
    futures = [executor.submit(square, i) for i in range(50)]
    while not all(f.done() for f in futures):
        assert _adds_up(executor.statistics())
        cf.wait(futures, timeout=0.001)
    stats = executor.statistics()
    assert stats.done == 50
    assert _adds_up(stats)
