"""The verdict cache on its own: admitting calls, probes, held calls, revisions."""

from __future__ import annotations

import dataclasses
import sys
import threading
import types
from typing import TYPE_CHECKING, Any

import pytest

from _auto_tasks import nap, plus_one, spin, wait_for_event
from unirun._auto import classify as classify_rules
from unirun._auto.cache import lookup
from unirun._auto.classify import PAUSE_MAX, Need, Verdict, classify
from unirun._auto.pools import Pools
from unirun._auto.profiling import ProbeSample, Window
from unirun._auto.revisions import measured, watch_inline
from unirun._auto.verdicts import Entry, Held, Verdicts
from unirun._future import Future
from unirun._options import NO_OPTIONS
from unirun._transfer import call_travels

if TYPE_CHECKING:
    from collections.abc import Iterator


class Recorder:
    """Stands in for the router: records the held calls handed on."""

    def __init__(self) -> None:
        self.handed: list[list[Held]] = []

    def hand_on(self, held: list[Held]) -> None:
        self.handed.append(held)
        for call in held:
            if not call.outer._start():
                continue  # cancelled while held
            call.outer.set_result(call.fn(*call.args, **call.kwargs))


@pytest.fixture
def pools() -> Iterator[Pools]:
    made = Pools(None, None, (), scope="test", cpus=2, name="test-verdicts")
    try:
        yield made
    finally:
        made.close(wait=True, cancel_futures=True)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def verdicts(
    pools: Pools, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Verdicts]:
    # These probes wait on events for as long as each test needs, often under
    # PAUSE_MAX: a wait that short is read twice (a pause of the machine reads
    # as one), which is tested on its own; here every reading counts once.
    monkeypatch.setattr(classify_rules, "PAUSE_MAX", 0.0)
    cache = Verdicts(pools, recorder.hand_on)
    try:
        yield cache
    finally:
        cache.close(wait=True)


def test_first_call_is_a_probe_then_the_entry_routes(verdicts: Verdicts) -> None:
    wait = 2 * PAUSE_MAX  # longer than a pause of the machine: read once
    first = verdicts.admit(nap, (wait,), {}, NO_OPTIONS)
    assert isinstance(first, Future)
    assert first.result(timeout=60) == wait
    verdicts.wait_idle()
    assert verdicts.settled(nap)
    entry = verdicts.admit(nap, (wait,), {}, NO_OPTIONS)
    assert isinstance(entry, Entry)
    assert entry.verdict is not None
    assert entry.verdict is verdicts.explain(nap)
    assert entry.verdict.backend == "thread"
    assert entry.verdict.samples == 1


