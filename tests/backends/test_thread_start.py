"""An exception landing in ``Thread.start()``: the pool keeps track of its workers.

``Thread.start()`` launches the thread, then waits for it to run; a Ctrl-C can
land in that wait (and CPython may turn it into ``RuntimeError('release unlocked
lock')``, python/cpython#78667). Here ``start()`` is made to fail after the
launch, or before it, for one named thread, the way such an interrupt would.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from conftest import HAS_DASK, dask_session
from unirun._deadlines import DeadlineWatcher
from unirun._starting import began, join_launched

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine
    from pathlib import Path

PREFIX = "start-interrupted"


def interrupt() -> None:
    raise KeyboardInterrupt


def interrupt_as_cpython_may() -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise RuntimeError("release unlocked lock") from None


def failing_start(
    monkeypatch: pytest.MonkeyPatch,
    *,
    launch: bool,
    fail: Callable[[], None],
    prefix: str = PREFIX,
) -> list[threading.Thread]:
    """Make the next ``start()`` of a thread named ``prefix...`` fail: after its
    launch, or instead of it. Returns the threads it failed (filled later)."""
    real_start = threading.Thread.start
    failed: list[threading.Thread] = []

    def start(thread: threading.Thread) -> None:
        if failed or not thread.name.startswith(prefix):
            real_start(thread)
            return
        failed.append(thread)
        if launch:
            real_start(thread)
        fail()

    monkeypatch.setattr(threading.Thread, "start", start)
    return failed


def workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(PREFIX)]


@pytest.mark.parametrize(
    "fail", [interrupt, interrupt_as_cpython_may], ids=["interrupt", "cpython"]
)
def test_a_worker_launched_by_an_interrupted_submit_is_counted_and_joined(
    fail: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran, release = threading.Event(), threading.Event()

    def hold() -> None:
        ran.set()
        release.wait(60)

    ex = unirun.ThreadExecutor(max_workers=1, thread_name_prefix=PREFIX)
    try:
        failed = failing_start(monkeypatch, launch=True, fail=fail)
        with pytest.raises(KeyboardInterrupt):  # not CPython's RuntimeError
            ex.submit(hold)
        monkeypatch.undo()
        assert len(failed) == 1
        assert ran.wait(60)  # queued before the interrupt: the worker runs it
        later = ex.submit(release.is_set)
        assert workers() == failed  # max_workers=1: no second thread
        closer = threading.Thread(target=ex.shutdown, kwargs={"wait": True})
        closer.start()
        closer.join(0.5)
        assert closer.is_alive()  # shutdown(wait=True) waits for that worker
    finally:
        release.set()
    closer.join(60)
    assert not closer.is_alive()
    assert later.result(timeout=0) is True
    assert workers() == []


def cannot_start() -> None:
    raise RuntimeError("can't start new thread")


@pytest.mark.parametrize("fail", [cannot_start, interrupt], ids=["failed", "interrupt"])
@pytest.mark.parametrize("then", ["submit", "shutdown"])
def test_a_worker_that_never_launched_is_forgotten(
    fail: Callable[[], None], then: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = unirun.ThreadExecutor(max_workers=1, thread_name_prefix=PREFIX)
    failing_start(monkeypatch, launch=False, fail=fail)
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        ex.submit(int, "1")
    monkeypatch.undo()
    if then == "submit":  # it starts the worker the failed submit did not
        assert ex.submit(int, "2").result(timeout=60) == 2
        assert len(workers()) == 1
    ex.shutdown(wait=True)  # joins no thread that never started
    assert workers() == []


def test_the_deadline_watcher_starts_again_after_a_failed_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fired = threading.Event()
    watcher = DeadlineWatcher(f"{PREFIX}-deadlines")

    failing_start(monkeypatch, launch=False, fail=cannot_start)
    with pytest.raises(RuntimeError):
        watcher.add(0.0, lambda: None)
    monkeypatch.undo()
    watcher.add(0.0, fired.set)
    assert fired.wait(60)
    watcher.close(wait=True)  # joins a thread that runs, not one never started
    assert workers() == []


def test_a_thread_that_never_finishes_starting_is_given_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    thread = threading.Thread(target=release.wait, args=(60,), name=PREFIX)
    thread.start()

    def not_started(self: threading.Thread, timeout: float | None = None) -> None:
        raise RuntimeError("cannot join thread before it is started")

    # As join() answers a thread stuck before it sets its start-up event.
    monkeypatch.setattr(threading.Thread, "join", not_started)
    with caplog.at_level(logging.WARNING, logger="unirun"):
        join_launched(thread, patience=0.05)
    assert "never finished starting" in caplog.text
    monkeypatch.undo()
    release.set()
    thread.join(60)
    assert not began(threading.Thread(target=int))  # never started: no wait


def recorder() -> tuple[list[int], Callable[[int], Coroutine[Any, Any, int]]]:
    """A list, and an ``async def`` that doubles a number and records it there."""
    ran: list[int] = []

    async def double(x: int) -> int:
        ran.append(x)
        return 2 * x

    return ran, double


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("CoroutineExecutor")]


@pytest.mark.parametrize(
    "fail", [interrupt, interrupt_as_cpython_may], ids=["interrupt", "cpython"]
)
def test_a_loop_thread_launched_by_an_interrupted_submit_runs_the_call(
    fail: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran, double = recorder()
    ex = unirun.CoroutineExecutor()
    failed = failing_start(
        monkeypatch, launch=True, fail=fail, prefix="CoroutineExecutor-"
    )
    with pytest.raises(KeyboardInterrupt):  # not CPython's RuntimeError
        ex.submit(double, 1)
    monkeypatch.undo()
    assert len(failed) == 1
    assert ex.submit(double, 2).result(timeout=60) == 4
    ex.shutdown(wait=True)
    assert sorted(ran) == [1, 2]  # the interrupted submit's call ran too
    assert loop_threads() == []


@pytest.mark.parametrize("fail", [cannot_start, interrupt], ids=["failed", "interrupt"])
@pytest.mark.parametrize("then", ["submit", "shutdown"])
def test_a_loop_thread_that_never_launched_is_started_again(
    fail: Callable[[], None], then: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran, double = recorder()
    ex = unirun.CoroutineExecutor()
    failing_start(monkeypatch, launch=False, fail=fail, prefix="CoroutineExecutor-")
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        ex.submit(double, 1)
    monkeypatch.undo()
    if then == "submit":  # it starts the loop the failed submit did not
        assert ex.submit(double, 2).result(timeout=60) == 4
    ex.shutdown(wait=True)  # the accepted calls run; no unstarted thread joined
    assert sorted(ran) == ([1, 2] if then == "submit" else [1])
    assert loop_threads() == []


needs_dask = pytest.mark.skipif(not HAS_DASK, reason="needs unirun[dask]")


def dask_managers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("DaskExecutor-")]


def shut_down_within(ex: unirun.Executor, seconds: float = 60) -> bool:
    """Whether ``ex.shutdown(wait=True)`` returned within ``seconds``."""
    closer = threading.Thread(target=ex.shutdown, daemon=True)
    closer.start()
    closer.join(seconds)
    return not closer.is_alive()


@needs_dask
@pytest.mark.parametrize(
    "fail", [interrupt, interrupt_as_cpython_may], ids=["interrupt", "cpython"]
)
def test_a_dask_manager_launched_by_an_interrupted_submit_runs_its_task(
    fail: Callable[[], None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ex = unirun.DaskExecutor(max_workers=2, client=dask_session().client)
    failing_start(monkeypatch, launch=True, fail=fail, prefix="DaskExecutor-")
    with pytest.raises(KeyboardInterrupt):  # not CPython's RuntimeError
        ex.submit(os.mkdir, str(tmp_path / "first"))
    monkeypatch.undo()
    assert ex.submit(abs, -2).result(timeout=60) == 2
    # The interrupted submit's task was neither lost nor left counted as out
    # (shutdown waited for it for ever).
    assert shut_down_within(ex)
    assert (tmp_path / "first").is_dir()
    assert dask_managers() == []


@needs_dask
@pytest.mark.parametrize("fail", [cannot_start, interrupt], ids=["failed", "interrupt"])
@pytest.mark.parametrize("then", ["submit", "shutdown"])
def test_a_dask_manager_that_never_launched_is_started_again(
    fail: Callable[[], None],
    then: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    ex = unirun.DaskExecutor(max_workers=2, client=dask_session().client)
    failing_start(monkeypatch, launch=False, fail=fail, prefix="DaskExecutor-")
    with pytest.raises((RuntimeError, KeyboardInterrupt)):
        ex.submit(os.mkdir, str(tmp_path / "first"))
    monkeypatch.undo()
    if then == "submit":  # it starts the manager the failed submit did not
        assert ex.submit(abs, -2).result(timeout=60) == 2
    assert shut_down_within(ex)  # no unstarted thread joined
    assert (tmp_path / "first").is_dir()  # the accepted task ran
    assert dask_managers() == []
