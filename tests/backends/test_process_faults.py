"""Process backend faults: each fails only its own task, and the pool goes on.

Regression tests for issues 11 and 12: a task's own KeyboardInterrupt, tasks
and results that cannot be rebuilt, exceptions that fight pickling, a crash
in the middle of a map chunk, memory held by finished tasks, 3.14's
terminate_workers()/kill_workers(), and a pool freed as soon as it is dropped.
"""

from __future__ import annotations

import gc
import os
import weakref
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

import pytest

import unirun
from _tasks import (
    ErrorWhenUnpickled,
    ExitsWhenUnpickledArg,
    Marker,
    environment,
    getpid,
    nested_lists,
    raise_fighting,
    raise_keyboard_interrupt,
    record_then_crash,
    signal_then_wait,
    square,
)
from gates import Gate

if TYPE_CHECKING:
    from pathlib import Path


def test_task_keyboard_interrupt_fails_only_its_future_gh12(tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    with unirun.ProcessExecutor(max_workers=2) as ex:
        other = ex.submit(signal_then_wait, gate.started, gate.release, "other")
        gate.wait_started()
        with pytest.raises(KeyboardInterrupt, match="raised by the task"):
            ex.submit(raise_keyboard_interrupt).result(timeout=60)
        # Not taken for a Ctrl-C: the pool and the other task go on.
        assert ex.submit(square, 5).result(timeout=60) == 25
        gate.open()
        assert other.result(timeout=60) == "other"


@pytest.mark.parametrize("argument", [ErrorWhenUnpickled(), ExitsWhenUnpickledArg()])
def test_task_that_cannot_be_rebuilt_is_a_broken_pool_error_gh11(
    argument: object,
) -> None:
    with unirun.ProcessExecutor(max_workers=1) as ex:
        pid = ex.submit(getpid).result(timeout=60)
        with pytest.raises(BrokenProcessPool, match="could not be unpickled in the"):
            ex.submit(square, argument).result(timeout=60)  # type: ignore[call-overload]  # on purpose
        # The worker survived it, and the pool is healthy.
        assert ex.submit(getpid).result(timeout=60) == pid


def test_exception_that_fights_pickling_keeps_the_worker_gh12() -> None:
    with unirun.ProcessExecutor(max_workers=1) as ex:
        pid = ex.submit(getpid).result(timeout=60)
        with pytest.raises(unirun.RemoteError, match="hostile"):
            ex.submit(raise_fighting).result(timeout=60)
        assert ex.submit(getpid).result(timeout=60) == pid


@pytest.mark.parametrize("chunksize", [50, None])
def test_crash_in_a_map_chunk_keeps_the_results_before_it_gh12(
    chunksize: int | None, tmp_path: Path
) -> None:
    with unirun.ProcessExecutor(max_workers=2) as ex:
        results: list[int] = []
        iterator = ex.map(
            record_then_crash,
            [str(tmp_path)] * 40,
            range(40),
            [7] * 40,
            chunksize=chunksize,
        )
        with pytest.raises(unirun.WorkerCrashedError):  # where it fails is the point
            results.extend(iterator)
        assert results == [x * x for x in range(7)]
    # Nothing ran twice (a chunk is never sent again). Read once the pool has shut
    # down: the other worker's chunk may still be writing its markers until then.
    for marker in tmp_path.iterdir():
        assert marker.read_text() == "ran\n", marker.name


def test_finished_tasks_do_not_keep_their_arguments_gh12() -> None:
    import tracemalloc

    payload = b"x" * (4 << 20)
    with unirun.ProcessExecutor(max_workers=1) as ex:
        ex.submit(len, b"").result(timeout=60)  # start the worker first
        tracemalloc.start()
        try:
            futures = [ex.submit(len, payload) for _ in range(20)]
            assert [f.result(timeout=60) for f in futures] == [len(payload)] * 20
            held, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # 20 pickled copies would be 80 MiB; none is kept once sent.
    assert held < 20 << 20, held


@pytest.mark.parametrize("method", ["terminate_workers", "kill_workers"])
def test_terminate_and_kill_workers_like_python_314_gh11(
    method: str, tmp_path: Path
) -> None:
    gate = Gate(tmp_path)
    ex = unirun.ProcessExecutor(max_workers=1)
    running = ex.submit(signal_then_wait, gate.started, gate.release, 1)
    pending = ex.submit(square, 2)
    gate.wait_started()
    pids = set(ex._processes)
    getattr(ex, method)()
    with pytest.raises(BrokenProcessPool):
        running.result(timeout=60)
    assert pending.cancelled()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 3)
    ex.shutdown(wait=True)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_shut_down_pool_is_freed_at_once_gh11() -> None:
    marker = Marker()
    gc.disable()
    try:
        ex = unirun.ProcessExecutor(max_workers=1, initargs=(marker,))
        future = ex.submit(square, 3)
        assert future.result(timeout=60) == 9
        ex.shutdown(wait=True)
        pool = weakref.ref(ex._pool)
        del ex
        # No cycle keeps it: reference counting frees it, not the collector.
        assert pool() is None
        del marker
    finally:
        gc.enable()
    assert future.result() == 9  # a future the caller keeps still works


def test_workers_cap_native_threads_unless_told_gh13(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from unirun._cpu import usable_cpus

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    with unirun.ProcessExecutor(max_workers=2) as ex:
        share = str(max(1, usable_cpus() // 2))
        assert ex.submit(environment, "OMP_NUM_THREADS").result(timeout=60) == share
        assert ex.submit(environment, "OPENBLAS_NUM_THREADS").result(60) == share
        assert ex.submit(environment, "MKL_NUM_THREADS").result(timeout=60) == "3"
    with unirun.ProcessExecutor(max_workers=2, native_threads=None) as ex:
        assert ex.submit(environment, "OMP_NUM_THREADS").result(timeout=60) is None


def test_workers_see_the_callers_environment_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with unirun.ProcessExecutor(max_workers=1) as ex:
        ex.submit(square, 1).result(timeout=60)  # the fork server is running
    monkeypatch.setenv("UNIRUN_TEST_LATE", "set after the server started")
    with unirun.ProcessExecutor(max_workers=1) as ex:
        value = ex.submit(environment, "UNIRUN_TEST_LATE").result(timeout=60)
    assert value == "set after the server started"


def test_a_result_too_deep_to_pickle_fails_with_recursion_error() -> None:
    # As with the stdlib: pickling raised it, not cloudpickle's PicklingError.
    with unirun.ProcessExecutor(max_workers=1) as ex:
        error = ex.submit(nested_lists, 100_000).exception(timeout=60)
        assert type(error) is RecursionError, repr(error)
        assert ex.submit(square, 3).result(timeout=60) == 9


def test_a_call_by_value_too_deep_to_pickle_says_recursion_error() -> None:
    # A lambda sends the whole call through cloudpickle, which calls it a
    # PicklingError: the error says what pickle raised, as the stdlib's does.
    with unirun.ProcessExecutor(max_workers=1) as ex:
        future = ex.submit(lambda value: 0, nested_lists(100_000))
        error = future.exception(timeout=60)
    assert isinstance(error, RecursionError), repr(error)
    assert isinstance(error, unirun.TransferError)
    assert "RecursionError: maximum recursion depth exceeded" in str(error)
    assert type(error.__cause__) is RecursionError
