"""When a Dask cluster pays: the rule as a pure function, against fake measurements.

No cluster and no clock: each row gives the facts and costs (the cluster's round
trip and worker threads included) that a probe and the measurements would have
produced, and the verdict, map plan or missing fact the rule implies.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unirun._auto.classify import (
    CLUSTER_FACTOR,
    Costs,
    Facts,
    Need,
    Verdict,
    classify,
    cluster_pays,
    local_slots,
)
from unirun._auto.mapping import MapPlan, plan_map

#: Two CPUs here; a cluster of 8 worker threads 10 ms away.
CLUSTER = Costs(
    thread_s=50e-6,
    process_s=300e-6,
    cpus=2,
    cluster=True,
    cluster_s=0.01,
    cluster_slots=8,
)
NO_CLUSTER = replace(CLUSTER, cluster=False, cluster_s=None, cluster_slots=0)
UNMEASURED = replace(CLUSTER, cluster_s=None, cluster_slots=0)
SMALL = replace(CLUSTER, cluster_slots=2)  # no more threads than processes here
THREE = replace(CLUSTER, cluster_slots=3)
ONE_CPU = replace(CLUSTER, cpus=1, cluster_slots=2)
ONE_CPU_ONE_SLOT = replace(CLUSTER, cpus=1, cluster_slots=1)
NO_PROCESSES = replace(CLUSTER, process_s=float("inf"), cluster_slots=2)
ONE_PROCESS = replace(CLUSTER, process_slots=1, cluster_slots=2)
UNREACHABLE = replace(CLUSTER, cluster_s=float("inf"), cluster_slots=0)
PROCESS_UNMEASURED = replace(CLUSTER, process_s=None)
FREE_THREADED = replace(CLUSTER, free_threaded=True)


def facts(
    cpu_s: float,
    busy: float = 1.0,
    free: float | None = 0.0,
    *,
    transferable: bool | None = True,
    recheck: bool = False,
) -> Facts:
    return Facts(
        wall_s=cpu_s / max(busy, 1e-3),
        cpu_s=cpu_s,
        busy=busy,
        free_share=free,
        transferable=transferable,
        transfer_error="" if transferable is not False else "TypeError: a lock",
        recheck=recheck,
    )


# (id, facts, costs, backend or the Need, words in the reason)
TABLE: list[tuple[str, Facts, Costs, str | Need, str]] = [
    ("long, holds the GIL", facts(1.0), CLUSTER, "dask",
     "pays 100x for a round trip to the Dask cluster (10.0 ms), whose 8 worker "
     "threads outnumber the 2 processes here"),
    ("exactly ten trips", facts(CLUSTER_FACTOR * 0.01), CLUSTER, "dask", "pays 10x"),
    ("under ten trips", facts(0.09), CLUSTER, "process",
     "the Dask cluster does not pay: one call is shorter than 10 round trips to it "
     "(10.0 ms each)"),
    ("short", facts(400e-6), CLUSTER, "thread", "does not pay"),
    ("no more threads than processes", facts(1.0), SMALL, "process",
     "its 2 worker threads do not outnumber the 2 processes here"),
    ("three threads, ten trips", facts(0.1), THREE, "dask", "outnumber"),
    ("one CPU", facts(0.5), ONE_CPU, "dask", "outnumber the one thread here"),
    ("one CPU, one slot", facts(0.5), ONE_CPU_ONE_SLOT, "thread",
     "one CPU is usable"),
    ("no processes here", facts(0.5), NO_PROCESSES, "dask",
     "outnumber the one thread here"),
    ("one process here", facts(0.5), ONE_PROCESS, "dask",
     "outnumber the one thread here"),
    ("could not tell, last look", facts(1.0, free=None), CLUSTER, "dask",
     "could not tell"),
    ("could not tell, a later look", facts(1.0, free=None, recheck=True), UNMEASURED,
     "thread", "until a later call"),
    ("releases the GIL", facts(1.0, free=0.9), CLUSTER, "thread",
     "releases the GIL"),
    ("mostly waits", facts(0.05, busy=0.1, free=None), CLUSTER, "thread",
     "mostly waits"),
    ("computes and waits", facts(0.5, busy=0.3, free=None), CLUSTER, "process",
     "waits the rest"),
    ("free-threaded", facts(1.0), FREE_THREADED, "thread", "free-threaded"),
    ("unpicklable", facts(1.0, transferable=False), CLUSTER, "thread",
     "cannot be pickled"),
    ("cluster unreachable", facts(1.0), UNREACHABLE, "process",
     "the Dask cluster has no worker thread for it"),
    ("no cluster", facts(1.0), NO_CLUSTER, "process", "processes run it"),
    ("pickling unchecked", facts(1.0, transferable=None), CLUSTER, Need.TRANSFER, ""),
    ("cluster unmeasured", facts(1.0), UNMEASURED, Need.CLUSTER_COST, ""),
    ("cluster goes first", facts(1.0), PROCESS_UNMEASURED, "dask", "outnumber"),
    ("then the processes", facts(0.05), PROCESS_UNMEASURED, Need.PROCESS_COST, ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "given", "costs", "expected", "words"),
    TABLE,
    ids=[row[0] for row in TABLE],
)
def test_cluster_rule_table(
    row: str, given: Facts, costs: Costs, expected: str | Need, words: str
) -> None:
    result = classify(given, costs)
    if isinstance(expected, Need):
        assert result is expected
        return
    assert isinstance(result, Verdict), result
    assert result.backend == expected, result.reason
    assert words in result.reason
    assert classify(given, costs) == result  # pure


def test_without_a_cluster_nothing_asks_for_one() -> None:
    for _, known, costs, _, _ in TABLE:
        plain = replace(costs, cluster=False)
        result = classify(known, plain)
        assert result is not Need.CLUSTER_COST
        assert not isinstance(result, Verdict) or result.backend != "dask"
        assert not isinstance(result, Verdict) or "Dask" not in result.reason


def test_local_slots() -> None:
    assert local_slots(CLUSTER) == 2
    assert local_slots(replace(CLUSTER, cpus=8)) == 8
    assert local_slots(replace(CLUSTER, cpus=8, process_slots=3)) == 3
    assert local_slots(ONE_CPU) == 1
    assert local_slots(NO_PROCESSES) == 1
    assert local_slots(PROCESS_UNMEASURED) == 2  # taken to start, until measured


costs_st = st.builds(
    Costs,
    thread_s=st.just(50e-6),
    process_s=st.sampled_from([None, 300e-6, float("inf")]),
    cpus=st.integers(1, 64),
    process_slots=st.none() | st.integers(1, 64),
    cluster=st.just(True),
    cluster_s=st.floats(1e-4, 1.0),
    cluster_slots=st.integers(0, 512),
)
seconds = st.floats(1e-6, 100.0)


@given(costs_st, seconds, seconds)
def test_cluster_pays_more_for_longer_calls(costs: Costs, a: float, b: float) -> None:
    short, long = sorted((a, b))
    assert not cluster_pays(short, costs) or cluster_pays(long, costs)


@given(costs_st, seconds, st.integers(0, 512))
def test_cluster_pays_more_with_more_threads(
    costs: Costs, cost: float, more: int
) -> None:
    bigger = replace(costs, cluster_slots=costs.cluster_slots + more)
    assert not cluster_pays(cost, costs) or cluster_pays(cost, bigger)


@given(costs_st, seconds)
def test_cluster_pays_only_past_both_bars(costs: Costs, cost: float) -> None:
    if cluster_pays(cost, costs):
        assert costs.cluster_s is not None
        assert cost >= CLUSTER_FACTOR * costs.cluster_s
        assert costs.cluster_slots > local_slots(costs)
        # The cluster's threads, less the trip's share, outnumber the local.
        trip_share = cost / (cost + costs.cluster_s)
        assert costs.cluster_slots * trip_share > local_slots(costs)


@given(costs_st, seconds)
def test_dask_exactly_when_the_cluster_pays(costs: Costs, cost: float) -> None:
    # A call that holds the GIL and pickles, the GIL test told: the cluster
    # takes it exactly when the rule says it pays, whatever else holds.
    result = classify(facts(cost), costs)
    went = isinstance(result, Verdict) and result.backend == "dask"
    assert went == cluster_pays(cost, costs)


# -- map ------------------------------------------------------------------------------


def verdict(
    backend: str, cpu_s: float, busy: float = 1.0, releases: bool | None = False
) -> Verdict:
    return Verdict(backend, "why", cpu_s, cpu_s, 1.0, busy, releases, None, 1)  # type: ignore[arg-type]  # a backend name


class Asked:
    """Counts the lazy inputs plan_map may ask for."""

    def __init__(self, costs: Costs = CLUSTER) -> None:
        self.cluster = costs
        self.transfers = self.process = self.clusters = 0

    def transferable(self) -> bool:
        self.transfers += 1
        return True

    def process_cost(self) -> float:
        self.process += 1
        return 300e-6

    def cluster_costs(self) -> Costs:
        self.clusters += 1
        return self.cluster


# (id, verdict, items, cluster costs, plan, asks the cluster)
PLANS: list[tuple[str, Verdict, int, Costs, MapPlan, bool]] = [
    ("dask verdict", verdict("dask", 1.0), 10, CLUSTER, MapPlan.CLUSTER, False),
    # 10,000 x 2 ms = 20 s: chunks of 1.25 s on 8 threads pay 125 trips.
    ("process verdict, many", verdict("process", 0.002), 10_000, CLUSTER,
     MapPlan.CLUSTER, True),
    ("process verdict, few threads", verdict("process", 0.002), 10_000, SMALL,
     MapPlan.PROCESS, True),
    # 100 x 2 ms = 0.2 s: chunks of 12.5 ms are not 10 trips of 10 ms.
    ("process verdict, too little", verdict("process", 0.002), 100, CLUSTER,
     MapPlan.PROCESS, True),
    ("short calls, many", verdict("thread", 400e-6), 100_000, CLUSTER,
     MapPlan.CLUSTER, True),
    ("tiny map", verdict("thread", 400e-6), 10, CLUSTER, MapPlan.THREAD, False),
    ("GIL-free", verdict("thread", 0.002, releases=True), 10_000, CLUSTER,
     MapPlan.THREAD, False),
    ("waiting", verdict("thread", 0.002, busy=0.1), 10_000, CLUSTER,
     MapPlan.THREAD, False),
    ("inline", verdict("inline", 1e-6), 10**6, CLUSTER, MapPlan.BATCH, False),
    ("one CPU", verdict("thread", 0.002), 10_000, ONE_CPU, MapPlan.CLUSTER, True),
    ("coroutine", verdict("coroutine", 0.002), 100, CLUSTER, MapPlan.SUBMIT, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "seen", "count", "costs", "plan", "asked"),
    PLANS,
    ids=[row[0] for row in PLANS],
)
def test_plan_map_with_a_cluster(
    row: str, seen: Verdict, count: int, costs: Costs, plan: MapPlan, asked: bool
) -> None:
    ask = Asked(costs)
    got = plan_map(
        seen,
        count,
        costs.cpus,
        False,
        ask.transferable,
        ask.process_cost,
        ask.cluster_costs,
    )
    assert got is plan
    assert ask.clusters == int(asked)
    assert ask.transfers <= 1  # pickled once at most


def test_plan_map_without_a_cluster_never_plans_one() -> None:
    for _, seen, count, costs, plan, _ in PLANS:
        if seen.backend == "dask":
            continue  # only an executor with a cluster makes such a verdict
        ask = Asked(costs)
        got = plan_map(
            seen, count, costs.cpus, False, ask.transferable, ask.process_cost
        )
        assert got is not MapPlan.CLUSTER
        assert (got is plan) or plan is MapPlan.CLUSTER
