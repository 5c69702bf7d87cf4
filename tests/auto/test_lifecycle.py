"""Auto's lifecycle: every accepted call runs, and nothing outlives the executor.

Shutdown must run the calls held behind a probe (or cancel them), a program that
never shuts its executor down must still exit, and a dropped executor releases
its threads. The exit tests run real scripts in a subprocess, as users do.
"""

from __future__ import annotations

import concurrent.futures as cf
import gc
import subprocess
import sys
import textwrap
import threading
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import unirun
from _auto_tasks import async_nap, nap, plus_one, spin, wait_for_event

if TYPE_CHECKING:
    from collections.abc import Callable

TESTS = Path(__file__).resolve().parent.parent


def run_script(source: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a script (the tests folder importable) and return it."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=TESTS,
    )


@pytest.mark.parametrize("work", [nap, spin], ids=["sleep", "pure-Python"])
def test_shutdown_runs_every_held_call_gh12(work: Callable[[float], float]) -> None:
    # The calls after the first are held behind its probe; leaving `with` must
    # run every one of them, not refuse them because the inner pools closed.
    with unirun.AutoExecutor() as ex:
        futures = [ex.submit(work, 0.002) for _ in range(200)]
    errors = [f.exception() for f in futures if f.exception() is not None]
    assert errors == []
    assert [f.result() for f in futures] == [0.002] * 200


def test_shutdown_cancel_futures_cancels_held_calls_gh12() -> None:
    started, release = threading.Event(), threading.Event()
    ex = unirun.AutoExecutor(max_workers=1)
    try:
        probe = ex.submit(wait_for_event, started, release, 1)
        held = [ex.submit(wait_for_event, started, release, i) for i in range(2, 10)]
        assert started.wait(60)
        ex.shutdown(wait=False, cancel_futures=True)
        assert all(f.cancelled() for f in held)
    finally:
        release.set()
        ex.shutdown(wait=True)
    assert probe.result(timeout=60) == 1


def test_program_without_shutdown_exits_gh12() -> None:
    # Sync, async, tiny and process-bound work; the script never shuts down.
    completed = run_script(
        """
        import unirun
        from _auto_tasks import async_nap, nap, plus_one, spin

        if __name__ == "__main__":
            ex = unirun.AutoExecutor()
            assert ex.submit(nap, 0.01).result() == 0.01
            assert ex.submit(async_nap, 0.01).result() == 0.01
            assert sum(ex.map(plus_one, range(100))) == 5050
            assert ex.options(backend="process").submit(spin, 0.01).result() == 0.01
            held = [ex.submit(spin, 0.002) for _ in range(20)]
            print("done", flush=True)
        """
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "done"


def test_dropped_executor_releases_its_threads_gh12() -> None:
    before = set(threading.enumerate())
    ex = unirun.AutoExecutor(max_workers=2)
    assert ex.submit(nap, 0.01).result(timeout=60) == 0.01
    assert ex.submit(async_nap, 0.01).result(timeout=60) == 0.01
    assert list(ex.map(plus_one, range(10))) == list(range(1, 11))
    ref = weakref.ref(ex)
    del ex
    gc.collect()
    assert ref() is None
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=30)
        assert not thread.is_alive(), thread.name


def test_process_hint_never_probes_in_process_gh12() -> None:
    # os._exit would end this script if it ran here; on a process it only
    # kills that worker, and the script goes on.
    completed = run_script(
        """
        import os
        import unirun

        if __name__ == "__main__":
            with unirun.AutoExecutor() as ex:
                on_process = ex.options(backend="process")
                try:
                    on_process.submit(os._exit, 3).result()
                except unirun.WorkerCrashedError:
                    print("submit: worker crashed", flush=True)
                try:
                    list(on_process.map(os._exit, [4, 5]))
                except unirun.WorkerCrashedError:
                    print("map: worker crashed", flush=True)
            print("alive", flush=True)
        """
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split("\n")[:3] == [
        "submit: worker crashed",
        "map: worker crashed",
        "alive",
    ]


@pytest.mark.parametrize("cancel", [False, True], ids=["run", "cancel"])
@pytest.mark.parametrize("wait", [True, False], ids=["wait", "nowait"])
def test_shutdown_never_refuses_an_accepted_call_gh12(wait: bool, cancel: bool) -> None:
    # New functions (probes, held calls), known ones and a map, then shutdown at
    # once: each call runs, or with cancel_futures is cancelled; none is refused.
    ex = unirun.AutoExecutor()
    calls: list[tuple[Callable[[float], float], float]] = [
        (nap, 0.001),
        (spin, 0.001),
        (nap, 0.0),
    ]
    futures = [ex.submit(fn, arg) for _ in range(30) for fn, arg in calls]
    results = ex.map(spin, [0.0005] * 40)
    ex.shutdown(wait=wait, cancel_futures=cancel)
    for future in futures:
        # As with the stdlib pools, a future cancelled by shutdown is done but
        # not "notified": cf.wait() would not count it. result() tells.
        try:
            assert future.result(timeout=120) in (0.0, 0.001)
        except cf.CancelledError:
            assert cancel
    try:
        assert list(results) == [0.0005] * 40
    except cf.CancelledError:
        assert cancel
    ex.shutdown(wait=True)


@pytest.mark.parametrize("cancel", [False, True], ids=["run", "cancel"])
def test_known_coroutines_racing_shutdown_run_or_are_refused(cancel: bool) -> None:
    # A coroutine seen before skips the front's lock on its way to the coroutine
    # pool. Threads submitting it while shutdown() runs each get a future that
    # ends (run, or cancelled by cancel_futures) or the shutdown RuntimeError:
    # nothing accepted is lost, and nothing is accepted once shutdown returns.
    ex = unirun.AutoExecutor()
    assert ex.submit(async_nap, 0.0).result(timeout=60) == 0.0  # known from now
    start = threading.Barrier(5)
    accepted: list[cf.Future[float]] = []
    refused: list[BaseException] = []
    guard = threading.Lock()

    def submit_many() -> None:
        start.wait(timeout=60)
        for _ in range(300):
            try:
                future = ex.submit(async_nap, 0.0)
            except RuntimeError as exc:
                with guard:
                    refused.append(exc)
                return
            with guard:
                accepted.append(future)

    threads = [threading.Thread(target=submit_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    start.wait(timeout=60)
    ex.shutdown(wait=True, cancel_futures=cancel)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(async_nap, 0.0)
    for thread in threads:
        thread.join(timeout=60)
    for future in accepted:
        try:
            assert future.result(timeout=60) == 0.0
        except cf.CancelledError:
            assert cancel
    assert all("after shutdown" in str(exc) for exc in refused)
