"""A future's way without its lock, for the thread that owns it (``_owned.py``)."""

from __future__ import annotations

import _thread
import asyncio
import concurrent.futures as cf
import random
import threading
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from conftest import run_python_file
from unirun._future import Future

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class CountingLock:
    """An RLock that counts its acquisitions."""

    def __init__(self) -> None:
        self.inner = _thread.RLock()
        self.taken = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        self.taken += 1
        return self.inner.acquire(blocking, timeout)

    def release(self) -> None:
        self.inner.release()

    __enter__ = acquire

    def __exit__(self, *_: object) -> None:
        self.release()

    def _is_owned(self) -> bool:
        return self.inner._is_owned()  # type: ignore[attr-defined,no-any-return]

    def _release_save(self) -> Any:
        return self.inner._release_save()  # type: ignore[attr-defined]

    def _acquire_restore(self, state: Any) -> None:
        self.taken += 1
        self.inner._acquire_restore(state)  # type: ignore[attr-defined]


def owned(lock: CountingLock | None = None) -> Future[Any]:
    """A future this thread owns (with ``lock`` as its lock, if given)."""
    future: Future[Any] = Future(owner=threading.get_ident())
    if lock is not None:
        future._lock = lock  # type: ignore[assignment]
    return future


def record(calls: list[str], tag: object) -> Callable[[Future[Any]], None]:
    """A callback that records its tag and the outcome it sees."""

    def callback(done: Future[Any]) -> None:
        calls.append(f"{tag}:{done.cancelled() or done.result()}")

    return callback


def sealed(future: Future[Any]) -> bool:
    """Whether every change of the future's state takes its lock now."""
    return future._owner is None


def in_thread(call: Any) -> Any:
    """What ``call()`` returns, called on another thread."""
    with cf.ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=60)


def test_the_owner_starts_and_finishes_it_without_the_lock() -> None:
    lock = CountingLock()
    future = owned(lock)
    seen: list[int] = []
    future.add_done_callback(lambda done: seen.append(done.result()))
    assert future._start_owned()
    assert future.running()
    assert future._set_result_owned(7)
    assert (seen, future.result(), lock.taken) == ([7], 7, 0)
    assert not sealed(future)  # never sealed


def test_an_owned_future_has_no_lock_until_another_thread_needs_one() -> None:
    future = owned()
    assert future._start_owned()
    future.add_done_callback(lambda _: None)
    assert future._lock is None
    assert not in_thread(future.cancel)  # running: the stdlib's answer
    assert isinstance(future._lock, type(_thread.RLock()))


def first_use(future: Future[Any], go: threading.Barrier, seen: list[int]) -> None:
    """Add a callback once every thread is ready; note the lock it took."""
    go.wait()
    future.add_done_callback(lambda _: None)
    seen.append(id(future._lock))


