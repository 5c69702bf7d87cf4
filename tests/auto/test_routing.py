"""Auto-selection: hints, caching, revision, pickling, loop blocking, explain."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from _auto_tasks import (
    blocks_loop,
    nap,
    nap_in,
    pid_carrying,
    plus_one,
    spin_or_not,
)
from _tasks import getpid, square, thread_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from unirun._auto.classify import Verdict
    from unirun._types import Backend, Model


@pytest.fixture
def auto() -> Iterator[unirun.AutoExecutor]:
    executor = unirun.AutoExecutor(max_workers=4)
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def probed(ex: unirun.AutoExecutor, fn: Callable[..., Any], *args: Any) -> Verdict:
    """Call ``fn(*args)`` until its GIL test tells (or it was looked at enough);
    return the verdict."""
    from unirun._auto.verdicts import RECHECKS

    verdict = None
    for _ in range(1 + RECHECKS):
        ex.submit(fn, *args).result(timeout=60)
        verdict = ex.explain(fn)
        if verdict is not None and verdict.releases_gil is not None:
            break
    assert verdict is not None
    return verdict


def test_executor_factory_returns_auto() -> None:
    with unirun.executor("auto") as ex:
        assert isinstance(ex, unirun.AutoExecutor)
    with unirun.executor() as ex:
        assert isinstance(ex, unirun.AutoExecutor)


def test_explain_unknown_callable_is_none(auto: unirun.AutoExecutor) -> None:
    assert auto.explain(square) is None


@pytest.mark.parametrize("backend", ["thread", "process", "coroutine", "inline"])
def test_hint_always_wins(auto: unirun.AutoExecutor, backend: Backend) -> None:
    import os

    view = auto.options(backend=backend)
    assert view.submit(square, 7).result(timeout=60) == 49
    pid = view.submit(getpid).result(timeout=60)
    assert (pid != os.getpid()) == (backend == "process")
    name = view.submit(thread_name).result(timeout=60)
    if backend == "inline":
        assert name == threading.current_thread().name


def test_bad_backend_hint_rejected(auto: unirun.AutoExecutor) -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        auto.options(backend="gpu")  # type: ignore[arg-type]  # a bad name: the point


@pytest.mark.parametrize("kind", ["thread", "process", "coroutine"])
def test_fixed_executor_accepts_only_its_own_backend(kind: Model) -> None:
    from conftest import make_executor

    with make_executor(kind) as ex:
        assert ex.options(backend=kind).submit(square, 3).result(timeout=60) == 9
        other: Backend = "inline" if kind != "thread" else "process"
        with pytest.raises(ValueError, match=f"cannot run tasks on the '{other}'"):
            ex.options(backend=other)
        with pytest.raises(ValueError, match="cannot run tasks"):
            ex.options(timeout=1).options(backend=other)


def test_calls_during_probe_are_held_and_run_once(
    auto: unirun.AutoExecutor, tmp_path: object
) -> None:
    # The probe is a real call: every call runs exactly once, results come back.
    calls = []
    lock = threading.Lock()

    def record(x: int) -> int:
        with lock:
            calls.append(x)
        return x * 2

    futures = [auto.submit(record, i) for i in range(20)]
    assert [f.result(timeout=60) for f in futures] == [i * 2 for i in range(20)]
    assert sorted(calls) == list(range(20))
    verdict = auto.explain(record)
    assert verdict is not None
    assert verdict.samples >= 1


def test_verdict_is_cached(auto: unirun.AutoExecutor) -> None:
    auto.submit(nap, 0.02).result(timeout=60)
    first = auto.explain(nap)
    auto.submit(nap, 0.02).result(timeout=60)
    assert auto.explain(nap) is first  # no new probe for a cached verdict


def test_map_probes_first_item_then_routes_rest(auto: unirun.AutoExecutor) -> None:
    assert list(auto.map(plus_one, range(5000))) == [x + 1 for x in range(5000)]
    verdict = auto.explain(plus_one)
    assert verdict is not None
    assert list(auto.map(plus_one, [])) == []


def test_map_errors_in_place(auto: unirun.AutoExecutor) -> None:
    from _tasks import fail_if_negative

    results = auto.map(fail_if_negative, [1, 2, -3, 4])
    assert next(results) == 1
    assert next(results) == 2
    with pytest.raises(ValueError, match="negative: -3"):
        next(results)


def test_verdict_revised_when_cost_depends_on_arguments(
    auto: unirun.AutoExecutor,
) -> None:
    # Tiny at first: inline (or threads). Then a call that is far heavier.
    for _ in range(3):
        auto.submit(spin_or_not, 0.0).result(timeout=60)
    before = auto.explain(spin_or_not)
    assert before is not None
    assert before.backend in ("inline", "thread")
    # Two calls in a row disagree (one alone may have lost the GIL mid-call):
    # the next call is a new probe.
    auto.submit(spin_or_not, 0.1).result(timeout=60)
    auto.submit(spin_or_not, 0.1).result(timeout=60)
    auto.submit(spin_or_not, 0.1).result(timeout=60)  # the new probe
    after = auto.explain(spin_or_not)
    assert after is not None
    assert after.cpu_s > 20 * before.cpu_s
    assert after.samples > before.samples
    assert after.backend != "inline"


def test_unpicklable_cpu_work_stays_on_threads(auto: unirun.AutoExecutor) -> None:
    from unirun._cpu import usable_cpus

    lock = threading.Lock()  # cannot be pickled

    def busy_with_lock(cpu_s: float) -> float:
        import time

        with lock:
            start = time.thread_time()
            while time.thread_time() - start < cpu_s:
                pass
        return cpu_s

    auto.submit(busy_with_lock, 0.1).result(timeout=60)
    verdict = auto.explain(busy_with_lock)
    assert verdict is not None
    assert verdict.backend == "thread"
    if usable_cpus() >= 2 and verdict.releases_gil is False:
        assert verdict.transferable is False
        assert "cannot be pickled" in verdict.reason


def to_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Script the classifier: every callable's calls go to processes, and stay
    there however quickly they come back."""
    from unirun._auto.classify import Verdict

    def scripted(facts: Any, costs: Any) -> Verdict:
        return Verdict("process", "scripted", 0.05, 0.05, 1.0, 1.0, False, True, 1)

    monkeypatch.setattr("unirun._auto.verdicts.classify", scripted)
    monkeypatch.setattr("unirun._auto.routing.watch_process", lambda *_: None)


