"""What only the thread backend does, matched against ThreadPoolExecutor."""

from __future__ import annotations

import concurrent.futures as cf
import gc
import logging
import threading
from concurrent.futures.thread import BrokenThreadPool
from pathlib import Path
from typing import Any

import pytest

import unirun
from _tasks import init_fail, signal_then_wait, square, thread_name
from conftest import run_python_file
from gates import Gate


def test_failing_initializer_breaks_pool_like_stdlib(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        ex = unirun.ThreadExecutor(max_workers=1, initializer=init_fail)
        try:
            with pytest.raises(BrokenThreadPool) as ours:
                ex.submit(square, 1).result(timeout=60)
            with pytest.raises(BrokenThreadPool):
                ex.submit(square, 1)
        finally:
            ex.shutdown()
        stdlib = cf.ThreadPoolExecutor(max_workers=1, initializer=init_fail)
        try:
            with pytest.raises(BrokenThreadPool) as theirs:
                stdlib.submit(square, 1).result(timeout=60)
        finally:
            stdlib.shutdown()
    assert str(ours.value) == str(theirs.value)
    assert "Exception in initializer" in caplog.text


def test_thread_name_prefix() -> None:
    with unirun.ThreadExecutor(max_workers=1, thread_name_prefix="pfx") as ex:
        assert ex.submit(thread_name).result(timeout=60) == "pfx_0"
    with unirun.ThreadExecutor(max_workers=1) as ex:
        assert (
            ex.submit(thread_name).result(timeout=60).startswith("ThreadPoolExecutor-")
        )


def test_default_prefixes_differ_from_the_stdlib_pools_in_one_program() -> None:
    # Both kinds of pool in a fresh interpreter: each gets a name of its own.
    program = (
        "import concurrent.futures as cf, threading, unirun\n"
        "def name(): return threading.current_thread().name\n"
        "with cf.ThreadPoolExecutor(1) as a, unirun.ThreadExecutor(1) as b:\n"
        "    print(a.submit(name).result(), b.submit(name).result())\n"
    )
    names = run_python_file("-c", program).stdout.split()
    assert names == ["ThreadPoolExecutor-0_0", "ThreadPoolExecutor-1_0"]


def test_idle_thread_is_reused() -> None:
    with unirun.ThreadExecutor(max_workers=8) as ex:
        for i in range(20):
            assert ex.submit(square, i).result(timeout=60) == i * i
        assert len(ex._threads) == 1


def test_default_max_workers_matches_stdlib() -> None:
    ours = unirun.ThreadExecutor()
    theirs = cf.ThreadPoolExecutor()
    try:
        assert ours._max_workers == theirs._max_workers
    finally:
        ours.shutdown()
        theirs.shutdown()


def test_collected_executor_lets_threads_exit() -> None:
    ex = unirun.ThreadExecutor(max_workers=2)
    ex.submit(square, 2).result(timeout=60)
    threads = set(ex._threads)
    del ex
    gc.collect()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_timeout_fails_future_and_thread_runs_on(tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    with unirun.ThreadExecutor(max_workers=1) as ex:
        future = ex.options(timeout=0.1).submit(
            signal_then_wait, gate.started, gate.release, 1
        )
        with pytest.raises(unirun.TaskTimeoutError, match="runs on"):
            future.result(timeout=60)
        # The thread is still busy with the task; it finishes when let go.
        gate.wait_started()  # its time-out counts from when a thread took it
        assert not Path(gate.release).exists()
        gate.open()
        assert ex.submit(square, 3).result(timeout=60) == 9


def test_async_task_runs_on_worker_thread_loop() -> None:
    import asyncio

    async def where() -> tuple[str, bool]:
        asyncio.get_running_loop()
        return threading.current_thread().name, True

    with unirun.ThreadExecutor(max_workers=1, thread_name_prefix="w") as ex:
        assert ex.submit(where).result(timeout=60) == ("w_0", True)
        assert ex.submit(where).result(timeout=60) == ("w_0", True)


def test_fork_while_exit_lock_held_does_not_deadlock_child_bpo45021() -> None:
    import multiprocessing

    from _tasks import use_thread_executor
    from unirun._backends import thread as thread_backend

    context = multiprocessing.get_context("fork")
    with thread_backend._registry.lock:  # held by "another thread" at the fork
        child = context.Process(target=use_thread_executor)
        child.start()
    child.join(60)
    try:
        assert child.exitcode == 0
    finally:
        if child.exitcode is None:
            child.kill()
            child.join()


def test_a_callback_of_a_future_cancelled_by_shutdown_may_submit() -> None:
    # The stdlib cancels queued futures holding its shutdown lock, so a done-
    # callback that submits to the pool deadlocks shutdown there. Here it is
    # refused, as any submit after shutdown.
    ex = unirun.ThreadExecutor(1)
    gate = threading.Event()
    ex.submit(gate.wait, 60)  # holds the only thread: the next one queues
    queued = ex.submit(square, 2)
    refused: list[str] = []

    def submit_more(_: cf.Future[int]) -> None:
        try:
            ex.submit(square, 3)
        except RuntimeError as exc:
            refused.append(str(exc))

    queued.add_done_callback(submit_more)
    closing = threading.Thread(
        target=ex.shutdown, kwargs={"wait": False, "cancel_futures": True}
    )
    closing.start()
    closing.join(60)
    gate.set()
    assert not closing.is_alive()
    assert queued.cancelled()
    assert refused == ["cannot schedule new futures after shutdown"]
    ex.shutdown(wait=True)


@pytest.mark.parametrize(
    ("make", "broken"),
    [
        (unirun.ThreadExecutor, BrokenThreadPool),
        (cf.ThreadPoolExecutor, BrokenThreadPool),
        (unirun.ProcessExecutor, cf.process.BrokenProcessPool),
        (cf.ProcessPoolExecutor, cf.process.BrokenProcessPool),
        (unirun.CoroutineExecutor, unirun.BrokenExecutor),
    ],
    ids=["thread", "stdlib-thread", "process", "stdlib-process", "coroutine"],
)
def test_a_broken_pool_says_so_before_it_says_it_was_shut_down(
    make: Any, broken: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    # The stdlib's pools check "broken" first in submit(), shut down or not; the
    # other backends' broken errors follow the thread pool's rule.
    with caplog.at_level(logging.CRITICAL, logger="concurrent.futures"):
        ex = make(1, initializer=init_fail)
        with pytest.raises(broken):
            ex.submit(square, 1).result(timeout=60)
        ex.shutdown()
    with pytest.raises(broken):
        ex.submit(square, 1)
