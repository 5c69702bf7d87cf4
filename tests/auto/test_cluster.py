"""Auto with a real Dask cluster: what it accepts, where work goes, what it closes.

Against the session's small LocalCluster (two worker processes, one thread
each; see conftest). Where a test is about routing, not measuring, it sets the
cluster's measured round trip and threads itself (``pin``), so the verdict
does not hang on how loaded the machine is; one test routes on the figures
measured here, and says so when the machine is too loaded for them to pay.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from _auto_tasks import async_nap, pid_carrying, spin_in
from _tasks import getpid, square
from conftest import dask_session, needs_dask
from unirun._auto.classify import BUSY_MIN, cluster_pays
from unirun._cpu import usable_cpus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import distributed

pytestmark = needs_dask

TESTS = Path(__file__).resolve().parent.parent


@pytest.fixture
def client() -> distributed.Client:
    """The session cluster's client (it stays the session's)."""
    return dask_session().client


@pytest.fixture
def auto(client: distributed.Client) -> Iterator[unirun.AutoExecutor]:
    executor = unirun.AutoExecutor(cluster=client)
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def worker_pids(client: distributed.Client) -> set[int]:
    """The process ids of the cluster's workers."""
    pids: dict[str, int] = client.run(os.getpid)
    return set(pids.values())


def address_of(client: distributed.Client) -> str:
    """The address of the client's scheduler."""
    scheduler = client.scheduler
    assert scheduler is not None
    return str(scheduler.address)


def pin(ex: unirun.AutoExecutor, trip: float, slots: int | None = None) -> None:
    """Give ``ex`` these cluster figures, as if it had measured them.

    ``slots`` defaults to more worker threads than any machine has CPUs here.
    """
    pools = ex._router.pools
    pools.cluster_s = trip
    pools.cluster_slots = 4 * usable_cpus() + 4 if slots is None else slots


