"""The short-call lane: auto never runs a submitted call inside ``submit``.

A call judged too short for a hand-off of its own runs back to back with other
short calls on a thread of the pool; one that blocks never holds the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import io
import threading
import time
import types
import weakref
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import unirun
from unirun._auto.classify import Verdict
from unirun._auto.lane import STILL_CHECKS, Lane
from unirun._auto.verdicts import Entry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def short(facts: Any, costs: Any) -> Verdict:
    """A classifier that judges every sync callable too short for a hand-off."""
    return Verdict("inline", "scripted", 1e-5, 1e-5, 1.0, 1.0, None, None, 1)


@pytest.fixture
def auto(monkeypatch: pytest.MonkeyPatch) -> Iterator[unirun.AutoExecutor]:
    monkeypatch.setattr("unirun._auto.verdicts.classify", short)
    # No max_workers: the front's fast path to the lane is taken only without.
    executor = unirun.AutoExecutor()
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def judged_short(auto: unirun.AutoExecutor, fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn`` once (its probe) so that later calls take the lane."""
    auto.submit(fn, *args).result(timeout=60)
    verdict = auto.explain(fn)
    assert verdict is not None
    assert verdict.backend == "inline"


def wait_for(event: threading.Event, signal: threading.Event | None = None) -> bool:
    """Set ``signal`` (if any), then wait for ``event``; return whether it came."""
    if signal is not None:
        signal.set()
    return event.wait(30)


def ident() -> int:
    return threading.get_ident()


def test_submit_returns_before_a_short_call_that_waits_for_the_caller(
    auto: unirun.AutoExecutor,
) -> None:
    # The first call found its event set and was judged short. The next one
    # waits for an event its caller sets only after submit returns: run inside
    # submit, it blocked the caller for its whole time-out (or for ever).
    ready = threading.Event()
    ready.set()
    judged_short(auto, wait_for, ready)
    later = threading.Event()
    future = auto.submit(wait_for, later)
    later.set()
    assert future.result(timeout=60) is True


def test_short_calls_run_on_a_thread_of_the_pool(auto: unirun.AutoExecutor) -> None:
    judged_short(auto, ident)
    futures = [auto.submit(ident) for _ in range(50)]
    idents = {future.result(timeout=60) for future in futures}
    assert threading.get_ident() not in idents


def test_a_blocked_short_call_does_not_hold_the_calls_behind_it(
    auto: unirun.AutoExecutor,
) -> None:
    ready = threading.Event()
    ready.set()
    judged_short(auto, wait_for, ready)
    release, started = threading.Event(), threading.Event()
    blocked = auto.submit(wait_for, release, started)
    assert started.wait(30)  # the lane's thread is inside the blocked call now
    # Queued behind it in the lane; it releases the blocked call once it runs.
    releaser = auto.submit(wait_for, ready, release)
    assert releaser.result(timeout=60) is True
    assert blocked.result(timeout=60) is True


@pytest.mark.parametrize("wait", [True, False])
def test_shutdown_lets_a_blocked_short_call_be_released_by_one_behind_it(
    monkeypatch: pytest.MonkeyPatch, wait: bool
) -> None:
    # The rescue of a blocked call takes a thread from the pool: the pool must
    # not close while calls are in the lane.
    monkeypatch.setattr("unirun._auto.verdicts.classify", short)
    ex = unirun.AutoExecutor(max_workers=4)
    ready = threading.Event()
    ready.set()
    judged_short(ex, wait_for, ready)
    release, started = threading.Event(), threading.Event()
    blocked = ex.submit(wait_for, release, started)
    assert started.wait(30)
    releaser = ex.submit(wait_for, ready, release)
    closing = threading.Thread(target=ex.shutdown, args=(wait,))
    closing.start()
    closing.join(60)
    assert not closing.is_alive()
    assert blocked.result(timeout=60) is True
    assert releaser.result(timeout=60) is True


