"""The classifier as a pure function: a table of measurements -> verdicts.

No clock, no executor: each row gives the facts and costs a probe would have
produced and the verdict (or the missing fact) the rules imply. Properties
check that ``classify`` is total and monotone where its rules say so, and that
the two readings of a probe (busy share, GIL share) follow their definitions.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unirun._auto.classify import (
    BLOCKED_MIN,
    BUSY_MIN,
    FREE_MIN,
    HANDOFF_MIN,
    INLINE_FRACTION,
    MIN_HELD,
    MIXED_MIN,
    PAUSE_MAX,
    UNSURE_MIN,
    Costs,
    Facts,
    Need,
    Verdict,
    busy_share,
    classify,
    free_share,
    mixed_min,
)
from unirun._auto.profiling import ProbeSample, Window

TWO = Costs(thread_s=50e-6, process_s=300e-6, cpus=2)
UNMEASURED = replace(TWO, process_s=None)
ONE_CPU = replace(TWO, cpus=1)
FREE_THREADED = replace(TWO, free_threaded=True)
NO_PROCESSES = replace(TWO, process_s=float("inf"))
QUICK_HANDOFF = replace(TWO, thread_s=17e-6)


def facts(
    cpu_s: float,
    busy: float,
    free: float | None = 0.0,
    *,
    wall_s: float | None = None,
    transferable: bool | None = True,
    returned_awaitable: bool = False,
    recheck: bool = False,
) -> Facts:
    return Facts(
        wall_s=cpu_s / max(busy, 1e-3) if wall_s is None else wall_s,
        cpu_s=cpu_s,
        busy=busy,
        free_share=free,
        returned_awaitable=returned_awaitable,
        transferable=transferable,
        transfer_error="" if transferable is not False else "TypeError: a lock",
        recheck=recheck,
    )


# (id, facts, costs, backend or the Need, releases_gil, words in the reason)
TABLE: list[tuple[str, Facts, Costs, str | Need, bool | None, str]] = [
    ("awaitable", facts(1e-3, 0.0, returned_awaitable=True), TWO, "coroutine", None,
     "returns a coroutine"),
    ("tiny", facts(10e-6, 1.0), TWO, "inline", False, "less than half"),
    # A hand-off timed at its quickest (the woken thread on the caller's CPU)
    # counts as HANDOFF_MIN: a no-op whose probe read 20 us still runs inline.
    ("tiny, a quick hand-off", facts(20e-6, 1.0), QUICK_HANDOFF, "inline", False,
     "half a thread hand-off (50 µs)"),
    ("short, a quick hand-off", facts(30e-6, 1.0), QUICK_HANDOFF, "thread", False,
     "too short"),
    ("sleep", facts(1e-5, 0.0, None, wall_s=0.05), TWO, "thread", None,
     "mostly waits"),
    # A wait as short as a pause of the machine (a stolen CPU): read twice.
    ("short wait, a first reading", replace(facts(1e-5, 0.0, None,
     wall_s=0.001), first_reading=True), TWO, "thread", None,
     "until a second call confirms"),
    ("short wait, read twice", facts(1e-5, 0.0, None, wall_s=0.001), TWO,
     "thread", None, "mostly waits"),
    ("long wait, a first reading", replace(facts(1e-5, 0.0, None,
     wall_s=2 * PAUSE_MAX), first_reading=True), TWO, "thread", None,
     "mostly waits"),
    ("compute and wait", facts(0.003, 0.3, None), TWO, "process", None,
     "waits the rest"),
    ("compute and wait, a first reading", replace(facts(0.003, 0.3, None),
     first_reading=True), TWO, "thread", None, "until a second call confirms"),
    ("compute and wait, read twice", facts(0.003, 0.3, None, recheck=True), TWO,
     "process", None, "waits the rest"),
    # Eight calls at a time (four processes per CPU) need the GIL all the time
    # from 1/8 of their time computing: threads would queue for it.
    ("compute and wait, past 1/8", facts(0.0015, 0.13, None), TWO, "process",
     None, "waits the rest"),
    ("compute and wait, under 1/8", facts(0.0015, 0.12, None), TWO, "thread",
     None, "mostly waits"),
    ("compute and wait, four at a time", facts(0.003, 0.2, None),
     replace(TWO, mixed_slots=4), "thread", None, "mostly waits"),
    ("compute and wait, one CPU", facts(0.003, 0.3), ONE_CPU, "thread", None,
     "mostly waits"),
    ("compute and wait, short", facts(0.0005, 0.3), TWO, "thread", None,
     "mostly waits"),
    ("compute and wait, releases", facts(0.003, 0.3, 0.9), TWO, "thread", None,
     "mostly waits"),
    ("pure Python", facts(0.1, 1.0), TWO, "process", False, "holds the GIL"),
    ("pure Python, short", facts(400e-6, 1.0), TWO, "thread", False, "too short"),
    ("pure Python, 2 ms", facts(0.002, 1.0), TWO, "process", False, "pays"),
    ("hashlib 8 MiB", facts(0.008, 1.0, 0.9), TWO, "thread", True,
     "releases the GIL"),
    ("numpy 5 ms", facts(0.005, 0.95, 0.7), TWO, "thread", True,
     "releases the GIL"),
    ("zlib 2 ms", facts(0.002, 1.0, FREE_MIN), TWO, "thread", True,
     "releases the GIL"),
    ("could not tell", facts(0.1, 1.0, None), TWO, "process", None,
     "could not tell"),
    ("could not tell, short", facts(400e-6, 1.0, None), TWO, "thread", None,
     "could not tell"),
    ("could not tell, a later look", facts(0.1, 1.0, None, recheck=True,
     transferable=None), UNMEASURED, "thread", None, "until a later call"),
    ("told, a later look unneeded", facts(0.1, 1.0, 0.0, recheck=True), TWO,
     "process", False, "holds the GIL"),
    ("waiting, a later look unneeded", facts(1e-5, 0.0, None, wall_s=0.05,
     recheck=True), TWO, "thread", None, "mostly waits"),
    ("free-threaded", facts(0.1, 1.0), FREE_THREADED, "thread", False,
     "free-threaded"),
    # A free share just under FREE_MIN is too close to call: looked at again,
    # then treated as holding the GIL; one under UNSURE_MIN holds it.
    ("too close to call", facts(0.005, 1.0, 0.43, recheck=True), TWO, "thread",
     None, "too close to call"),
    ("too close to call, looked at enough", facts(0.005, 1.0, 0.43), TWO,
     "process", None, "could not tell"),
    ("clearly held", facts(0.005, 1.0, UNSURE_MIN - 0.01, recheck=True), TWO,
     "process", False, "holds the GIL"),
    # A call that imported modules measured the import, which holds the GIL:
    # whatever share it read, the test could not tell.
    ("imported", replace(facts(0.1, 1.0, 0.0, recheck=True), imported=True), TWO,
     "thread", None, "modules were imported"),
    ("imported, reads free", replace(facts(0.1, 1.0, 0.9, recheck=True),
     imported=True), TWO, "thread", None, "until a later call"),
    ("imported, looked at enough", replace(facts(0.1, 1.0, 0.0), imported=True),
     TWO, "process", None, "modules were imported"),
    ("one CPU", facts(0.1, 1.0), ONE_CPU, "thread", False, "one CPU"),
    ("no processes", facts(0.1, 1.0), NO_PROCESSES, "thread", False, "one CPU"),
    ("unpicklable", facts(0.1, 1.0, transferable=False), TWO, "thread", False,
     "cannot be pickled"),
    ("pickling unchecked", facts(0.1, 1.0, transferable=None), TWO, Need.TRANSFER,
     None, ""),
    ("round trip unmeasured", facts(0.1, 1.0), UNMEASURED, Need.PROCESS_COST, None,
     ""),
    ("mixed, pickling unchecked", facts(0.003, 0.3, transferable=None), TWO,
     Need.TRANSFER, None, ""),
    ("mixed, round trip unmeasured", facts(0.003, 0.3), UNMEASURED,
     Need.PROCESS_COST, None, ""),
    ("releases, nothing needed", facts(0.1, 1.0, 0.9, transferable=None),
     UNMEASURED, "thread", True, "releases the GIL"),
    # Below what a round trip as cheap as a thread hand-off would need (2 x
    # 50 us x 2): processes never pay, and none is started to measure it.
    ("starved sleep reads mixed, round trip unmeasured", facts(30e-6, 0.3),
     UNMEASURED, "thread", None, "mostly waits"),
    ("pure Python below any round trip, unmeasured", facts(150e-6, 1.0),
     UNMEASURED, "thread", False, "more than a thread hand-off"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "given", "costs", "expected", "releases", "words"),
    TABLE,
    ids=[row[0] for row in TABLE],
)
def test_classify_table(
    row: str,
    given: Facts,
    costs: Costs,
    expected: str | Need,
    releases: bool | None,
    words: str,
) -> None:
    result = classify(given, costs)
    if isinstance(expected, Need):
        assert result is expected
        return
    assert isinstance(result, Verdict), result
    assert result.backend == expected, result.reason
    assert result.releases_gil is releases
    assert words in result.reason
    # Only a verdict that waits for a later probe's reading says so.
    assert result.provisional is ("runs on threads until a" in result.reason)
    assert classify(given, costs) == result  # pure: same facts, same verdict


def test_compute_and_wait_starts_where_the_gil_would_be_busy_all_the_time() -> None:
    assert mixed_min(TWO) == 1 / 8  # four processes per CPU
    assert mixed_min(replace(TWO, mixed_slots=4)) == 1 / 4  # max_workers=4
    # Many CPUs: never below MIXED_MIN, where a waiting call's set-up can read.
    assert mixed_min(replace(TWO, cpus=16)) == MIXED_MIN
    assert mixed_min(replace(TWO, mixed_slots=40)) == MIXED_MIN


def test_classify_is_monotone_in_busy() -> None:
    # Waiting, then computing-and-waiting (processes overlap the waits), then CPU.
    backends = [
        classify(facts(0.1 * b, b, wall_s=0.1), TWO) for b in (0.0, 0.1, 0.3, 0.49)
    ] + [classify(facts(0.1 * b, b, wall_s=0.1), TWO) for b in (0.5, 0.8, 1.0)]
    assert [v.backend for v in backends if isinstance(v, Verdict)] == (
        ["thread"] * 2 + ["process"] * 5
    )


shares = st.floats(0.0, 1.0)
seconds = st.floats(1e-6, 10.0)


@st.composite
def any_facts(draw: st.DrawFn) -> Facts:
    return Facts(
        wall_s=draw(seconds),
        cpu_s=draw(seconds),
        busy=draw(shares),
        free_share=draw(st.none() | shares),
        returned_awaitable=draw(st.booleans()),
        transferable=draw(st.none() | st.booleans()),
        samples=draw(st.integers(1, 100)),
        recheck=draw(st.booleans()),
        transfer_s=draw(st.floats(0.0, 1.0)),
    )


@st.composite
def any_costs(draw: st.DrawFn) -> Costs:
    return Costs(
        thread_s=draw(st.floats(0.0, 1e-3)),
        process_s=draw(st.none() | st.floats(1e-5, 1.0) | st.just(float("inf"))),
        cpus=draw(st.integers(1, 64)),
        free_threaded=draw(st.booleans()),
        mixed_slots=draw(st.none() | st.integers(1, 256)),
    )


@given(any_facts(), any_costs())
def test_classify_is_total(given: Facts, costs: Costs) -> None:
    result = classify(given, costs)
    if result is Need.TRANSFER:
        assert given.transferable is None
    elif result is Need.PROCESS_COST:
        assert costs.process_s is None
    else:
        assert isinstance(result, Verdict)
        assert result.backend in ("thread", "process", "coroutine", "inline")
        assert result.reason
        # Whatever was missing never changes a verdict already given.
        known = replace(given, transferable=given.transferable is not False)
        measured = replace(costs, process_s=costs.process_s or 1e-3)
        assert classify(known, measured) == replace(
            result, transferable=known.transferable
        )


@given(any_facts(), any_costs())
def test_a_call_under_half_the_least_hand_off_runs_inline(
    given: Facts, costs: Costs
) -> None:
    # However quick the hand-off was timed, and whatever else was read.
    short = replace(given, returned_awaitable=False, busy=1.0)
    short = replace(short, cpu_s=short.cpu_s % (INLINE_FRACTION * HANDOFF_MIN))
    result = classify(short, costs)
    assert isinstance(result, Verdict)
    assert result.backend == "inline"


@given(any_facts(), any_costs())
def test_releasing_the_gil_never_sends_to_processes(given: Facts, costs: Costs) -> None:
    # A CPU-bound call that runs while others hold the GIL is run by threads.
    released = replace(given, free_share=1.0, busy=max(given.busy, BUSY_MIN))
    result = classify(released, costs)
    assert not isinstance(result, Need)
    assert result.backend != "process"


def sample(
    wall: float, cpu: float, others: float = 0.0, wait: float = 0.0, **window: float
) -> ProbeSample:
    seen = None
    if window:
        seen = Window(
            seconds=window.pop("seconds", wall),
            probe_cpu=window.pop("probe_cpu", cpu),
            probe_wait=window.pop("probe_wait", wait),
            others_cpu=others,
            **window,  # type: ignore[arg-type]  # the remaining Window fields
        )
    return ProbeSample(wall, cpu, wait, others, seen)


def test_busy_share_corrects_for_gil_and_cpu_contention() -> None:
    assert busy_share(sample(0.1, 0.1)) == pytest.approx(1.0)
    assert busy_share(sample(0.1, 0.0)) == 0.0
    # Next to a busy thread: half the wall time, but half the GIL too.
    assert busy_share(sample(0.2, 0.1, others=0.1)) == pytest.approx(1.0)
    # Other processes held our CPU for half the call.
    assert busy_share(sample(0.2, 0.1, wait=0.1)) == pytest.approx(1.0)
    # The canary's CPU is not contention: a half-waiting call stays half busy.
    half = sample(0.1, 0.05, others=0.08, canary_cpu=0.08)
    assert busy_share(half) == pytest.approx(0.5)
    # Asleep next to busy threads: a tiny demand over the floored time.
    assert busy_share(sample(0.1, 0.001, others=0.1)) < 0.1


def test_free_share_reads_the_canary() -> None:
    assert free_share(sample(0.01, 0.01)) is None  # no window
    released = sample(0.01, 0.01, held_s=0.004, free_s=0.0036)
    assert free_share(released) == pytest.approx(0.9)
    held = sample(0.05, 0.05, held_s=0.002, free_s=0.0, blocked_s=0.045)
    assert free_share(held) == 0.0
    # A short call that kept the canary out all along holds the GIL...
    short = sample(0.003, 0.003, seconds=0.003, blocked_s=0.003, held_s=0.0)
    assert free_share(short) == 0.0
    # ... unless another thread was busy: it may have been the one.
    crowded = sample(0.003, 0.003, others=0.003, seconds=0.003, blocked_s=0.003)
    assert free_share(crowded) is None
    # Too little of either: the test could not tell.
    brief = sample(0.003, 0.003, held_s=MIN_HELD / 2, free_s=0.0)
    assert free_share(brief) is None
    loose = sample(0.003, 0.003, blocked_s=BLOCKED_MIN * 0.003 / 2)
    assert free_share(loose) is None
    # Waits for a CPU come off the stretches: a GIL-free call that had no CPU
    # while the canary held the GIL says nothing...
    crowded_out = sample(0.01, 0.006, wait=0.004, held_s=0.004, free_s=0.0)
    assert free_share(crowded_out) is None
    # ... and off the canary's blocked time: a call that waited for a CPU while
    # it held the GIL (say, between two C calls) blocked the canary too.
    stalled = sample(
        0.08,
        0.007,
        others=0.012,
        wait=0.068,
        canary_cpu=0.012,
        held_s=0.012,
        free_s=0.0026,
        blocked_s=0.058,
    )
    assert free_share(stalled) is None
    # Another thread of ours computing without the GIL (numpy's BLAS pool
    # spinning after its import) may have had the probe's CPU in the stretches:
    # a low share says nothing then, a high one still tells.
    spun = {"others": 0.045, "canary_cpu": 0.013, "held_s": 0.009}
    assert free_share(sample(0.05, 0.04, free_s=0.0005, **spun)) is None
    assert free_share(sample(0.05, 0.04, free_s=0.008, **spun)) == pytest.approx(8 / 9)
    alone = sample(0.05, 0.04, others=0.013, canary_cpu=0.013, held_s=0.009)
    assert free_share(alone) == 0.0


def test_a_call_whose_arguments_take_long_to_send_stays_on_threads() -> None:
    # 200 MiB of bytes took 0.24 s to pickle: the round trip took about a second
    # more, for a call of 46 ms (it went to processes, 17x slower than threads).
    cpu_bound = facts(0.046, 1.0)
    assert classify(cpu_bound, TWO).backend == "process"  # type: ignore[union-attr]
    heavy = classify(replace(cpu_bound, transfer_s=0.24), TWO)
    assert isinstance(heavy, Verdict)
    assert heavy.backend == "thread"
    assert "with its arguments" in heavy.reason


@given(any_facts(), any_costs(), st.floats(0.0, 1.0))
def test_heavier_arguments_never_send_a_call_to_processes(
    given: Facts, costs: Costs, more_s: float
) -> None:
    before = classify(given, costs)
    after = classify(replace(given, transfer_s=given.transfer_s + more_s), costs)
    if isinstance(before, Verdict) and before.backend != "process":
        assert not (isinstance(after, Verdict) and after.backend == "process")