def test_a_wait_as_short_as_a_pause_is_read_twice(
    verdicts: Verdicts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pause of the machine reads as a short wait: the next call is a probe
    # too, and the calls meanwhile wait for its reading.
    monkeypatch.setattr(classify_rules, "PAUSE_MAX", PAUSE_MAX)  # the real one
    first = verdicts.admit(nap, (0.001,), {}, NO_OPTIONS)
    assert isinstance(first, Future)
    assert first.result(timeout=60) == 0.001
    verdicts.wait_idle()
    assert not verdicts.settled(nap)
    verdict = verdicts.explain(nap)
    assert verdict is not None
    assert verdict.provisional
    assert "until a second call confirms" in verdict.reason
    second = verdicts.admit(nap, (0.001,), {}, NO_OPTIONS)
    assert isinstance(second, Future)  # a probe again, not routed
    assert second.result(timeout=60) == 0.001
    verdicts.wait_idle()
    assert verdicts.settled(nap)
    verdict = verdicts.explain(nap)
    assert verdict is not None
    assert verdict.samples == 2
    assert not verdict.provisional


def test_calls_behind_a_probe_are_held_then_handed_on_once(
    verdicts: Verdicts, recorder: Recorder
) -> None:
    started, release = threading.Event(), threading.Event()
    probe = verdicts.admit(wait_for_event, (started, release, 0), {}, NO_OPTIONS)
    assert started.wait(60)
    # The probe waits: what comes meanwhile is held, nothing runs twice.
    held = [
        verdicts.admit(wait_for_event, (started, release, i), {}, NO_OPTIONS)
        for i in (1, 2)
    ]
    assert all(isinstance(f, Future) and not f.done() for f in held)
    assert not verdicts.settled(wait_for_event)
    idle = threading.Event()
    verdicts.when_idle(idle.set)
    assert not idle.is_set()  # busy: a probe runs
    release.set()
    assert probe.result(timeout=60) == 0  # type: ignore[union-attr]  # a Future
    verdicts.wait_idle()
    assert idle.wait(60)
    assert [f.result(timeout=60) for f in held] == [1, 2]  # type: ignore[union-attr]
    assert [[c.args[2] for c in batch] for batch in recorder.handed] == [[1, 2]]


def test_cancel_held_cancels_only_the_held_calls(verdicts: Verdicts) -> None:
    started, release = threading.Event(), threading.Event()
    probe = verdicts.admit(wait_for_event, (started, release, 0), {}, NO_OPTIONS)
    assert started.wait(60)
    held = verdicts.admit(wait_for_event, (started, release, 1), {}, NO_OPTIONS)
    verdicts.cancel_held()
    assert isinstance(held, Future)
    assert held.cancelled()
    release.set()
    assert isinstance(probe, Future)
    assert probe.result(timeout=60) == 0


def test_reserve_keeps_the_cache_busy(verdicts: Verdicts) -> None:
    verdicts.reserve()
    idle = threading.Event()
    verdicts.when_idle(idle.set)
    assert not idle.is_set()
    verdicts.unreserve()
    assert idle.wait(60)  # from a thread of its own


def test_classify_gets_what_it_needs(
    verdicts: Verdicts, pools: Pools, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CPU-bound call that holds the GIL needs the pickling check and the
    # process round trip; the cache supplies both and asks again.
    asked: list[str] = []

    def process_cost() -> float:
        asked.append("cost")
        return 1.0

    def spy(*args: Any) -> Verdict | Need:
        result = classify(*args)
        asked.append(result.name if isinstance(result, Need) else "verdict")
        if result is Need.PROCESS_COST:
            pools.process_s = 1.0  # as process_cost() would have measured
        return result

    monkeypatch.setattr(pools, "process_cost", process_cost)
    monkeypatch.setattr("unirun._auto.verdicts.classify", spy)
    future = verdicts.admit(spin, (0.02,), {}, NO_OPTIONS)
    assert isinstance(future, Future)
    future.result(timeout=60)
    verdicts.wait_idle()
    verdict = verdicts.explain(spin)
    assert verdict is not None
    if verdict.releases_gil is True:
        pytest.skip("the neighbourhood made a pure-Python loop look GIL-free")
    if verdict.releases_gil is None and asked[:1] == ["verdict"]:
        # No CPU was free for the GIL test: such a call stays on threads
        # without needing either (see test_rules.py).
        pytest.skip(f"the GIL test could not tell: {verdict.reason}")
    assert asked[:2] == ["TRANSFER", "PROCESS_COST"]
    assert "cost" in asked
    assert verdict.transferable is True


def test_transferable_says_why_not() -> None:
    assert call_travels(plus_one, (1,), {})[:2] == (True, "")
    ok, why, _ = call_travels(plus_one, (threading.Lock(),), {})
    assert not ok
    assert "lock" in why


def verdict(wall_s: float) -> Verdict:
    return Verdict("thread", "why", wall_s, wall_s, 1.0, 1.0, None, None, 1)


def is_stale(entry: Entry) -> bool:
    return entry.stale


def test_revisions_mark_the_entry_stale() -> None:
    entry = Entry(None)
    watch_inline(entry, 1e-6, 50e-6)
    assert not is_stale(entry)
    watch_inline(entry, 0.01, 50e-6)  # 200 x the inline limit
    assert is_stale(entry)
    heavier = Entry(None)
    measured(heavier, verdict(0.001), spin, inline_s=25e-6)(0.001)
    assert not is_stale(heavier)
    measured(heavier, verdict(0.001), spin, inline_s=25e-6)(0.05)
    assert is_stale(heavier)
    # Far lighter: a call of under a second against a verdict of 10 s, where
    # inline calls are those under one (a tighter limit, such as the real
    # 25 us, would let one preemption on a loaded machine decide the test).
    lighter = Entry(None)
    measured(lighter, verdict(10.0), plus_one, inline_s=1.0)(1)
    assert is_stale(lighter)
    not_lighter = Entry(None)
    measured(not_lighter, verdict(0.004), nap, inline_s=1.0)(0.002)
    assert not is_stale(not_lighter)  # half its verdict is not far lighter
    waiting = Entry(None)
    measured(waiting, dataclasses.replace(verdict(0.001), cpu_s=0), nap, 25e-6)(0.02)
    assert not is_stale(waiting)  # waiting longer is still waiting


def test_cluster_is_timed_at_the_probes_end_not_mid_probe(
    verdicts: Verdicts, pools: Pools, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mid-probe (the monitor's early window) the call may hold the GIL, which
    # would stretch a trip through the client's threads: the early verdict
    # leaves the cluster out, and the probe's end measures it.
    from unirun._auto.profiling import ProbeSample
    from unirun._auto.verdicts import RECHECKS, CallProbe

    timed: list[str] = []

    def cluster_cost() -> tuple[float, int]:
        timed.append("cluster")
        pools.cluster_s, pools.cluster_slots = 0.001, 64
        return 0.001, 64

    pools.has_cluster = True
    pools.process_s = 1e-4
    monkeypatch.setattr(pools, "cluster_cost", cluster_cost)
    entry = Entry(None)
    entry.rechecks = RECHECKS  # the last look: could-not-tell counts as held
    probe = CallProbe(entry, spin, (1.0,), {})
    sample = ProbeSample(
        wall_s=1.0, cpu_s=1.0, wait_s=0.0, others_cpu_s=0.0, window=None
    )
    early = verdicts._classify(probe, sample, early=True)
    assert early.backend == "process", early.reason
    assert "Dask" not in early.reason
    assert timed == []
    final = verdicts._classify(probe, sample, early=False)
    assert final.backend == "dask", final.reason
    assert timed == ["cluster"]


@pytest.mark.parametrize(("backend", "held"), [("thread", False), ("process", True)])
def test_a_stale_thread_verdict_routes_calls_while_it_is_probed_again_gh13(
    verdicts: Verdicts, backend: str, held: bool
) -> None:
    # A cold map of calls the GIL test could not tell about went one call at a
    # time, each behind a new probe; threads can run them meanwhile.
    done = threading.Event()
    done.set()
    first = verdicts.admit(wait_for_event, (threading.Event(), done, 0), {}, NO_OPTIONS)
    assert first.result(timeout=60) == 0  # type: ignore[union-attr]  # a Future
    verdicts.wait_idle()
    entry = lookup(verdicts._entries, wait_for_event)
    assert entry is not None
    assert entry.verdict is not None
    entry.verdict = dataclasses.replace(entry.verdict, backend=backend)  # type: ignore[arg-type]
    entry.stale = True
    started, release = threading.Event(), threading.Event()
    probe = verdicts.admit(wait_for_event, (started, release, 1), {}, NO_OPTIONS)
    assert isinstance(probe, Future)  # the stale verdict is measured again
    assert started.wait(60)
    meanwhile = verdicts.admit(wait_for_event, (started, release, 2), {}, NO_OPTIONS)
    try:
        assert isinstance(meanwhile, Future) is held
    finally:
        release.set()
    assert probe.result(timeout=60) == 1
    verdicts.wait_idle()
    if held:
        assert meanwhile.result(timeout=60) == 2  # type: ignore[union-attr]


def current(entry: Entry) -> Verdict | None:
    """The entry's verdict now (read through a call: a decision changes it)."""
    return entry.verdict


def _sample(wall_s: float, cpu_s: float) -> ProbeSample:
    return ProbeSample(
        wall_s=wall_s, cpu_s=cpu_s, wait_s=0.0, others_cpu_s=0.0, window=None
    )


@pytest.mark.parametrize(
    ("second_cpu_s", "settles_on"),
    [(0.0009, "thread"), (0.004, "process")],
    ids=["a waiting call read high once", "compute-and-wait read twice"],
)
def test_compute_and_wait_needs_two_readings_before_processes_gh13(
    verdicts: Verdicts, pools: Pools, second_cpu_s: float, settles_on: str
) -> None:
    # An HTTP request of 25 ms whose first call read 4 ms of CPU (16%: its
    # set-up, or a busy moment) went to processes, where a few workers waited
    # on the server in turn: 3x slower than threads. One reading is not enough.
    from unirun._auto.verdicts import CallProbe

    pools.process_s = 1e-4
    entry = Entry(None)
    first = CallProbe(entry, nap, (0.025,), {})
    verdicts._decide(first, _sample(0.025, 0.004))
    assert entry.verdict is not None
    assert entry.verdict.backend == "thread", entry.verdict.reason
    assert entry.verdict.provisional
    assert entry.stale  # the next call is a probe
    second = CallProbe(entry, nap, (0.025,), {})
    verdicts._decide(second, _sample(0.025, second_cpu_s))
    settled = current(entry)
    assert settled is not None
    assert settled.backend == settles_on, settled.reason
    assert not settled.provisional
    assert settled.samples == 2


def test_a_revision_reading_compute_and_wait_needs_a_second_reading_too_gh13(
    verdicts: Verdicts, pools: Pools
) -> None:
    # A call settled on threads ("mostly waits") and later probed again (a
    # revision) that reads 16% once: not to processes on that one reading.
    from unirun._auto.verdicts import CallProbe

    pools.process_s = 1e-4
    entry = Entry(None)
    verdicts._decide(CallProbe(entry, nap, (0.025,), {}), _sample(0.025, 0.0009))
    settled = current(entry)
    assert settled is not None
    assert settled.backend == "thread"
    assert not settled.provisional
    verdicts._decide(CallProbe(entry, nap, (0.025,), {}), _sample(0.025, 0.004))
    revised = current(entry)
    assert revised is not None
    assert revised.backend == "thread", revised.reason
    assert revised.provisional
    assert entry.stale


@pytest.mark.parametrize("began", [False, True])
def test_a_revision_probe_that_never_began_leaves_the_verdict_to_revise(
    verdicts: Verdicts, began: bool
) -> None:
    # Cancelled (or out of time) before it ran, a probe read nothing: the next
    # call probes. One out of time while it runs reads at its end: no probe
    # meanwhile (it used to make every later call a probe while calls outran
    # their time-out).
    from unirun._auto.verdicts import CallProbe

    entry = Entry(None)
    entry.verdict = verdict(0.01)
    probe = entry.probe = CallProbe(entry, nap, (0.01,), {})
    if began:
        probe.begin()  # in its thread, first thing (Monitor.watch)
    verdicts.reserve()  # the probe's hold, which _release ends
    verdicts._release(probe)
    assert entry.stale is not began
    assert entry.probe is None


def test_a_second_reading_made_early_is_kept_at_the_probes_end_gh13(
    verdicts: Verdicts, pools: Pools
) -> None:
    # A long second probe is read early (the monitor's window): processes take
    # the calls. Its end must read as the same second reading, not as a new
    # first one, or every call after it would be probed again, forever.
    from unirun._auto.verdicts import CallProbe

    pools.process_s = 1e-4
    entry = Entry(None)
    verdicts._decide(CallProbe(entry, nap, (0.25,), {}), _sample(0.25, 0.04))
    first = current(entry)
    assert first is not None
    assert first.provisional
    second = entry.probe = CallProbe(entry, nap, (0.25,), {})
    verdicts.reserve()  # the second probe's hold, which its early verdict ends
    verdicts._decide(second, _sample(0.06, 0.01), early=True)
    early = current(entry)
    assert early is not None
    assert early.backend == "process", early.reason
    verdicts._decide(second, _sample(0.25, 0.04))
    final = current(entry)
    assert final is not None
    assert final.backend == "process", final.reason
    assert not final.provisional


def test_a_reading_across_an_import_is_measured_again_gh13(
    verdicts: Verdicts,
) -> None:
    # A first call that imported modules reads as what the import did (here it
    # waited, on the disk say): the verdict routes the calls, for now, and the
    # next call is measured again.
    from unirun._auto.verdicts import CallProbe

    entry = Entry(None)
    imported = dataclasses.replace(_sample(0.05, 0.0005), imported=True)
    verdicts._decide(CallProbe(entry, nap, (0.05,), {}), imported)
    verdict = current(entry)
    assert verdict is not None
    assert verdict.backend == "thread", verdict.reason
    assert verdict.provisional
    assert entry.stale  # the next call is a probe
    assert entry.rechecks == 1  # a few times at most, as when it cannot tell
    # The same reading with no import settles.
    other = Entry(None)
    verdicts._decide(CallProbe(other, nap, (0.05,), {}), _sample(0.05, 0.0005))
    settled = current(other)
    assert settled is not None
    assert not settled.provisional
    assert not other.stale


def test_no_early_verdict_while_the_probe_imports_gh13(
    verdicts: Verdicts, pools: Pools, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The monitor's early window of a long probe that is importing measured the
    # import (which holds the GIL): no verdict from it, the probe's end decides.
    from unirun._auto.verdicts import CallProbe

    pools.process_s = 1e-4
    window = Window(seconds=0.05, probe_cpu=0.05, probe_wait=0.0, others_cpu=0.0)
    entry = Entry(None)
    probe = entry.probe = CallProbe(entry, spin, (0.25,), {})
    probe.begin()
    monkeypatch.setitem(sys.modules, "unirun_test_imported", types.ModuleType("x"))
    verdicts._on_window(probe, window)
    assert current(entry) is None
    # A probe that began after the import is read early.
    later = entry.probe = CallProbe(entry, spin, (0.25,), {})
    later.begin()
    verdicts.reserve()  # the probe's hold, which its early verdict ends
    verdicts._on_window(later, window)
    assert current(entry) is not None