def test_statistics_count_each_short_call_once(auto: unirun.AutoExecutor) -> None:
    judged_short(auto, ident)
    before = auto.statistics()
    for future in [auto.submit(ident) for _ in range(200)]:
        future.result(timeout=60)
    after = auto.statistics()
    assert after.submitted - before.submitted == 200
    assert after.done - before.done == 200
    assert after.queued == after.running == 0


def test_short_calls_keep_their_errors_and_await_returned_coroutines(
    auto: unirun.AutoExecutor,
) -> None:
    def fail(value: int) -> int:
        raise ValueError(value)

    async def twice(value: int) -> int:
        return 2 * value

    def deferred(value: int) -> Any:
        return twice(value)  # a sync callable that returns a coroutine

    for fn in (fail, deferred):
        auto.submit(fn, 0).exception(timeout=60)
    with pytest.raises(ValueError, match="7"):
        auto.submit(fail, 7).result(timeout=60)
    assert auto.submit(deferred, 21).result(timeout=60) == 42


def test_short_calls_run_where_the_initializer_ran(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("unirun._auto.verdicts.classify", short)
    local = threading.local()

    def setup() -> None:
        local.ready = True

    def initialized() -> bool:
        return getattr(local, "ready", False)

    with unirun.AutoExecutor(initializer=setup) as ex:
        judged_short_calls = [ex.submit(initialized) for _ in range(20)]
        assert all(f.result(timeout=60) for f in judged_short_calls)
        assert ex.explain(initialized) is not None


def test_a_done_callback_that_raises_system_exit_leaves_the_lane_running(
    auto: unirun.AutoExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    # As on ThreadPoolExecutor: the worker logs it and ends; the calls behind
    # it still run, and shutdown returns.
    ready = threading.Event()
    ready.set()
    judged_short(auto, wait_for, ready)
    judged_short(auto, ident)
    release, started = threading.Event(), threading.Event()
    first = auto.submit(wait_for, release, started)

    def escape(_: object) -> None:
        raise SystemExit("from a done-callback")

    first.add_done_callback(escape)
    assert started.wait(30)
    behind = [auto.submit(ident) for _ in range(5)]
    release.set()
    assert first.result(timeout=60) is True
    assert len({f.result(timeout=60) for f in behind}) >= 1
    deadline = time.monotonic() + 30
    while "Exception in worker" not in caplog.text:  # logged by the worker, next
        assert time.monotonic() < deadline
        time.sleep(0.01)
    closing = threading.Thread(target=auto.shutdown)
    closing.start()
    closing.join(60)
    assert not closing.is_alive()


def test_calls_held_behind_a_probe_end_cancelled_when_shutdown_cancels_them(
    auto: unirun.AutoExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # shutdown(cancel_futures=True) closed the pools while calls taken out to
    # be routed were on their way: each failed with "cannot schedule new
    # futures after shutdown" instead of ending cancelled.
    router = auto._router
    probe_started, release = threading.Event(), threading.Event()

    def probe_then_wait(x: int) -> int:
        if x == 0:
            probe_started.set()
            release.wait(30)
        return x

    first = auto.submit(probe_then_wait, 0)  # the probe: the rest are held
    assert probe_started.wait(30)
    held = [auto.submit(probe_then_wait, i) for i in range(1, 6)]
    submit = Lane.submit

    def closed_on_the_way(self: Lane, *args: Any) -> Any:
        router._cancelling = True  # as shutdown(cancel_futures=True) does
        raise RuntimeError("cannot schedule new futures after shutdown")

    monkeypatch.setattr(Lane, "submit", closed_on_the_way)
    release.set()
    assert first.result(timeout=60) == 0
    assert unirun.wait(held, timeout=60).not_done == set()
    assert all(f.cancelled() for f in held)
    monkeypatch.setattr(Lane, "submit", submit)
    assert auto.statistics().cancelled >= len(held)


EXIT_SCRIPT = """
import threading, time
import unirun
import unirun._auto.verdicts as verdicts
from unirun._auto.classify import Verdict

verdicts.classify = lambda facts, costs: Verdict(
    "inline", "scripted", 1e-5, 1e-5, 1.0, 1.0, None, None, 1)
start = time.monotonic()
def wait_for(event): return event.wait(10)
def set_it(event): event.set(); return "set"
ex = unirun.AutoExecutor(max_workers=4)
ready = threading.Event(); ready.set()
ex.submit(wait_for, ready).result(); ex.submit(set_it, threading.Event()).result()
gate = threading.Event()
a = ex.submit(wait_for, gate)
b = ex.submit(set_it, gate)
{close}
threading.Thread(target=lambda: print(
    a.result(), b.result(), round(time.monotonic() - start), flush=True)).start()
"""


@pytest.mark.parametrize("close", ["ex.shutdown(wait=False)", "del ex"])
def test_a_blocked_short_call_is_rescued_while_the_interpreter_exits(
    close: str,
) -> None:
    # The script ends at once: the pool refuses new jobs while the interpreter
    # exits, and the rescue of the blocked call took one from it.
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT.replace("{close}", close)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.split()[:2] == ["True", "set"], child.stdout


# -- the lane alone, on a pool that runs its jobs when the test says ----------------


class ScriptedPool:
    """Takes the lane's drainers and checks; runs them when told."""

    _max_workers = 3
    _broken = False

    def __init__(self) -> None:
        self.jobs: list[Any] = []
        self.checks: list[Callable[[], None]] = []

    def _run_job(self, job: Any) -> None:
        self.jobs.append(job)

    def _call_at(self, deadline: float, callback: Callable[[], None]) -> None:
        self.checks.append(callback)

    def check(self) -> None:
        self.checks.pop(0)()


def scripted_lane() -> tuple[Lane, ScriptedPool]:
    pool = ScriptedPool()
    return Lane(lambda: pool, None, lambda: 1e-4), pool  # type: ignore[arg-type,return-value]


def entry() -> Entry:
    """An entry for calls whose callable does not matter."""
    return Entry(None)


@contextlib.contextmanager
def blocked_drainer(lane: Lane, pool: ScriptedPool) -> Iterator[threading.Event]:
    """A drainer running (in a thread) inside a call that waits for the event
    yielded; it ends once the event is set and the lane is empty."""
    release, inside = threading.Event(), threading.Event()
    lane.submit(wait_for, (release, inside), {}, entry())
    drainer = threading.Thread(target=pool.jobs.pop().run)
    drainer.start()
    assert inside.wait(30)
    try:
        yield release
    finally:
        release.set()
        drainer.join(30)


def echo(value: int) -> int:
    return value


@pytest.mark.parametrize("cancel_futures", [False, True])
def test_short_calls_racing_shutdown_all_end(
    auto: unirun.AutoExecutor, cancel_futures: bool
) -> None:
    # A short call seen before skips routing (the front's fast path) and goes
    # straight to the lane: one accepted while shutdown runs must still end,
    # run or cancelled, by the time shutdown returns; after it, submit refuses.
    judged_short(auto, echo, 0)
    futures: list[unirun.Future[int]] = []
    refused: list[BaseException] = []
    going = threading.Event()

    def submitter() -> None:
        try:
            while True:
                futures.append(auto.submit(echo, len(futures)))
                if len(futures) == 200:
                    going.set()
        except RuntimeError as exc:
            refused.append(exc)

    thread = threading.Thread(target=submitter)
    thread.start()
    try:
        assert going.wait(30)
        auto.shutdown(wait=True, cancel_futures=cancel_futures)
        pending = [f for f in futures if not f.done()]
    finally:
        thread.join(30)
    assert refused
    assert "shutdown" in str(refused[0])
    # The last future may be appended while shutdown returns: it is not pending
    # once the submitter has seen the refusal.
    assert pending in ([], futures[-1:])
    assert all(f.done() for f in futures)
    for index, future in enumerate(futures):
        assert future.cancelled() or future.result(timeout=0) == index


def test_a_short_call_that_races_shutdown_is_refused_once_it_returned(
    auto: unirun.AutoExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fast path reads the front's shutdown flag without its lock; a call
    # that passed it just before shutdown(cancel_futures=True) must not be
    # queued once that shutdown has returned (a drainer still running would
    # have run it, after the pending calls were cancelled).
    release, inside, ready = threading.Event(), threading.Event(), threading.Event()
    ready.set()
    judged_short(auto, wait_for, ready, None)
    blocked = auto.submit(wait_for, release, inside)  # routed: known from now
    assert inside.wait(30)  # the lane's drainer is busy with it
    lane = auto._router.lane
    passed, resume = threading.Event(), threading.Event()
    real = lane.submit_known

    def paused(*call: Any) -> Any:
        if threading.current_thread().name == "late":
            passed.set()  # past the front's shutdown check
            assert resume.wait(30)
        return real(*call)

    monkeypatch.setattr(lane, "submit_known", paused)
    outcome: list[object] = []

    def late() -> None:
        try:
            outcome.append(auto.submit(wait_for, release))
        except RuntimeError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=late, name="late")
    thread.start()
    try:
        assert passed.wait(30)
        auto.shutdown(wait=False, cancel_futures=True)
    finally:
        resume.set()
        thread.join(30)
        release.set()
    assert blocked.result(timeout=60) is True
    (result,) = outcome
    assert isinstance(result, RuntimeError), result
    assert "shutdown" in str(result)


class Holder:
    """An object whose methods auto runs."""

    def value(self) -> int:
        return 1

    async def async_value(self) -> int:
        return 2


def let_go(refs: list[weakref.ref[Any]]) -> list[object]:
    """What ``refs`` still reach once collected; the thread that ran the last
    call drops it an instant after handing back its result, so a loaded machine
    may hold it a little longer (up to 30 s, then it was kept)."""
    deadline = time.monotonic() + 30
    while True:
        gc.collect()
        alive = [ref() for ref in refs]
        if all(obj is None for obj in alive) or time.monotonic() > deadline:
            return alive
        time.sleep(0.01)


def test_auto_keeps_no_object_whose_method_it_ran(auto: unirun.AutoExecutor) -> None:
    # Calls seen before take a fast path, kept by their function: a bound
    # method kept as such would keep its object alive (as would the GIL
    # monitor's last probe, which holds the call).
    holder = Holder()
    ref = weakref.ref(holder)
    for _ in range(3):  # probed, then routed, then the fast path
        assert auto.submit(holder.value).result(timeout=60) == 1
        assert auto.submit(holder.async_value).result(timeout=60) == 2
    assert auto.explain(Holder.value) is not None
    del holder
    assert let_go([ref]) == [None]


class Payload:
    """What a callable made for a call carries (a chunk of data, say)."""


class Carrier:
    """A callable object that carries a payload."""

    def __init__(self, payload: Payload) -> None:
        self.payload = payload

    def __call__(self) -> Payload:
        return self.payload


@dataclasses.dataclass(slots=True)
class SlottedCarrier:
    """A callable object that takes no weak reference (slots, no __weakref__)."""

    payload: Payload

    def __call__(self) -> Payload:
        return self.payload


def identity(payload: Payload) -> Payload:
    return payload


async def async_identity(payload: Payload) -> Payload:
    return payload


def made_for(payload: Payload) -> list[Callable[[], Any]]:
    """Callables made for one call each, as loops over data make them."""

    async def closure() -> Payload:
        return payload

    return [
        functools.partial(identity, payload),
        functools.partial(async_identity, payload),
        lambda: payload,
        closure,
        Carrier(payload),
        SlottedCarrier(payload),
    ]


def test_auto_keeps_no_callable_made_for_its_calls(auto: unirun.AutoExecutor) -> None:
    # Verdicts are kept by the callable's identity, without keeping it: a
    # partial, closure or callable object made for each call is let go once
    # its calls are done, and with it what it carries.
    payloads = []
    for _ in range(3):
        payload = Payload()
        payloads.append(weakref.ref(payload))
        for fn in made_for(payload):
            for _ in range(3):  # probed, then routed, then the fast path
                assert auto.submit(fn).result(timeout=60) is payload
        del payload, fn
    assert let_go(payloads) == [None, None, None]


def test_a_callable_the_table_let_go_is_not_routed_by_its_old_verdict(
    auto: unirun.AutoExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lane's fast path kept the entries the verdict table dropped: their
    # calls went on by a verdict that explain() no longer returned.
    monkeypatch.setattr("unirun._auto.cache.CACHE_SIZE", 8)
    judged_short(auto, ident)
    auto.submit(ident).result(timeout=60)  # routed, and now on the fast path
    assert auto._router.lane.known
    others = [functools.partial(int, value) for value in range(8)]
    for value, other in enumerate(others):  # the table is full: the oldest goes
        assert auto.submit(other).result(timeout=60) == value
    assert auto.explain(ident) is None
    assert auto.submit(ident).result(timeout=60) != threading.get_ident()
    verdict = auto.explain(ident)  # probed anew: known to the table again
    assert verdict is not None
    assert verdict.samples == 1


def test_a_c_method_bound_to_an_object_keeps_one_verdict(
    auto: unirun.AutoExecutor,
) -> None:
    # buf.getvalue is a new object at each access: known by BytesIO's method.
    buffers = [io.BytesIO(b"one"), io.BytesIO(b"two")]
    for buffer in buffers * 3:
        assert auto.submit(buffer.getvalue).result(timeout=60) == buffer.getvalue()
    verdict = auto.explain(buffers[0].getvalue)
    assert verdict is not None
    assert verdict.samples == 1  # one probe for all six calls
    assert auto.explain(buffers[1].getvalue) == verdict
    assert "?.BytesIO.getvalue" in auto.statistics().verdicts


def test_one_drainer_takes_a_burst_of_calls() -> None:
    lane, pool = scripted_lane()
    futures = [lane.submit(abs, (-i,), {}, entry()) for i in range(10)]
    assert len(pool.jobs) == 1
    pool.jobs.pop().run()
    assert [f.result(timeout=0) for f in futures] == list(range(10))


@pytest.mark.parametrize(
    ("seconds", "stale"),
    [
        ([0.0, 1.0, 0.0, 1.0, 0.0], False),  # each alone: the drainer lost the GIL
        ([0.0, 1.0, 1.0], True),  # twice in a row: the callable got slower
        ([1.0, 0.0, 1.0], False),
    ],
)
def test_two_long_calls_in_a_row_send_a_short_callable_back_to_probing(
    monkeypatch: pytest.MonkeyPatch, seconds: list[float], stale: bool
) -> None:
    clock = [0.0]  # the lane's perf_counter: each call moves it by its seconds

    def takes(value: float) -> float:
        clock[0] += value
        return value

    fake_time = types.SimpleNamespace(
        perf_counter=lambda: clock[0], monotonic=time.monotonic
    )
    monkeypatch.setattr("unirun._auto.lane.time", fake_time)
    lane, pool = scripted_lane()  # a short call's bar: 2 ms (20 x 0.1 ms)
    judged = entry()
    futures = [lane.submit(takes, (value,), {}, judged) for value in seconds]
    pool.jobs.pop().run()
    assert [f.result(timeout=0) for f in futures] == seconds
    assert judged.stale is stale


@pytest.mark.parametrize("fails", [False, True])
def test_the_revision_is_made_before_the_caller_hears_of_the_call(
    monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    # The caller's next submit, made as soon as the second long call's result
    # is out, must find the callable sent back to probing, not the lane again.
    clock = [0.0]

    def takes(value: float) -> float:
        clock[0] += value
        if fails:
            raise ValueError(value)
        return value

    fake_time = types.SimpleNamespace(
        perf_counter=lambda: clock[0], monotonic=time.monotonic
    )
    monkeypatch.setattr("unirun._auto.lane.time", fake_time)
    lane, pool = scripted_lane()
    judged = entry()
    seen: list[bool] = []
    lane.submit(takes, (1.0,), {}, judged)
    second = lane.submit(takes, (1.0,), {}, judged)
    second.add_done_callback(lambda _: seen.append(judged.stale))
    pool.jobs.pop().run()
    assert seen == [True]


def test_a_lane_that_does_not_move_gets_another_drainer() -> None:
    lane, pool = scripted_lane()
    with blocked_drainer(lane, pool):
        assert len(pool.checks) == 1  # armed as the drainer started
        for _ in range(STILL_CHECKS):
            pool.check()
        assert pool.jobs == []  # nothing waits: a long call alone is no stall
        waiting = lane.submit(abs, (-1,), {}, entry())
        for _ in range(STILL_CHECKS - 1):
            pool.check()
        assert pool.jobs == []  # a drainer may wait a while for the GIL
        pool.check()
        assert len(pool.jobs) == 1
        pool.jobs.pop().run()  # the calls behind the blocked one run
        assert waiting.result(timeout=0) == 1
        for _ in range(5):
            lane.submit(abs, (1,), {}, entry())
        for _ in range(STILL_CHECKS * 5):
            pool.check()
        # never more drainers than the pool has threads
        assert len(pool.jobs) == ScriptedPool._max_workers - 1


def test_a_lane_that_moves_gets_no_other_drainer() -> None:
    lane, pool = scripted_lane()
    with blocked_drainer(lane, pool):
        for _ in range(STILL_CHECKS * 2):
            lane.submit(abs, (1,), {}, entry())
            lane._ended += 1  # as a drainer does after each call
            pool.check()
        assert pool.jobs == []


def test_checks_stop_once_the_lane_is_idle() -> None:
    lane, pool = scripted_lane()
    with blocked_drainer(lane, pool):
        assert len(pool.checks) == 1
    pool.check()
    assert pool.checks == []  # idle: no check is left armed
    lane.submit(abs, (1,), {}, entry())
    assert pool.checks == []  # armed only once a drainer runs
    pool.jobs.pop().run()
    assert len(pool.checks) == 1


def test_cancel_pending_cancels_the_calls_not_started() -> None:
    lane, pool = scripted_lane()
    ran: list[int] = []
    futures = [lane.submit(ran.append, (i,), {}, entry()) for i in range(5)]
    lane.cancel_pending()
    pool.jobs.pop().run()
    assert all(f.cancelled() for f in futures)
    assert ran == []


def test_a_drainer_the_pool_cancels_or_fails_ends_the_calls_waiting() -> None:
    from concurrent.futures.thread import BrokenThreadPool

    lane, pool = scripted_lane()
    cancelled = lane.submit(abs, (1,), {}, entry())
    pool.jobs.pop().future.cancel()  # shutdown(cancel_futures=True)
    assert cancelled.cancelled()
    failed = lane.submit(abs, (1,), {}, entry())
    assert len(pool.jobs) == 1  # the lost drainer no longer counts
    broken = BrokenThreadPool("an initializer failed")
    pool.jobs.pop().future._set_exception_if_pending(broken)
    assert failed.exception(timeout=0) is broken


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["ok", "raise", "cancel"]), st.integers()),
        max_size=40,
    )
)
def test_every_call_ends_once_as_its_own_model_says(
    script: list[tuple[str, int]],
) -> None:
    # Model: each call not cancelled before it ran ends with its own result or
    # error, exactly once; a cancelled one never runs.
    runs: list[int] = []
    gate = threading.Event()

    def call(kind: str, value: int) -> int:
        gate.wait(30)
        runs.append(value)
        if kind == "raise":
            raise ValueError(value)
        return value

    pool = unirun.ThreadExecutor(2)
    lane = Lane(lambda: pool, None, lambda: 1e-4)
    try:
        futures = [
            lane.submit(call, (kind, i), {}, entry())
            for i, (kind, _) in enumerate(script)
        ]
        cancelled = {
            i
            for i, (kind, _) in enumerate(script)
            if kind == "cancel" and futures[i].cancel()
        }
        gate.set()
        for i, (kind, _) in enumerate(script):
            future = futures[i]
            if i in cancelled:
                assert future.cancelled()
            elif kind == "raise":
                assert isinstance(future.exception(timeout=60), ValueError)
            else:
                assert future.result(timeout=60) == i
        assert sorted(runs) == sorted(set(range(len(script))) - cancelled)
    finally:
        pool.shutdown(wait=True)
