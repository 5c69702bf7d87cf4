"""Faults mid-operation: processes killed while they use a shared primitive (#12).

Each test runs a real script in a fresh interpreter: a worker process is
SIGKILLed (or killed by its task's time-out) while it puts, writes, sets or
waits, many times over; the script then checks that every wait with a time-out
in the parent returned on time, that the primitive still works, and that
nothing half-written became visible. A hang fails the test through the
subprocess time-out; none of these scripts may take long.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

import unirun
from conftest import make_executor

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from unirun._base import BaseExecutor

pytestmark = pytest.mark.slow

#: Every script checks that its trials finished within this many seconds;
#: a wedged primitive blocks forever instead, and the run is stopped here.
BOUND = 150


def run_script(tmp_path: Path, source: str, *args: str) -> str:
    """Run ``source`` as a script; fail if it hangs, fails or leaks; return stdout."""
    script = tmp_path / "script.py"
    script.write_text(source)
    try:
        done = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            timeout=BOUND,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"the script hung; its output so far: {expired.stdout!r}")
    assert done.returncode == 0, done.stderr
    assert "leak" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


QUEUE_SCRIPT = """
import os, queue, signal, sys
import unirun

def produce(q, size):
    q.put(os.getpid())
    i = 0
    while True:
        q.put((i, bytes([i % 251]) * size))
        i += 1

def check(item, size):
    if isinstance(item, int):  # the producer's pid
        return
    index, payload = item
    assert payload == bytes([index % 251]) * size, "a damaged item"

if __name__ == "__main__":
    trials = int(sys.argv[1])
    with unirun.ProcessExecutor(max_workers=1) as ex:
        for trial in range(trials):
            size = (64, 5000, 300_000)[trial % 3]
            q = ex.Queue(maxsize=(0, 4)[trial % 2])
            if trial % 4 == 3:  # killed by its own time-out, mid-put
                future = ex.options(timeout=0.5).submit(produce, q, size)
            else:  # killed from outside, mid-put or mid-wait for room
                future = ex.submit(produce, q, size)
                pid = q.get(timeout=30)
                for _ in range(20):
                    check(q.get(timeout=30), size)
                os.kill(pid, signal.SIGKILL)
            while not future.done():
                try:
                    check(q.get(timeout=0.5), size)
                except queue.Empty:
                    pass
            assert isinstance(future.exception(), unirun.UnirunError)
            while True:  # every item that made it in is whole
                try:
                    check(q.get(timeout=0.2), size)
                except queue.Empty:
                    break
            q.put("after", timeout=2)
            assert q.get(timeout=2) == "after"
            print("trial", trial, "ok", flush=True)
    print("done")