def test_a_process_routed_call_that_does_not_pickle_runs_on_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The probed call pickled; a later call's argument does not. Auto chose
    # processes, so it runs that call here (rule 10, for that call) rather than
    # failing it with TransferError as a ProcessExecutor must; nothing of it is
    # counted as a failed process task.
    import os

    to_processes(monkeypatch)
    with unirun.AutoExecutor(max_workers=2) as ex:
        assert ex.submit(pid_carrying, 1).result(timeout=60) == os.getpid()  # probe
        sent = ex.submit(pid_carrying, 2).result(timeout=60)
        kept = ex.submit(pid_carrying, threading.Lock()).result(timeout=60)
        again = ex.submit(pid_carrying, 3).result(timeout=60)
        verdict = ex.explain(pid_carrying)
        stats = ex.statistics()
    assert sent != os.getpid()
    assert kept == os.getpid()
    assert again != os.getpid()  # one call's arguments change no verdict
    assert verdict is not None
    assert verdict.backend == "process"
    assert (stats.submitted, stats.done, stats.failed) == (4, 4, 0), stats


def test_what_a_refusing_submit_runs_does_not_refuse_in_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Auto asks the process pool's submit to raise for a call that does not
    # pickle. What that submit goes on to run (a done-callback it completes, a
    # thread it starts: anything in Pool.submit) must not see the request, or
    # a user's own executor there would raise where it fails its Future.
    import os

    from unirun._backends import _pool
    from unirun._transfer import UNSENDABLE_RAISES

    seen: list[bool] = []
    real = _pool.Pool.submit

    def submit(pool: _pool.Pool, task: Any) -> None:
        seen.append(UNSENDABLE_RAISES.get())
        real(pool, task)

    monkeypatch.setattr(_pool.Pool, "submit", submit)
    to_processes(monkeypatch)
    with unirun.AutoExecutor(max_workers=1) as ex:
        ex.submit(pid_carrying, 1).result(timeout=60)  # the probe, here
        assert ex.submit(pid_carrying, 2).result(timeout=60) != os.getpid()
        assert list(ex.map(pid_carrying, [3, 4], chunksize=1, timeout=60))
    assert seen == [False] * 3


def test_a_map_chunk_that_does_not_pickle_runs_on_a_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    to_processes(monkeypatch)
    items: list[object] = [1, 2, threading.Lock(), 4, 5]
    with unirun.AutoExecutor(max_workers=2) as ex:
        # chunksize=None: the items cut into one chunk with the lock run with it.
        pids = list(ex.map(pid_carrying, items, timeout=60))
        assert pids[2] == os.getpid(), pids
        pids = list(ex.map(pid_carrying, items, chunksize=1, timeout=60))
        assert pids[2] == os.getpid(), pids
        assert os.getpid() not in pids[3:], pids
        assert ex.statistics().failed == 0


def test_a_hinted_process_call_that_does_not_pickle_fails_its_future(
    auto: unirun.AutoExecutor,
) -> None:
    # The caller chose processes: the call fails as on a ProcessExecutor.
    future = auto.options(backend="process").submit(pid_carrying, threading.Lock())
    with pytest.raises(unirun.TransferError, match="lock"):
        future.result(timeout=60)


