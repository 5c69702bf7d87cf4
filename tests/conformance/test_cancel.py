"""DESIGN 5: cancel before start means never run; running tasks per capability."""

from __future__ import annotations

import concurrent.futures as cf
from typing import TYPE_CHECKING

import anyio
import pytest

import unirun
from _tasks import async_sleep_then, record_start, signal_then_wait
from conftest import make_executor
from gates import Gate

if TYPE_CHECKING:
    from pathlib import Path


def test_cancel_pending_never_runs(kind: str, tmp_path: Path) -> None:
    executor = make_executor(kind, max_workers=1)
    gate = Gate(tmp_path)
    marker = tmp_path / "second-ran"
    try:
        first = executor.submit(signal_then_wait, gate.started, gate.release, 1)
        gate.wait_started()
        second = executor.submit(record_start, str(marker), 2)
        assert second.cancel()
        assert second.cancelled()
        gate.open()
        assert first.result(timeout=60) == 1
        with pytest.raises(cf.CancelledError):
            second.result(timeout=60)
        # concurrent.futures.wait() sees it done once the executor reached it.
        done, _ = cf.wait([second], timeout=60)
        assert done == {second}
    finally:
        gate.open()
        executor.shutdown(wait=True)
    assert not marker.exists()


def test_cancel_running_task_per_capability(kind: str, tmp_path: Path) -> None:
    executor = make_executor(kind)
    gate = Gate(tmp_path)
    try:
        if executor.cancels_running:
            future = executor.submit(async_sleep_then, 3600, "late")
            # Wait until it runs: a pending cancel would prove nothing.
            while not future.running():
                cf.wait([future], timeout=0.01)
            assert future.cancel()
            with pytest.raises(cf.CancelledError):
                future.result(timeout=60)
        else:
            future = executor.submit(signal_then_wait, gate.started, gate.release, 1)
            gate.wait_started()
            assert not future.cancel()  # stdlib: a running task cannot be cancelled
            gate.open()
            assert future.result(timeout=60) == 1
    finally:
        gate.open()
        executor.shutdown()


def test_cancelled_future_raises_concurrent_futures_cancelled_error() -> None:
    future = unirun.Future[int]()
    assert future.cancel()
    with pytest.raises(cf.CancelledError):
        future.result()
    assert unirun.CancelledError is cf.CancelledError


@pytest.mark.anyio
async def test_cancel_awaiting_scope_stops_task(kind: str, tmp_path: Path) -> None:
    executor = make_executor(kind)
    gate = Gate(tmp_path)
    try:
        future = executor.submit(signal_then_wait, gate.started, gate.release, 1)
        with anyio.move_on_after(0.05) as scope:
            await future
        assert scope.cancelled_caught
        if executor.stops_on_timeout and executor.crosses_processes:
            # The worker was killed: the future is cancelled, the task gone.
            assert future.cancelled()
        gate.open()
        # The executor still works afterwards.
        assert await executor.submit(pow, 2, 5) == 32
    finally:
        gate.open()
        executor.shutdown()
