"""DESIGN 7: shutdown(wait, cancel_futures), with and async with, nothing left."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import TYPE_CHECKING

import anyio
import pytest

from _tasks import record_start, signal_then_wait, square
from conftest import make_executor
from gates import Gate

if TYPE_CHECKING:
    from pathlib import Path


def test_submit_after_shutdown_raises_stdlib_error(kind: str) -> None:
    executor = make_executor(kind)
    executor.shutdown()
    with pytest.raises(
        RuntimeError, match="cannot schedule new futures after shutdown"
    ):
        executor.submit(square, 1)
    with cf.ThreadPoolExecutor() as stdlib:
        pass
    with pytest.raises(RuntimeError) as stdlib_error:
        stdlib.submit(square, 1)
    with pytest.raises(RuntimeError) as ours:
        executor.submit(square, 1)
    assert str(ours.value) == str(stdlib_error.value)


def test_shutdown_twice_is_harmless(kind: str) -> None:
    executor = make_executor(kind)
    assert executor.submit(square, 2).result(timeout=60) == 4
    executor.shutdown()
    executor.shutdown()


def test_shutdown_waits_for_running_tasks(kind: str, tmp_path: Path) -> None:
    executor = make_executor(kind)
    gate = Gate(tmp_path)
    future = executor.submit(signal_then_wait, gate.started, gate.release, "done")
    gate.wait_started()
    closer = threading.Thread(target=executor.shutdown)
    closer.start()
    closer.join(0.05)
    gate.open()
    closer.join()
    assert future.result(timeout=0) == "done"


def test_shutdown_cancel_futures_cancels_pending(kind: str, tmp_path: Path) -> None:
    executor = make_executor(kind, max_workers=1)
    gate = Gate(tmp_path)
    first = executor.submit(signal_then_wait, gate.started, gate.release, 1)
    gate.wait_started()
    rest = [
        executor.submit(record_start, str(tmp_path / f"ran-{i}"), i) for i in range(5)
    ]
    executor.shutdown(wait=False, cancel_futures=True)
    gate.open()
    executor.shutdown(wait=True)
    assert first.result(timeout=0) == 1
    assert all(f.cancelled() for f in rest)
    assert not list(tmp_path.glob("ran-*"))


def run_map_then_shut_down(
    executor: cf.Executor, tmp_path: Path
) -> tuple[list[object], BaseException | None, list[Gate]]:
    """Map five items on one worker, the first held on a gate, shut down with
    cancel_futures, then read the map: what it gave, what it raised at the end,
    and the gates of the other items (opened: one that runs does not hang)."""
    gates = [Gate(tmp_path) for _ in range(5)]
    for gate in gates[1:]:
        gate.open()
    results = executor.map(
        signal_then_wait,
        [gate.started for gate in gates],
        [gate.release for gate in gates],
        range(5),
    )
    gates[0].wait_started()
    executor.shutdown(wait=False, cancel_futures=True)
    gates[0].open()
    got: list[object] = []
    error = None
    try:
        got.extend(results)
    except BaseException as exc:
        error = exc
    executor.shutdown(wait=True)
    return got, error, gates[1:]


def test_map_then_shutdown_cancel_futures_gives_what_ran_then_cancelled(
    kind: str, tmp_path: Path
) -> None:
    # As the stdlib's: the items that finished come out in order, then the
    # first cancelled one raises CancelledError. Auto's map, which routes the
    # items after the first once it ends, raised the RuntimeError of a submit
    # after shutdown where the shutdown came as it routed them (see
    # tests/auto/test_mapping.py), and lost the first item's result.
    got, error, rest = run_map_then_shut_down(
        make_executor(kind, max_workers=1), tmp_path
    )
    with cf.ThreadPoolExecutor(max_workers=1) as stdlib:
        expected = run_map_then_shut_down(stdlib, tmp_path)
    assert (
        (got, type(error))
        == (expected[0], type(expected[1]))
        == (
            [0],
            cf.CancelledError,
        )
    )
    assert not any(gate.has_started() for gate in [*rest, *expected[2]])


def test_shutdown_no_wait_returns_and_work_completes(kind: str, tmp_path: Path) -> None:
    executor = make_executor(kind)
    gate = Gate(tmp_path)
    future = executor.submit(signal_then_wait, gate.started, gate.release, 5)
    gate.wait_started()
    executor.shutdown(wait=False)
    assert not future.done()
    gate.open()
    assert future.result(timeout=60) == 5
    # The leak guard then checks that every worker exits by itself.


def test_with_block_shuts_down(kind: str) -> None:
    with make_executor(kind) as executor:
        future = executor.submit(square, 3)
    assert future.done()
    assert future.result() == 9
    with pytest.raises(RuntimeError):
        executor.submit(square, 1)


@pytest.mark.anyio
async def test_async_with_shuts_down(kind: str) -> None:
    async with make_executor(kind) as executor:
        future = executor.submit(square, 4)
        assert await future == 16
    with pytest.raises(RuntimeError):
        executor.submit(square, 1)


@pytest.mark.anyio
async def test_a_cancelled_async_with_still_shuts_down(kind: str) -> None:
    # A cancelled scope cancels every await of the exit too: the shutdown it
    # awaited never ran, and the executor's workers lived on.
    with anyio.CancelScope() as scope:
        async with make_executor(kind) as executor:
            future = executor.submit(square, 5)
            scope.cancel()
            await anyio.sleep(60)  # cancelled at once
    assert scope.cancelled_caught
    # The exit waited for it (a coroutine executor's may end cancelled).
    assert future.done()
    assert future.cancelled() or future.result(timeout=0) == 25
    with pytest.raises(RuntimeError):
        executor.submit(square, 1)


def test_max_workers_below_one_rejected(kind: str) -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            make_executor(kind, max_workers=bad)


@pytest.mark.parametrize("bad", [2.5, "3", float("nan"), float("inf")])
def test_max_workers_not_an_integer_rejected_gh12(kind: str, bad: object) -> None:
    with pytest.raises(TypeError, match="max_workers must be an integer"):
        make_executor(kind, max_workers=bad)


def test_max_workers_means_tasks_at_once_on_every_kind_gh11(
    kind: str, tmp_path: Path
) -> None:
    # The same keyword on every kind: switching the kind string is the only change.
    executor = make_executor(kind, max_workers=1)
    gate = Gate(tmp_path)
    try:
        first = executor.submit(signal_then_wait, gate.started, gate.release, 1)
        gate.wait_started()
        second = executor.submit(record_start, str(tmp_path / "second"), 2)
        assert not second.running()  # held back: one task at a time
        assert not (tmp_path / "second").exists()
        gate.open()
        assert (first.result(timeout=60), second.result(timeout=60)) == (1, 2)
    finally:
        gate.open()
        executor.shutdown()


def test_shutdown_wait_from_inside_a_task_raises_gh12(kind: str) -> None:
    from _tasks import shut_down_from_task

    executor = make_executor(kind)
    if executor.crosses_processes:
        executor.shutdown()
        pytest.skip("a task in another process cannot reach the executor")
    try:
        future = executor.submit(shut_down_from_task, executor)
        # As ThreadPoolExecutor raises there: no deadlock.
        with pytest.raises(RuntimeError, match="cannot join current thread"):
            future.result(timeout=60)
    finally:
        executor.shutdown()


def test_initializer_runs_before_tasks(kind: str) -> None:
    from _tasks import get_init_value, init_set

    with make_executor(kind, initializer=init_set, initargs=("ready",)) as executor:
        assert executor.submit(get_init_value).result(timeout=60) == "ready"


def test_initargs_are_not_looked_at_without_an_initializer(kind: str) -> None:
    # As the stdlib's pools: `initargs=args if cond else None` is common.
    with make_executor(kind, initargs=None) as executor:
        assert executor.submit(abs, -2).result(timeout=60) == 2


def test_initializer_not_callable_rejected(kind: str) -> None:
    with pytest.raises(TypeError, match="initializer must be a callable"):
        make_executor(kind, initializer=42)
