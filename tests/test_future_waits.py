"""A thread blocked in ``Future.result()`` (or ``exception()``): woken, timed
out, interrupted.

``result()`` waits on a lock of its own that the thread ending the future
releases (no Condition is made); these tests hold it to what
``concurrent.futures.Future.result()`` does, which is the reference.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import functools
import math
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from conftest import run_python_file

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _until(condition: Callable[[], bool]) -> None:
    """Return once ``condition()`` holds (another thread makes it so)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.001)


def _sleeping(future: unirun.Future[Any]) -> int:
    return len(future._sleepers or ())


def _has_sleeping(future: unirun.Future[Any], count: int) -> bool:
    return _sleeping(future) == count


def _owner(future: unirun.Future[Any]) -> int | None:
    return future._owner


def _end(future: cf.Future[Any], how: str) -> None:
    if how == "result":
        future.set_result(7)
    elif how == "exception":
        future.set_exception(ValueError("boom"))
    else:
        assert future.cancel()


def _outcome(
    future: cf.Future[Any], timeout: float | None, method: str = "result"
) -> object:
    try:
        if method == "exception":
            return type(future.exception(timeout))
        return future.result(timeout)
    except (ValueError, cf.CancelledError, TimeoutError) as error:
        return type(error)


def _wait_into(
    future: cf.Future[Any], seen: list[object], method: str = "result"
) -> None:
    seen.append(_outcome(future, 60, method))


@pytest.mark.parametrize("method", ["result", "exception"])
@pytest.mark.parametrize("how", ["result", "exception", "cancel"])
def test_every_thread_waiting_is_woken_with_the_outcome(how: str, method: str) -> None:
    outcomes = {}
    for kind in (cf.Future, unirun.Future):
        future: cf.Future[Any] = kind()
        seen: list[object] = []
        waiters = [
            threading.Thread(target=_wait_into, args=(future, seen, method))
            for _ in range(8)
        ]
        for waiter in waiters:
            waiter.start()
        if isinstance(future, unirun.Future):
            _until(functools.partial(_has_sleeping, future, 8))
            assert future._cond is None  # no Condition was made for them
        _end(future, how)
        for waiter in waiters:
            waiter.join(60)
        assert len(seen) == 8
        outcomes[kind] = seen
        if isinstance(future, unirun.Future):
            assert _sleeping(future) == 0
    assert outcomes[unirun.Future] == outcomes[cf.Future]


@pytest.mark.parametrize("method", ["result", "exception"])
@pytest.mark.parametrize("timeout", [0, -1.0, -math.inf, math.nan])
def test_a_time_out_of_zero_or_less_or_nan_only_checks(
    timeout: float, method: str
) -> None:
    for kind in (cf.Future, unirun.Future):
        future: cf.Future[Any] = kind()
        assert _outcome(future, timeout, method) is TimeoutError
        future.set_exception(ValueError())
        assert _outcome(future, timeout, method) is ValueError
    assert _sleeping(future) == 0  # type: ignore[arg-type]  # the last: ours


def test_a_wait_that_times_out_leaves_nothing_behind_and_others_still_wake() -> None:
    future: unirun.Future[int] = unirun.Future()
    patient: list[object] = []
    waiter = threading.Thread(target=_wait_into, args=(future, patient))
    waiter.start()
    _until(lambda: _sleeping(future) == 1)
    assert _outcome(future, 0.01) is TimeoutError  # this thread gives up
    assert _sleeping(future) == 1  # only the patient one is left
    future.set_result(3)
    waiter.join(60)
    assert patient == [3]
    assert _outcome(future, 0.01) == 3


@pytest.mark.anyio
async def test_an_await_given_up_on_leaves_no_callback_behind() -> None:
    # A task polled with a time-out, over and over, while it runs on: each
    # await that gives up takes its done-callback back; one that waits to the
    # end still gets the result.
    import anyio

    release = threading.Event()
    with unirun.ThreadExecutor(1) as ex:
        future = ex.submit(release.wait, 60)
        try:
            for _ in range(20):
                with anyio.move_on_after(0.001):
                    await future
            assert future._done_callbacks == []
        finally:
            release.set()
        with anyio.fail_after(60):
            assert await future is True


def test_result_on_a_thread_that_holds_the_future_s_lock_lets_go_of_it() -> None:
    # A signal handler calling result() while its thread is inside one of the
    # future's locked steps: the wait must give up the lock, as the stdlib's
    # Condition.wait() gives up its RLock, or the setter could never finish.
    future: unirun.Future[int] = unirun.Future()
    setter = threading.Thread(target=future.set_result, args=(5,))
    lock = future._lock
    assert lock is not None
    with lock:
        setter.start()
        assert future.result(timeout=30) == 5
    setter.join(60)