"""


def test_a_queue_survives_writers_killed_mid_put_gh12(tmp_path: Path) -> None:
    """Regression (#12 #6): a producer killed while it held the queue's mutex
    left ``get(timeout=...)`` blocked forever in the parent."""
    out = run_script(tmp_path, QUEUE_SCRIPT, "24")
    assert out.splitlines()[-1] == "done"
    assert out.count(" ok") == 24


OTHERS_SCRIPT = """
import os, signal, sys, threading, time
import unirun

def hammer(kind, primitive, started):
    started.put(os.getpid())
    i = 0
    while True:
        i += 1
        if kind == "dict":
            primitive[i % 20] = (i % 20, bytes([i % 20]) * (i % 2000))
            primitive.pop((i + 7) % 20, None)
        elif kind == "event":
            primitive.set()
            primitive.clear()
        elif kind == "barrier":
            try:
                primitive.wait(timeout=0.01)
            except threading.BrokenBarrierError:
                primitive.reset()
        elif kind == "condition":
            with primitive:
                primitive.wait(timeout=0.001)

if __name__ == "__main__":
    kinds = sys.argv[1:]
    with unirun.ProcessExecutor(max_workers=2) as ex:
        for kind in kinds:
            for trial in range(6):
                primitive = {
                    "dict": ex.Dict,
                    "event": ex.Event,
                    "barrier": lambda: ex.Barrier(3),
                    "condition": lambda: ex.Condition(ex.Lock()),
                }[kind]()
                started = ex.Queue()
                future = ex.submit(hammer, kind, primitive, started)
                victim = started.get(timeout=30)
                time.sleep(0.01 * trial)  # a different moment each time
                os.kill(victim, signal.SIGKILL)
                assert isinstance(future.exception(timeout=60), unirun.UnirunError)
                if kind == "dict":
                    for key, value in primitive.items():
                        assert value == (key, bytes([key]) * len(value[1]))
                    primitive["after"] = 1
                    assert primitive.pop("after") == 1
                elif kind == "event":
                    primitive.clear()
                    assert primitive.wait(timeout=0.1) is False
                    primitive.set()
                    assert primitive.wait(timeout=0.1) is True
                elif kind == "barrier":
                    try:
                        primitive.wait(timeout=0.1)
                    except threading.BrokenBarrierError:
                        pass
                    primitive.reset()
                    assert primitive.n_waiting == 0
                elif kind == "condition":
                    if primitive.acquire(timeout=0.5):  # a dead holder keeps it
                        assert primitive.wait(timeout=0.1) is False
                        primitive.notify_all()
                        primitive.release()
                print(kind, trial, "ok", flush=True)
    print("done")
"""


@pytest.mark.parametrize("kind", ["dict", "event", "barrier", "condition"])
def test_other_primitives_survive_users_killed_mid_operation(
    tmp_path: Path, kind: str
) -> None:
    out = run_script(tmp_path, OTHERS_SCRIPT, kind)
    assert out.splitlines()[-1] == "done"
    assert out.count(" ok") == 6


# -- in this process --------------------------------------------------------------


@pytest.fixture
def process_ex() -> Iterator[BaseExecutor]:
    """A small process executor."""
    ex = make_executor("process")
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def test_a_lock_held_by_a_dead_process_still_times_out(
    process_ex: BaseExecutor,
) -> None:
    """As with multiprocessing, the lock stays held; a timed acquire says so."""
    lock = process_ex.Lock()
    holder = process_ex.Queue()
    future = process_ex.submit(_hold_forever, lock, holder)
    os.kill(holder.get(timeout=60), signal.SIGKILL)
    assert isinstance(future.exception(timeout=60), unirun.WorkerCrashedError)
    assert lock.acquire(timeout=0.1) is False
    assert lock.locked()


def test_waits_at_a_barrier_a_party_died_inside_end_at_their_time_out(
    process_ex: BaseExecutor,
) -> None:
    """The dead party never leaves: its count stays. After the documented
    reset(), a wait with a time-out waited for ever for the reset to clear;
    now it fails at its time-out, as every wait at that barrier does."""
    barrier = process_ex.Barrier(3, timeout=60)
    inside = process_ex.Queue()
    future = process_ex.submit(_wait_at_barrier, barrier, inside)
    pid = inside.get(timeout=60)
    deadline = time.monotonic() + 60
    while barrier.n_waiting < 1:  # the party is inside wait() before it dies
        assert time.monotonic() < deadline
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    assert isinstance(future.exception(timeout=60), unirun.WorkerCrashedError)
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.2)  # the third never comes: this one breaks it
    barrier.reset()
    with pytest.raises(threading.BrokenBarrierError):
        barrier.wait(0.2)  # the dead party is still counted, and never leaves


def test_a_notification_taken_by_a_waiter_that_died_reaches_a_live_one(
    process_ex: BaseExecutor,
) -> None:
    """The docs' fault table: a notification picked for a waiter that dies
    before it wakes reaches a live waiter within 100 ms (it was lost: the live
    waiter slept to its time-out)."""
    cond = process_ex.Condition()
    inside = process_ex.Queue()
    future = process_ex.submit(_wait_on_condition, cond, inside)
    pid = inside.get(timeout=60)
    live_inside, got = threading.Event(), []

    def live_waiter() -> None:
        with cond:  # taken once the task waits (it let go of the lock)
            live_inside.set()
            got.append(cond.wait(60))

    thread = threading.Thread(target=live_waiter)
    thread.start()
    assert live_inside.wait(60)
    _stop_outside_the_mutex(cond, pid)  # it cannot wake to take what it is given
    try:
        with cond:  # taken once the live waiter is in line too
            cond.notify()  # the oldest waiter: the task's
    finally:
        os.kill(pid, signal.SIGKILL)
    assert isinstance(future.exception(timeout=60), unirun.WorkerCrashedError)
    thread.join(60)
    assert got == [True]


def test_a_dead_waiter_s_notification_never_reaches_a_later_waiter(
    process_ex: BaseExecutor,
) -> None:
    """Only a waiter that was there when it was given: after a notify_all()
    that the task's waiter alone took, and died with, a waiter that comes
    later waits to its time-out, as with threading."""
    cond = process_ex.Condition()
    inside = process_ex.Queue()
    future = process_ex.submit(_wait_on_condition, cond, inside)
    pid = inside.get(timeout=60)
    with cond:  # taken once the task waits (it let go of the lock)
        pass
    _stop_outside_the_mutex(cond, pid)
    try:
        with cond:
            cond.notify_all()
    finally:
        os.kill(pid, signal.SIGKILL)
    assert isinstance(future.exception(timeout=60), unirun.WorkerCrashedError)
    with cond:
        assert cond.wait(1.0) is False  # it looked at the dead slot ten times


def _stop_outside_the_mutex(cond: unirun.Condition, pid: int) -> None:
    """SIGSTOP process ``pid``, waiting on ``cond``, at a moment it does not hold
    the condition's internal mutex (it takes it to look, once a slice)."""
    monitor = cond._monitor  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while True:
        os.kill(pid, signal.SIGSTOP)
        if monitor.acquire(time.monotonic() + 0.05):
            monitor.release()
            return
        os.kill(pid, signal.SIGCONT)  # stopped holding it: let it go on
        assert time.monotonic() < deadline


def _wait_on_condition(cond: unirun.Condition, inside: unirun.Queue[int]) -> None:
    with cond:
        inside.put(os.getpid())
        cond.wait()


def _wait_at_barrier(barrier: unirun.Barrier, inside: unirun.Queue[int]) -> None:
    inside.put(os.getpid())
    barrier.wait()


def _hold_forever(lock: unirun.Lock, holder: unirun.Queue[int]) -> None:
    lock.acquire()
    holder.put(os.getpid())
    threading.Event().wait()


def _interrupt_after(seconds: float) -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signals reach the main thread only",
)
@pytest.mark.parametrize("kind", ["thread", "process"])
def test_ctrl_c_in_a_condition_or_barrier_wait_leaves_them_whole(kind: str) -> None:
    ex = make_executor(kind)
    previous = signal.getsignal(signal.SIGALRM)
    try:
        cond = ex.Condition()
        barrier = ex.Barrier(2)
        with cond:
            _interrupt_after(0.05)
            with pytest.raises(KeyboardInterrupt):
                cond.wait()
            assert cond.wait(0) is False  # still usable, lock held again
        _interrupt_after(0.05)
        with pytest.raises(KeyboardInterrupt):
            barrier.wait()
        assert barrier.n_waiting == 0
        assert not barrier.broken
        other = threading.Thread(target=barrier.wait)
        other.start()
        assert barrier.wait(timeout=30) in (0, 1)
        other.join()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        ex.shutdown()