def test_threads_that_first_need_the_lock_at_once_share_one() -> None:
    for _ in range(50):
        future = owned()
        go = threading.Barrier(4)
        seen: list[int] = []
        threads = [
            threading.Thread(target=first_use, args=(future, go, seen))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(seen) == 4
        assert len(set(seen)) == 1
        assert id(future._lock) == seen[0]


def test_another_thread_seals_it_and_the_owner_then_takes_the_lock() -> None:
    lock = CountingLock()
    future = owned(lock)
    assert future._start_owned()
    assert not in_thread(future.done)  # reading the state seals nothing
    assert not sealed(future)
    future.add_done_callback(lambda _: None)  # the owner's own: still unsealed
    assert lock.taken == 0
    in_thread(lambda: future.add_done_callback(lambda _: None))
    assert sealed(future)  # sealed
    taken = lock.taken
    assert future._set_result_owned(1)
    assert lock.taken > taken
    assert future.result() == 1


def test_a_thread_waiting_in_result_is_woken_by_the_owner() -> None:
    for _ in range(50):
        future = owned()
        assert future._start_owned()
        waiting = threading.Event()

        def wait(future: Future[Any], waiting: threading.Event) -> Any:
            waiting.set()
            return future.result(timeout=60)

        with cf.ThreadPoolExecutor(1) as pool:
            result = pool.submit(wait, future, waiting)
            waiting.wait(60)
            assert future._set_result_owned("done")
            assert result.result(timeout=60) == "done"


def test_stdlib_wait_sees_an_owned_future_finish() -> None:
    future = owned()
    assert future._start_owned()
    with cf.ThreadPoolExecutor(1) as pool:
        waited = pool.submit(cf.wait, [future], 60)
        while future._owner is not None and not waited.done():
            threading.Event().wait(0.001)  # until wait() has sealed it
        assert future._set_result_owned(3)
        done, not_done = waited.result(timeout=60)
    assert (done, not_done) == ({future}, set())


def test_a_seal_waits_while_the_owner_holds_the_token() -> None:
    future = owned()
    del future._fast  # the owner is inside one of its steps
    cancelled: list[bool] = []
    other = threading.Thread(target=lambda: cancelled.append(future.cancel()))
    other.start()
    other.join(0.2)
    # Nothing happened meanwhile, however long the thread has run.
    assert other.is_alive()
    assert (cancelled, future._state) == ([], "PENDING")
    future._fast = True  # the step ends
    other.join(60)
    assert cancelled == [True]
    assert future.cancelled()
    assert sealed(future)


def test_the_owner_sealing_from_within_its_own_step_does_not_wait_for_itself() -> None:
    # A signal handler or a finalizer run inside one of the owner's steps.
    future = owned()
    del future._fast
    assert future.cancel()  # returns at once
    assert sealed(future)
    # The step then ends without setting the token again, so the lock's way
    # stays the only one.
    assert not future._start_owned()
    assert not hasattr(future, "_fast")


def test_a_future_cancelled_by_another_thread_never_starts() -> None:
    future = owned()
    assert in_thread(future.cancel)
    assert not future._start_owned()
    assert future._state == "CANCELLED_AND_NOTIFIED"
    assert not future._set_result_owned(1)
    with pytest.raises(cf.CancelledError):
        future.result()


def test_a_running_future_cancelled_by_another_thread_keeps_that_outcome() -> None:
    future = owned()
    assert future._start_owned(lambda _: True)  # a stopper that agrees
    assert in_thread(future.cancel)
    assert not future._set_result_owned(1)
    assert future.cancelled()


def test_every_callback_runs_once_whoever_adds_it() -> None:
    # The owner finishes futures while other threads add callbacks, cancel and
    # wait: each callback runs exactly once, after the outcome is set.
    rounds, threads = 300, 3
    futures = [owned() for _ in range(rounds)]
    calls: list[list[str]] = [[] for _ in range(rounds)]
    added: list[list[str]] = [["owner"] for _ in range(rounds)]
    go = threading.Barrier(threads + 1)

    def meddle(seed: int) -> None:
        chance = random.Random(seed)
        go.wait()
        for index in chance.sample(range(rounds), rounds):
            future = futures[index]
            action = chance.choice(("callback", "cancel", "wait", "done"))
            if action == "callback":
                added[index].append(str(seed))
                future.add_done_callback(record(calls[index], seed))
            elif action == "cancel":
                future.cancel()
            elif action == "wait":
                cf.wait([future], timeout=0)
            else:
                future.done()

    others = [threading.Thread(target=meddle, args=(seed,)) for seed in range(threads)]
    for thread in others:
        thread.start()
    go.wait()
    for index, future in enumerate(futures):
        future.add_done_callback(record(calls[index], "owner"))
        if future._start_owned(lambda _: False):  # a stopper that refuses
            future._set_result_owned(index)
    for thread in others:
        thread.join(60)
    for index, future in enumerate(futures):
        assert future.done()
        outcome = True if future.cancelled() else index
        owner_calls = [call for call in calls[index] if call.startswith("owner:")]
        assert owner_calls == [f"owner:{outcome}"]
        assert sorted(call.split(":")[0] for call in calls[index]) == sorted(
            added[index]
        )  # each once
        assert all(call.endswith(f":{outcome}") for call in calls[index])


def test_an_event_loop_task_future_is_owned_by_the_loop() -> None:
    async def main() -> tuple[int | None, int]:
        async def noop() -> int:
            return 1

        async with unirun.CoroutineExecutor() as ex:
            future = ex.submit(noop)
            owner = future._owner
            await future
            return owner, threading.get_ident()

    owner, loop_thread = asyncio.run(main())
    assert owner == loop_thread


def test_loop_tasks_cancelled_and_awaited_from_other_threads_end_once() -> None:
    # Real loop tasks, finished by the loop, while threads cancel and wait.
    rounds = 400
    chance = random.Random(5)
    picks = [chance.choice(("cancel", "result", "callback")) for _ in range(rounds)]
    called = [0] * rounds

    async def step(i: int) -> int:
        await asyncio.sleep(0)
        return i

    async def main() -> list[Future[int]]:
        async with unirun.CoroutineExecutor() as ex:
            futures = [ex.submit(step, i) for i in range(rounds)]

            def meddle() -> None:
                for i, future in enumerate(futures):
                    if picks[i] == "cancel":
                        future.cancel()
                    elif picks[i] == "result":
                        try:
                            future.result(timeout=60)
                        except cf.CancelledError:
                            pass
                    else:

                        def count(_: object, i: int = i) -> None:
                            called[i] += 1

                        future.add_done_callback(count)

            await asyncio.to_thread(meddle)
            return futures

    futures = asyncio.run(main())
    for i, future in enumerate(futures):
        assert future.done()
        if not future.cancelled():
            assert future.result() == i
        if picks[i] == "callback":
            assert called[i] == 1


def test_a_future_submitted_from_another_thread_is_owned_by_the_loop() -> None:
    async def where() -> int:
        return threading.get_ident()

    with unirun.CoroutineExecutor() as ex:
        loop_thread = ex.submit(where).result(timeout=60)  # the loop starts
        future = ex.submit(where)
        assert future._owner == loop_thread
        assert future.result(timeout=60) == loop_thread
        futures = [ex.submit(where) for _ in range(200)]
        assert [f.result(timeout=60) for f in futures] == [loop_thread] * 200


WATCHDOG = """
import os, sys, threading
def _give_up():
    print("hung", file=sys.stderr, flush=True)
    os._exit(3)
_timer = threading.Timer(30, _give_up)
_timer.daemon = True
_timer.start()
"""


def test_stdlib_wait_over_futures_of_one_executor_and_others_never_deadlocks(
    tmp_path: Path,
) -> None:
    # concurrent.futures.wait() takes each future's lock in the order of their
    # ids: safe only while no two futures share a lock. Two threads wait on
    # interleaved sets of this executor's futures and a stdlib one.
    script = tmp_path / "interleaved.py"
    script.write_text(
        WATCHDOG
        + """
import bisect, concurrent.futures as cf, sys, time
import unirun

sys.setswitchinterval(1e-6)

async def noop():
    return 1

def interleaved(ours, theirs):
    # Two of ours and one of theirs between them, by id; None if none is.
    ours = sorted(ours, key=id)
    ids = [id(future) for future in ours]
    for x in theirs:
        i = bisect.bisect(ids, id(x))
        if 0 < i < len(ids):
            return ours[i - 1], x, ours[i]
    return None

with unirun.CoroutineExecutor() as ex:
    # Where the allocator puts each kind is its own business: make both, in
    # turns, until one of theirs lies between two of ours (all kept alive).
    ours, theirs, found = [], [], None
    for _ in range(200):
        ours += [ex.submit(noop) for _ in range(50)]
        theirs += [cf.Future() for _ in range(50)]
        found = interleaved(ours, theirs)
        if found:
            break
    assert found, "no interleaving of ids in 10,000 futures of each kind"
    first, other, second = found
    cf.wait([first, second], timeout=60)
    other.set_result(0)
    stop = time.monotonic() + 1

    def wait_often(futures):
        while time.monotonic() < stop:
            cf.wait(futures, timeout=0)

    with cf.ThreadPoolExecutor(2) as pool:
        runs = [
            pool.submit(wait_often, [first, other, second]),
            pool.submit(wait_often, [other, second]),
        ]
        for run in runs:
            run.result()
_timer.cancel()
"""
    )
    run_python_file(script)


def test_a_seal_within_a_seal_on_the_same_thread_returns(tmp_path: Path) -> None:
    # A signal handler landing as cancel() starts sealing the future, and
    # cancelling it too: the outer seal finds it sealed, and returns.
    script = tmp_path / "nested.py"
    script.write_text(
        WATCHDOG
        + """
import sys, threading
from unirun._future import Future

future = Future(owner=threading.get_ident())
fired = []

def tracer(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "_seal" and not fired:
        fired.append(True)
        assert future.cancel()  # what the signal handler does
    return None

sys.settrace(tracer)
outer = future.cancel()
sys.settrace(None)
assert fired and outer and future.cancelled(), (fired, outer, future)
_timer.cancel()
"""
    )
    run_python_file(script)