def test_loop_blocking_coroutine_warns_and_moves_off_loop(
    auto: unirun.AutoExecutor,
) -> None:
    with pytest.warns(unirun.LoopBlockedWarning, match="blocks_loop"):
        assert auto.submit(blocks_loop, 0.3).result(timeout=60) == 0.3
    verdict = auto.explain(blocks_loop)
    assert verdict is not None
    assert verdict.backend == "thread"
    assert "blocked the event loop" in verdict.reason
    assert auto.submit(blocks_loop, 0.01).result(timeout=60) == 0.01


def test_profile_without_executor() -> None:
    verdict = unirun.profile(nap, 0.02)
    assert verdict.backend == "thread"
    assert verdict.wall_s >= 0.015
    assert verdict.samples == 1
    from _tasks import fail_if_negative

    with pytest.raises(ValueError, match="negative"):
        unirun.profile(fail_if_negative, -1)


def test_all_thread_workload_starts_no_process(auto: unirun.AutoExecutor) -> None:
    auto.submit(nap, 0.01).result(timeout=60)
    list(auto.map(nap, [0.001] * 10))
    from unirun import ThreadExecutor

    assert all(isinstance(p, ThreadExecutor) for p in auto._router.pools.started())


def test_process_verdict_revised_when_calls_become_tiny(
    auto: unirun.AutoExecutor,
) -> None:
    from unirun._cpu import usable_cpus

    if usable_cpus() < 2:
        pytest.skip("processes need two usable CPUs")
    before = probed(auto, spin_or_not, 0.1)
    if before.backend != "process":
        pytest.skip(f"the machine is too loaded to see parallelism: {before}")
    after = before
    for _ in range(10):  # tiny calls on processes: back within a round trip
        auto.submit(spin_or_not, 0.0).result(timeout=60)
        after = auto.explain(spin_or_not) or before
        if after.backend != "process":
            break
    assert after.backend in ("inline", "thread"), after
    assert after.samples > before.samples


def two_readings(
    monkeypatch: pytest.MonkeyPatch, submitted: threading.Event, readings: list[int]
) -> None:
    """Script the classifier: a first compute-and-wait reading (given once
    ``submitted`` is set, so that the calls meanwhile are held), then a second
    that sends the calls to processes. Each reading's sample count is recorded."""
    from unirun._auto.classify import Verdict

    def scripted(facts: Any, costs: Any) -> Verdict:
        readings.append(facts.samples)  # the monitor may read a probe early too
        if facts.samples == 1:
            assert submitted.wait(60)  # every other call is held meanwhile
            return Verdict(
                "thread", "a first reading", 0.05, 0.015, 0.3, 0.3, None, True, 1,
                provisional=True,
            )  # fmt: skip
        return Verdict("process", "read twice", 0.05, 0.015, 0.3, 0.3, None, True, 2)

    monkeypatch.setattr("unirun._auto.verdicts.classify", scripted)


def test_a_first_compute_and_wait_reading_is_checked_before_processes_gh13(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A first call that read as computing and waiting (an HTTP request's first
    # call, paying for its imports) sent every call to a few worker processes.
    # Now the first call held behind that probe is probed again, and the rest
    # wait for its reading: here it confirms, so they run on processes.
    import os

    readings: list[int] = []
    submitted = threading.Event()
    two_readings(monkeypatch, submitted, readings)
    with unirun.AutoExecutor(max_workers=2) as ex:
        futures = [ex.submit(nap_in, 0.05) for _ in range(5)]
        submitted.set()
        pids = [f.result(timeout=60) for f in futures]
        verdict = ex.explain(nap_in)
    here = os.getpid()
    assert sorted(set(readings)) == [1, 2]  # two probes, each alone
    assert pids[:2] == [here, here]  # both probes ran on threads here
    assert here not in pids[2:], pids  # the rest waited for the second reading
    assert verdict is not None
    assert verdict.backend == "process"
    assert not verdict.provisional


def test_held_calls_go_on_when_the_one_to_probe_again_was_cancelled_gh13(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The call that would take the second reading was cancelled while held:
    # the next one takes it, and no held call is left behind.
    import os

    submitted = threading.Event()
    two_readings(monkeypatch, submitted, [])
    with unirun.AutoExecutor(max_workers=2) as ex:
        futures = [ex.submit(nap_in, 0.05) for _ in range(4)]
        assert futures[1].cancel()
        submitted.set()
        pids = [f.result(timeout=60) for f in (futures[0], *futures[2:])]
        verdict = ex.explain(nap_in)
    here = os.getpid()
    assert futures[1].cancelled()
    assert pids[:2] == [here, here]  # the first probe, then the next one held
    assert pids[2] != here  # the last went to processes after two readings
    assert verdict is not None
    assert verdict.backend == "process"