def settle(ex: unirun.AutoExecutor, fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn`` until its verdict is settled: a probe whose GIL test could
    not tell probes again on the next call (twice at most)."""
    for _ in range(4):
        ex.submit(fn, *args).result(timeout=120)
        if ex._router.settled(fn):
            return
    raise AssertionError("the verdict never settled")


# -- what it accepts ------------------------------------------------------------------


def test_cluster_argument_is_checked(client: distributed.Client) -> None:
    with pytest.raises(TypeError, match="never pay"):
        unirun.AutoExecutor(cluster=True)  # type: ignore[arg-type]  # on purpose
    with pytest.raises(TypeError, match=r"must be a unirun\.DaskExecutor"):
        unirun.AutoExecutor(cluster=42)  # type: ignore[arg-type]  # on purpose
    with pytest.raises(ValueError, match="empty"):
        unirun.AutoExecutor(cluster=" ")
    users = unirun.DaskExecutor(client=client)
    users.shutdown()
    with pytest.raises(ValueError, match="shut down"):
        unirun.AutoExecutor(cluster=users)


def test_dask_hint_without_a_cluster_is_a_value_error() -> None:
    with unirun.AutoExecutor() as ex:
        with pytest.raises(ValueError, match=r"no cluster .* AutoExecutor\(cluster="):
            ex.options(backend="dask")
        with pytest.raises(ValueError, match="no cluster"):
            ex.options(timeout=5).options(backend="dask")


def test_auto_never_imports_dask_without_a_cluster() -> None:
    # CPU-bound, waiting and mapped work, and a refused hint: no Dask.
    code = """
        import sys
        import unirun
        from _auto_tasks import nap, spin

        if __name__ == "__main__":
            with unirun.AutoExecutor() as ex:
                for _ in range(4):
                    ex.submit(spin, 0.02).result()
                ex.submit(nap, 0.01).result()
                assert len(list(ex.map(spin, [0.001] * 200))) == 200
                try:
                    ex.options(backend="dask")
                except ValueError:
                    pass
            assert not {"dask", "distributed"} & set(sys.modules), "imported"
            print("ok")
    """
    done = _run(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- where work goes ------------------------------------------------------------------


def test_dask_hint_runs_on_the_cluster(
    auto: unirun.AutoExecutor, client: distributed.Client
) -> None:
    view = auto.options(backend="dask")
    assert view.submit(getpid).result(timeout=60) in worker_pids(client)
    assert view.submit(async_nap, 0.01).result(timeout=60) == 0.01
    assert list(view.map(square, range(5))) == [0, 1, 4, 9, 16]
    assert auto.explain(getpid) is None  # a hinted call is never probed


def test_long_cpu_call_goes_to_the_cluster(
    auto: unirun.AutoExecutor, client: distributed.Client
) -> None:
    pin(auto, 0.001)
    settle(auto, spin_in, 0.05)
    settled = auto.explain(spin_in)
    assert settled is not None
    if settled.busy < BUSY_MIN or settled.releases_gil:
        # Starved of CPU and GIL, the call read as one that waits: it stays
        # here by rule 3 (or 1), before the cluster's rule is asked.
        pytest.skip(f"the machine is too loaded to read it as CPU-bound: {settled}")
    # A probe's early window (past 50 ms) decides without the cluster, and may
    # still be timing the process pool in the monitor's thread: its no-ops are
    # left out of statistics() only once each is over. Timing it here waits for
    # that (or does it now, once): nothing of auto's own is in flight after.
    auto._router.pools.process_cost()
    before = auto.statistics()
    assert settled.backend == "dask", settled.reason
    assert "round trip to the Dask cluster (1.0 ms)" in settled.reason
    assert f"whose {4 * usable_cpus() + 4} worker threads outnumber" in settled.reason
    value, pid = auto.submit(spin_in, 0.05).result(timeout=120)
    assert value == 0.05
    assert pid in worker_pids(client)
    # statistics() counts the cluster's task with the others (its verdict is
    # the latest: what this call measured may have revised it on a busy machine).
    after = auto.statistics()
    assert after.done == before.done + 1
    assert auto._router.pools.cluster().statistics().done == 1
    assert after.verdicts["_auto_tasks.spin_in"] == auto.explain(spin_in)


def test_short_cpu_call_stays_here(
    auto: unirun.AutoExecutor, client: distributed.Client
) -> None:
    pin(auto, 0.05)  # ten trips: 0.5 s
    settle(auto, spin_in, 0.005)
    value, pid = auto.submit(spin_in, 0.005).result(timeout=120)
    assert value == 0.005
    assert pid not in worker_pids(client)
    verdict = auto.explain(spin_in)
    assert verdict is not None
    assert verdict.backend in ("thread", "process"), verdict.reason
    assert (
        "the Dask cluster does not pay: one call is shorter than 10 round trips "
        "to it (50.0 ms each)"
    ) in verdict.reason
    assert auto._router.pools.cluster().statistics().submitted == 0


def test_a_call_routed_to_the_cluster_that_does_not_pickle_runs_here(
    auto: unirun.AutoExecutor,
    client: distributed.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As on processes (test_routing.py): auto chose the cluster, so a call
    # whose arguments do not pickle runs on a thread here, not failed.
    import threading

    from unirun._auto.classify import Verdict

    def scripted(facts: Any, costs: Any) -> Verdict:
        return Verdict("dask", "scripted", 0.05, 0.05, 1.0, 1.0, False, True, 1)

    monkeypatch.setattr("unirun._auto.verdicts.classify", scripted)
    monkeypatch.setattr("unirun._auto.routing.watch_process", lambda *_: None)
    auto.submit(pid_carrying, 1).result(timeout=60)  # the probe
    assert auto.submit(pid_carrying, 2).result(timeout=60) in worker_pids(client)
    lock = threading.Lock()
    assert auto.submit(pid_carrying, lock).result(timeout=60) == os.getpid()
    pids = list(auto.map(pid_carrying, [3, lock, 4], chunksize=1, timeout=60))
    assert pids[1] == os.getpid()
    assert {pids[0], pids[2]} <= worker_pids(client)
    assert auto.statistics().failed == 0


def test_map_of_short_cpu_calls_goes_to_the_cluster_in_chunks(
    auto: unirun.AutoExecutor, client: distributed.Client
) -> None:
    pin(auto, 0.002)  # a chunk pays from 20 ms: several 2 ms items, even slowed
    results = list(auto.map(spin_in, [0.002] * 300))
    assert [value for value, _ in results] == [0.002] * 300
    pids = worker_pids(client)
    assert {pid for _, pid in results[-100:]} <= pids  # the rest went there
    sent = sum(pid in pids for _, pid in results)
    cluster = auto._router.pools.cluster().statistics()
    assert 0 < cluster.submitted < sent  # in chunks, not one task per item


def test_cluster_trip_and_threads_are_measured_once(
    auto: unirun.AutoExecutor, client: distributed.Client
) -> None:
    pools = auto._router.pools
    trip, slots = pools.cluster_cost()
    assert 0 < trip < float("inf")
    assert slots == sum(client.nthreads().values()) == 2  # type: ignore[no-untyped-call]  # unannotated upstream
    assert pools.cluster_cost() == (trip, slots)
    assert pools.cluster().statistics().submitted == 6  # one to warm up, five timed
    assert auto.statistics().submitted == 0  # auto's own no-ops are left out


def test_long_cpu_call_routes_on_figures_measured_here(
    client: distributed.Client,
) -> None:
    # One process here (max_workers=1) against the cluster's two threads.
    with unirun.AutoExecutor(max_workers=1, cluster=client) as ex:
        settle(ex, spin_in, 0.5)
        verdict = ex.explain(spin_in)
        costs = ex._router.pools.costs()
        assert verdict is not None
        assert costs.cluster_s is not None  # measured at the probe's end
        assert costs.cluster_slots == 2
        if not cluster_pays(verdict.cpu_s, costs):
            pytest.skip(
                f"a round trip to the cluster took {costs.cluster_s * 1e3:.0f} ms "
                "here: the machine is too loaded for a 0.5 s call to pay for it"
            )
        assert verdict.backend == "dask", verdict.reason
        value, pid = ex.submit(spin_in, 0.5).result(timeout=120)
        assert value == 0.5
        assert pid in worker_pids(client)


# -- what it closes -------------------------------------------------------------------


def test_a_users_client_stays_open(client: distributed.Client) -> None:
    ex = unirun.AutoExecutor(cluster=client)
    inner = ex._router.pools.cluster()
    future = ex.options(backend="dask").submit(square, 3)
    ex.shutdown(wait=True)
    assert future.done()  # shutdown waited for the cluster's task
    assert future.result() == 9
    assert inner._shutdown
    assert client.status == "running"


def test_a_users_dask_executor_stays_usable(client: distributed.Client) -> None:
    with unirun.DaskExecutor(client=client, max_workers=1) as users:
        with unirun.AutoExecutor(cluster=users) as ex:
            inner = ex._router.pools.cluster()
            assert inner is not users
            assert inner._parallelism() == 1  # the user's own bound
            assert ex.options(backend="dask").submit(square, 4).result(60) == 16
        assert inner._shutdown
        assert not users._shutdown
        assert users.submit(square, 5).result(timeout=60) == 25


def test_a_client_auto_opened_is_closed(client: distributed.Client) -> None:
    address = address_of(client)
    with unirun.AutoExecutor(cluster=address) as ex:
        inner = ex._router.pools.cluster()
        assert inner.client is not client
        assert address in repr(ex)
        assert ex.options(backend="dask").submit(square, 6).result(60) == 36
    assert inner.client.status == "closed"
    assert client.status == "running"  # the cluster runs on
    assert sum(client.nthreads().values()) == 2  # type: ignore[no-untyped-call]  # unannotated upstream


def test_program_without_shutdown_exits(client: distributed.Client) -> None:
    code = """
        import sys
        import unirun
        from _tasks import square

        if __name__ == "__main__":
            ex = unirun.AutoExecutor(cluster=sys.argv[1])
            assert ex.options(backend="dask").submit(square, 3).result() == 9
            print("ok")
    """
    done = _run(code, address_of(client))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script (the tests folder importable)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=TESTS,
    )