def test_a_wait_seals_an_event_loop_s_future_and_is_woken_by_its_loop() -> None:
    # A future owned by an event loop has no lock until another thread needs
    # one: the thread waiting in result() makes it, and seals the future, so
    # the loop ends it the lock's way and wakes the waiter.
    gate = threading.Event()

    async def gated() -> int:
        while not gate.is_set():
            await asyncio.sleep(0.001)
        return 9

    with unirun.CoroutineExecutor() as ex:
        ex.submit(asyncio.sleep, 0).result(timeout=60)  # the loop runs now
        future = ex.submit(gated)
        assert future._owner is not None
        assert future._lock is None
        waiter: list[object] = []
        thread = threading.Thread(target=_wait_into, args=(future, waiter))
        thread.start()
        _until(functools.partial(_has_sleeping, future, 1))
        assert _owner(future) is None  # sealed
        gate.set()
        thread.join(60)
        assert waiter == [9]


INTERRUPTED = """
import os, signal, sys, threading, time
import unirun

calls = []
future = unirun.Future(on_interrupt=lambda: calls.append("interrupted"))

def interrupt():
    while not future._sleepers:
        time.sleep(0.001)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt).start()
try:
    future.result()
except KeyboardInterrupt:
    pass
else:
    sys.exit("result() returned")
assert calls == ["interrupted"], calls
assert not future._sleepers, future._sleepers  # the wait left nothing behind
threading.Timer(0.01, future.set_result, (4,)).start()
assert future.result(timeout=30) == 4
print("ok")
"""


@pytest.mark.skipif(sys.platform == "win32", reason="a real SIGINT")
def test_ctrl_c_in_result_stops_the_wait_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    done = run_python_file(script)
    assert done.stdout.strip() == "ok", done.stderr


ENDED_UNDER_SIGNALS = """
import faulthandler, random, signal, sys, threading, time
import unirun

faulthandler.enable()
faulthandler.dump_traceback_later(60, exit=True)

class Boom(Exception):
    pass

armed = False

def handler(signum, frame):
    if armed:
        raise Boom

def end(future, how):
    global armed
    try:
        armed = True
        if how == 0:
            future.set_result(1)
        elif how == 1:
            future.set_exception(ValueError())
        elif how == 2:
            future.cancel()
        else:
            future._start()
            future._set_result_if_pending(1)
    except Boom:
        return True
    finally:
        armed = False
    return False

def wait_for(future):
    try:
        future.result()
    except BaseException:
        pass

signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, 5e-5, 5e-5)
# 1. Many futures ended in a row: is a lock ever left held?
held = interrupted = calls = 0
deadline = time.monotonic() + 0.7
while time.monotonic() < deadline:
    calls += 1
    future = unirun.Future()
    if end(future, calls % 4):
        interrupted += 1
        held += future._lock._is_owned()
# 2. Futures that threads wait on in result(): is one ever left asleep?
asleep = rounds = 0
deadline = time.monotonic() + 2
while time.monotonic() < deadline and rounds < 400 and not asleep:
    rounds += 1
    future = unirun.Future()
    # Threads start and are joined with the timer off: under a signal every
    # 50 us, 3.13.0's own thread start and join crash now and then (SIGSEGV,
    # or abort in a futex), with no unirun code on the stack.
    signal.setitimer(signal.ITIMER_REAL, 0)
    waiters = [threading.Thread(target=wait_for, args=(future,), daemon=True)
               for _ in range(2)]
    for waiter in waiters:
        waiter.start()
    while len(future._sleepers or ()) < 2:
        time.sleep(0.0002)
    # The first signal at a random point of the next few microseconds: within
    # end() as often as not.
    signal.setitimer(signal.ITIMER_REAL, random.uniform(1e-6, 2e-5), 5e-5)
    interrupted += end(future, rounds % 4)
    signal.setitimer(signal.ITIMER_REAL, 0)
    while future._lock._is_owned():  # as counted in 1.
        future._lock.release()
    if not future.done():
        future.cancel() or future.set_result(2)
    for waiter in waiters:
        waiter.join(2)
        asleep += waiter.is_alive()  # the future is done, its lock free
signal.setitimer(signal.ITIMER_REAL, 0)
print(calls, rounds, interrupted, held, asleep)
"""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="a real SIGALRM")
def test_a_signal_handler_raising_as_a_future_ends_leaves_it_unlocked_and_waking(
    tmp_path: Path,
) -> None:
    # A raising handler (Ctrl-C, a SIGTERM handler's SystemExit) on the thread
    # that ends a future, at any point it can run: the future's lock is never
    # left held, and no thread in result() is left asleep on a done future.
    script = tmp_path / "ended.py"
    script.write_text(ENDED_UNDER_SIGNALS)
    done = run_python_file(script)
    calls, rounds, interrupted, held, asleep = map(int, done.stdout.split())
    assert calls > 1000, done.stdout
    assert rounds > 50, done.stdout
    assert interrupted > 0, done.stdout  # the handler did land in the calls
    assert (held, asleep) == (0, 0), done.stdout


@pytest.mark.parametrize("method", ["result", "exception"])
@pytest.mark.parametrize("timeout", ["1", b"1", [1]])
def test_a_time_out_of_the_wrong_type_fails_as_the_stdlib_s(
    method: str, timeout: object
) -> None:
    messages = []
    for future in (cf.Future[int](), unirun.Future[int]()):
        with pytest.raises(TypeError) as caught:
            getattr(future, method)(timeout)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