DOORBELL_SCRIPT = """
import gc, os, re, signal, sys, threading
import unirun

def wait_and_die(condition, started, moment):
    from multiprocessing import resource_tracker
    from unirun._sync import doorbells

    def stop(*args):
        started.put(os.getpid())
        threading.Event().wait()  # killed here, the condition's mutex held

    if moment == "counted":  # before the slot's doorbell is made
        doorbells.Doorbells.drain = stop
    elif moment == "made":  # made, before the resource tracker hears of it
        resource_tracker.register = stop
    else:  # made and registered
        drain = doorbells.Doorbells.drain
        doorbells.Doorbells.drain = lambda *args: (drain(*args), stop())
    with condition:
        condition.wait()

if __name__ == "__main__":
    with unirun.ProcessExecutor(max_workers=1) as ex:
        condition = ex.Condition(ex.Lock())
        started = ex.Queue()
        future = ex.submit(wait_and_die, condition, started, sys.argv[1])
        os.kill(started.get(timeout=60), signal.SIGKILL)
        assert isinstance(future.exception(timeout=60), unirun.WorkerCrashedError)
        del condition
        gc.collect()  # its creator removes its doorbells now
        mine = re.compile(rf"sem[.]unirun-{os.getpid()}-[0-9a-f]+[.][0-9]+$")
        doorbells = [name for name in os.listdir("/dev/shm") if mine.match(name)]
        assert not doorbells, doorbells
    print("done")
"""


@pytest.mark.parametrize("moment", ["counted", "made", "registered"])
def test_a_waiter_killed_as_its_doorbell_is_made_leaks_nothing(
    tmp_path: Path, moment: str
) -> None:
    """A waiter killed just after making its slot's doorbell left it behind (for
    the resource tracker, which warned of a leaked semaphore at exit, or for
    good if it was not registered yet); nor may the tracker be told to forget a
    name it never had, which it reports with a traceback."""
    out = run_script(tmp_path, DOORBELL_SCRIPT, moment)
    assert out.splitlines()[-1] == "done"
