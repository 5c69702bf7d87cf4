"""WaitLine: the async waits on a process-shared primitive share one thread."""

from __future__ import annotations

import functools
import os
import textwrap
import threading
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from conftest import run_python_file
from unirun._sync import waiting
from unirun._sync.lines import WaitLine

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def test_a_take_that_raises_raises_in_its_caller_and_the_line_goes_on() -> None:
    line = WaitLine()

    def broken(timeout: float) -> bool:
        raise OSError("the semaphore is gone")

    given_back: list[bool] = []
    with anyio.fail_after(20):
        with pytest.raises(OSError, match="the semaphore is gone"):
            await line.wait(broken, lambda: given_back.append(True))
        await line.wait(lambda timeout: True, None)  # served: the thread lives
    assert given_back == []  # nothing was taken, so nothing is given back


async def test_a_caller_cancelled_while_its_take_runs_waits_for_the_take() -> None:
    # The take comes true just after the cancellation: the caller returns only
    # once it is given back, so nothing is held for it afterwards.
    line = WaitLine()
    started, release = threading.Event(), threading.Event()
    held: list[str] = []

    def take(timeout: float) -> bool:
        started.set()
        release.wait(10)
        held.append("taken")
        return True

    def give_back() -> None:
        held.remove("taken")

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(line.wait, take, give_back)
            await anyio.to_thread.run_sync(started.wait)
            tg.cancel_scope.cancel()
            release.set()
    assert held == []


async def test_a_thread_that_cannot_start_leaves_no_one_in_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The caller stayed in line: the next thread handed it a unit, lost.
    line = WaitLine()
    start = threading.Thread.start

    def refuse(thread: threading.Thread) -> None:
        monkeypatch.setattr(threading.Thread, "start", start)
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    taken: list[str] = []

    def take(timeout: float) -> bool:
        taken.append("unit")
        return True

    with anyio.fail_after(20):
        with pytest.raises(RuntimeError, match="can't start new thread"):
            await line.wait(take, None)
        assert len(line) == 0
        await line.wait(take, None)
    assert taken == ["unit"]  # the second caller's, not a ghost's


async def test_a_caller_behind_one_whose_take_stays_false_is_told() -> None:
    # Event waiters each look for a set since their own start: the one behind
    # a waiter whose look stays false (it started after a set and clear) was
    # never looked at.
    line = WaitLine(alike=False)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(line.wait, lambda timeout: False, None)
            await anyio.wait_all_tasks_blocked()
            await line.wait(lambda timeout: True, None)  # second in line
            tg.cancel_scope.cancel()


async def test_a_unit_its_caller_gave_back_is_not_given_back_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Cancelled just as it was told, the caller gave the unit back; then its
    # event loop turned out to be gone, and the line's thread gave it back too.
    telling, cancelled = threading.Event(), threading.Event()
    real = waiting._loop_and_scheduler

    def scheduler() -> Any:
        loop, schedule = real()

        def first_tell_fails(callback: Any) -> bool:
            if isinstance(callback, functools.partial):  # the line's tell
                telling.set()
                cancelled.wait(10)
                return False  # as if the loop had closed meanwhile
            return bool(schedule(callback))

        return loop, first_tell_fails

    monkeypatch.setattr(waiting, "_loop_and_scheduler", scheduler)
    line = WaitLine()
    given_back: list[int] = []
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(line.wait, lambda timeout: True, lambda: given_back.append(1))
            await anyio.to_thread.run_sync(telling.wait)
            tg.cancel_scope.cancel()
        server = line._server
        assert server is not None
        cancelled.set()
        await anyio.to_thread.run_sync(server.join, 10)  # its tell, its idle time
    assert given_back == [1]


SCRIPT = textwrap.dedent(
    """
    import asyncio, os, sys, threading, warnings
    import unirun

    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
    ex = unirun.ProcessExecutor(1)
    sem = ex.Semaphore(0)
    waiting = threading.Event()

    async def wait_in_parent():
        waiting.set()
        await sem.async_acquire()

    loop = asyncio.new_event_loop()
    task = loop.create_task(wait_in_parent())
    threading.Thread(target=loop.run_until_complete, args=(task,), daemon=True).start()
    waiting.wait(10)
    while not len(sem._line):  # the parent's waiter is in line
        pass
    pid = os.fork()
    if pid == 0:  # the child: one unit for the parent's waiter, one for its own
        sem.release(2)

        async def take():
            await asyncio.wait_for(sem.async_acquire(), 10)

        try:
            asyncio.run(take())
        except BaseException as exc:
            print("child:", repr(exc), file=sys.stderr, flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    sem.release()  # in case the child took both
    ex.shutdown()
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_does_not_serve_its_parents_waiters(tmp_path: Path) -> None:
    # The child inherited the parent's line: its thread served the parent's
    # waiter (a copy that never runs) first, and the child's waited for good.
    script = tmp_path / "fork.py"
    script.write_text(SCRIPT)
    run_python_file(script)


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_units_released_together_wake_the_loop_once(anyio_backend: str) -> None:
    # Each waiter was told with a wake-up of its own: on a busy event loop the
    # line's thread then waited for the interpreter once per waiter.
    import asyncio

    import unirun

    with unirun.ProcessExecutor(1) as ex:
        sem = ex.Semaphore(0)
        loop = asyncio.get_running_loop()
        calls = 0
        schedule = loop.call_soon_threadsafe

        def counted(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return schedule(*args, **kwargs)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign,assignment]
        try:
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for _ in range(30):
                        tg.start_soon(sem.async_acquire)
                    await anyio.wait_all_tasks_blocked()
                    assert len(sem._line) == 30  # type: ignore[attr-defined]
                    calls = 0
                    sem.release(30)
        finally:
            del loop.call_soon_threadsafe
        assert calls <= 3, calls  # one, unless the thread saw a few come in late
        assert not sem.acquire(blocking=False)
