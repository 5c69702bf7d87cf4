"""From measurements to a verdict: pure functions, no clock and no I/O.

The rules, in order (docs/auto.md explains each threshold and how it was chosen):

1. the call returned a coroutine                         -> coroutine
2. one call costs less than half a hand-off (>= 50 µs)   -> inline
3. computes (holding the GIL) from 1/slots (mixed_min) to
   50% of the time, waits the rest, its CPU per call pays
   for a process round trip, read so by two probes
   (after one: thread, for now)                          -> process
4. it mostly waits (busy share < BUSY_MIN)               -> thread
   (a first reading under PAUSE_MAX: thread, for now,
   until a second probe)
5. CPU-bound on a free-threaded interpreter              -> thread
6. CPU-bound and releases the GIL (free share >= 0.5)    -> thread
7. CPU-bound, the GIL test could not tell (or the call
   imported modules), and another probe will look again  -> thread, for now
8. CPU-bound, holds the GIL, a Dask cluster attached, and
   the cluster pays (:func:`cluster_pays`)               -> dask
9. CPU-bound, holds the GIL, one usable CPU              -> thread
10. CPU-bound, holds the GIL, cannot be pickled          -> thread
11. CPU-bound, holds the GIL, long enough for a process  -> process
12. otherwise (too short to pay for a process)           -> thread

Rules 3, 8, 10 and 11 need to know whether the call pickles and what a process
(or cluster) round trip costs, which take time to find out: :func:`classify`
asks for them (a :class:`Need`) only when a verdict turns on them, and the
caller supplies them and asks again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .cluster_rules import (
    CLUSTER_FACTOR,
    cluster_pays,
    local_slots,
    not_to_cluster,
    to_cluster,
)
from .cluster_rules import fmt_seconds as _fmt

if TYPE_CHECKING:
    from .._types import Backend
    from .profiling import ProbeSample

__all__ = [
    "BLOCKED_MIN",
    "BUSY_MIN",
    "CLUSTER_FACTOR",
    "FREE_MIN",
    "HANDOFF_MIN",
    "INLINE_FRACTION",
    "MIN_HELD",
    "MIXED_MIN",
    "PAUSE_MAX",
    "PROCESS_FACTOR",
    "UNSURE_MIN",
    "Costs",
    "Facts",
    "Need",
    "Verdict",
    "busy_share",
    "classify",
    "cluster_pays",
    "free_share",
    "local_slots",
    "mixed_min",
]

#: A call is CPU-bound when it used at least this share of the time it could run.
BUSY_MIN = 0.5
#: Rule 3's least busy share, whatever the slots (see :func:`mixed_min`).
MIXED_MIN = 0.1
#: A call that ran for at least this share of the canary's stretches (while the
#: canary held the GIL) releases the GIL: threads run it in parallel.
FREE_MIN = 0.5
#: A share from this up to FREE_MIN is too close to call: the test could not tell
#: (a 5 ms GIL-free numpy call read 0.43 in one quiet probe of a dozen, while
#: pure-Python loops read below 0.05).
UNSURE_MIN = 0.25
#: The canary's stretches tell only when they add up to this much (seconds).
MIN_HELD = 0.0004
#: A call that kept the canary off the GIL for this share of the time the canary
#: wanted it holds the GIL (when no other thread was busy meanwhile).
BLOCKED_MIN = 0.8
#: ... and the canary wanted it for at least this long (seconds).
BLOCKED_WATCH = 0.001
#: A call shorter than this fraction of a thread hand-off runs inline.
INLINE_FRACTION = 0.5
#: The least thread hand-off rule 2 counts (s); docs/auto.md says why.
HANDOFF_MIN = 50e-6
#: A first reading of a wait this short (s) is read again: a pause of the
#: machine (another VM's turn on the CPU, a stopped process) reads as one.
PAUSE_MAX = 0.005
#: A process pays when one call lasts this many round trips (scaled by CPUs).
PROCESS_FACTOR = 2.0
#: Arguments cost a round trip this many times their pickling here, from this
#: much on (less is noise); 200 MiB of bytes: 0.24-0.77 s, a trip 0.9-1.5 s more.
TRANSFER_TRIPS, TRANSFER_MIN_S = 3.0, 0.005
#: Other threads can take the GIL away for at most this share of the wall time in
#: the busy-share estimate; beyond it the estimate is capped (see busy_share).
_FLOOR = 0.25


class Need(enum.Enum):
    """What :func:`classify` must know before it can decide."""

    #: Whether the function and its arguments pickle (``Facts.transferable``).
    TRANSFER = "whether the call pickles"
    #: The round trip of a no-op through a warm process pool (``Costs.process_s``).
    PROCESS_COST = "the process round trip"
    #: The round trip of a no-op through the Dask cluster and its worker threads
    #: (``Costs.cluster_s``, ``Costs.cluster_slots``).
    CLUSTER_COST = "the cluster's round trip"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Where an :class:`AutoExecutor` runs a callable, and why: what
    :meth:`AutoExecutor.explain` and :func:`unirun.profile` return.

    Attributes:
        backend: ``"thread"``, ``"process"``, ``"coroutine"``, ``"inline"`` (too
            short for a hand-off of its own: a submitted call runs with other
            short calls on one thread of the pool, a ``map`` runs such items in
            batches; only the ``options`` hint runs a call in the caller) or
            ``"dask"`` (the Dask cluster the executor was given).
        reason: one sentence saying why.
        wall_s: wall time of one call, in seconds (the latest measurement).
        cpu_s: CPU time of the worker's own thread for one call, in seconds.
        cpu_ratio: ``cpu_s / wall_s``; near 1 for CPU work, near 0 for waiting.
            A thread starved of the GIL by busy neighbours also shows a low
            ratio; the verdict corrects for that (see ``busy``).
        busy: the share of the time the call could run that it spent on a CPU,
            after discounting time other threads held the GIL.
        releases_gil: whether the call ran while another thread held the GIL;
            ``None`` if the test could not tell (the call was too short, no CPU
            was free for it) or the call is not CPU-bound.
        transferable: whether the call pickles for a process; ``None`` if it did
            not matter.
        samples: how many calls were measured.
        provisional: a later call is measured again before the verdict
            settles (one reading was not enough to tell); calls follow this
            verdict meanwhile.
    """

    backend: Backend
    reason: str
    wall_s: float
    cpu_s: float
    cpu_ratio: float
    busy: float
    releases_gil: bool | None
    transferable: bool | None
    samples: int
    provisional: bool = False


@dataclass(frozen=True, slots=True)
class Costs:
    """Dispatch costs measured on this machine, and what the machine can do.

    Attributes:
        thread_s: round trip of a no-op through a thread pool.
        process_s: round trip of a no-op through a warm process pool; ``None``
            until measured.
        cpus: CPUs this process may use.
        free_threaded: the interpreter runs threads in parallel.
        process_slots: workers of the process pool for CPU-bound calls
            (``None``: one per CPU).
        mixed_slots: calls at a time that both the thread pool and the pool
            for computing-and-waiting calls run (``None``: four per CPU).
        cluster: a Dask cluster is attached.
        cluster_s: round trip of a no-op through the cluster; ``None`` until
            measured, ``inf`` when it could not be.
        cluster_slots: the cluster's worker threads this executor may use
            (measured with ``cluster_s``).
    """

    thread_s: float
    process_s: float | None
    cpus: int
    free_threaded: bool = False
    process_slots: int | None = None
    mixed_slots: int | None = None
    cluster: bool = False
    cluster_s: float | None = None
    cluster_slots: int = 0


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the classifier uses: one probe's numbers plus what is known.

    Attributes:
        wall_s: wall time of the call.
        cpu_s: CPU time of its thread.
        busy: its busy share (:func:`busy_share`).
        free_share: the share of the GIL test in which it ran without the GIL
            (:func:`free_share`); ``None`` when the test could not tell.
        returned_awaitable: the call returned a coroutine (an awaitable of
            another kind is a plain value, returned as is).
        transferable: whether it pickles; ``None`` until checked.
        transfer_error: why it does not pickle.
        transfer_s: how long pickling the call took, when checked (seconds).
        samples: how many calls were measured.
        recheck: a later probe will look at the GIL again if this one could
            not tell.
        first_reading: no earlier probe read the call as computing and
            waiting; rule 3 needs two such readings in a row.
        imported: modules were imported while the call ran (a first call's
            lazy import, say): the import held the GIL, so the GIL test could
            not tell what the call does.
    """

    wall_s: float
    cpu_s: float
    busy: float
    free_share: float | None
    returned_awaitable: bool = False
    transferable: bool | None = None
    transfer_error: str = ""
    transfer_s: float = 0.0
    samples: int = 1
    recheck: bool = False
    first_reading: bool = False
    imported: bool = False


def busy_share(sample: ProbeSample) -> float:
    """Return the busy share of a probe, corrected for GIL and CPU contention.

    ``busy = demand / available`` where demand is the probe thread's CPU time and
    available is the wall time minus the time other threads of this process held
    the GIL (the canary's own CPU left out) and minus the time the probe waited
    for a CPU on the OS run queue. A CPU-bound call next to N busy threads gets
    ~1/(N+1) of the wall time but also ~1/(N+1) of the GIL, so its busy share
    stays ~1; a call that sleeps has ~0 demand whatever its neighbours do.
    Available time is floored at ``_FLOOR`` of the wall time so that a waiting
    call next to busy threads cannot divide a tiny demand by a tiny denominator.
    Where the monitor sampled the probe's kernel state, the share of samples in
    which it computed is used when higher: the samples start late,
    so a CPU phase at the start of a call shows in the accounting instead.
    """
    window = sample.window
    wall, demand = sample.wall_s, sample.cpu_s
    others = sample.others_cpu_s - (window.canary_cpu if window is not None else 0.0)
    gil_others = min(max(0.0, others), max(0.0, wall - demand))
    available = max(wall - gil_others - sample.wait_s, _FLOOR * wall, 1e-9)
    accounted = min(1.0, demand / available)
    if window is not None and window.run_share is not None:
        return max(window.run_share, accounted)
    return accounted


def free_share(sample: ProbeSample) -> float | None:
    """Return the share of the GIL test in which the probe ran without the GIL.

    From the canary's stretches when they held the GIL long enough
    (:data:`MIN_HELD`, after the probe's waits for a CPU): the probe's CPU time
    during them over their length. A probe that kept the canary off the GIL for
    most of the time it was watched (:data:`BLOCKED_MIN`), computing whenever it
    had a CPU, with no other thread busy, held the GIL: 0. ``None`` when neither
    tells (too short a call, other processes held the CPUs, or other threads
    competed for the GIL).
    """
    window = sample.window
    if window is None:
        return None
    # The kernel counts a thread's wait for a CPU only once it gets one, so the
    # stretches cannot all tell whether the probe had a CPU during them: every
    # wait of the window is taken off their length (at worst, too much).
    probe_wait = max(window.probe_wait, sample.wait_s)
    held = window.held_s - probe_wait
    if held >= MIN_HELD:
        share = min(1.0, window.free_s / held)
        # Another thread of ours that computed without the GIL meanwhile (a
        # BLAS pool spinning after numpy's import, say) may have had the
        # probe's CPU in the stretches: a low share then says nothing.
        busy_others = window.others_cpu - window.canary_cpu
        if share < FREE_MIN and busy_others > _FLOOR * window.seconds:
            return None
        return share
    others = sample.others_cpu_s - window.canary_cpu
    on_cpu = sample.cpu_s >= BUSY_MIN * max(sample.wall_s - sample.wait_s, 1e-9)
    # The time the canary wanted the GIL: not while it waited for a CPU, nor
    # while it held the GIL itself. A probe that waits for a CPU while it holds
    # the GIL blocks the canary too, whatever it does when it runs: its waits
    # come off both.
    wanted = window.seconds - window.canary_wait - window.canary_cpu - probe_wait
    blocked = window.blocked_s - probe_wait
    if (
        wanted >= BLOCKED_WATCH
        and blocked >= BLOCKED_MIN * wanted
        and on_cpu
        and others <= _FLOOR * blocked
    ):
        return 0.0
    return None


def classify(facts: Facts, costs: Costs) -> Verdict | Need:
    """Return the verdict for ``facts``, or what must be known first.

    Pure and total: the same facts and costs always give the same answer. A
    :class:`Need` is returned only while ``facts.transferable`` or
    ``costs.process_s`` is ``None`` and the verdict turns on it.
    """
    cpu_bound = facts.busy >= BUSY_MIN
    # An import holds the GIL: a share read across one tells nothing.
    share = None if facts.imported else facts.free_share
    unsure = share is None or UNSURE_MIN <= share < FREE_MIN
    releases = None if unsure else share is not None and share >= FREE_MIN

    def verdict(backend: Backend, reason: str, provisional: bool = False) -> Verdict:
        return Verdict(
            backend=backend,
            reason=reason,
            wall_s=facts.wall_s,
            cpu_s=facts.cpu_s,
            cpu_ratio=min(1.0, facts.cpu_s / facts.wall_s) if facts.wall_s else 0.0,
            busy=facts.busy,
            releases_gil=releases if cpu_bound else None,
            transferable=facts.transferable,
            samples=facts.samples,
            provisional=provisional,
        )

    holds = (
        "holds the GIL"
        if releases is False
        else "may hold the GIL (modules were imported while it ran, and an import "
        "holds the GIL: the GIL test could not tell)"
        if facts.imported
        else "may hold the GIL (the GIL test could not tell: no CPU was free for "
        "it, the call was too short, or it read too close to call)"
    )
    # What one call costs by itself: its CPU time when CPU-bound (its wall time
    # also holds waits for the GIL that busy neighbours caused), else its wall.
    cost = facts.cpu_s if cpu_bound else facts.wall_s
    wall = _fmt(cost)
    if facts.returned_awaitable:
        return verdict(
            "coroutine",
            "it returns a coroutine, which runs on the loop (the call itself "
            "runs on a worker thread)",
        )
    handoff = max(costs.thread_s, HANDOFF_MIN)
    if cost < INLINE_FRACTION * handoff:
        return verdict(
            "inline",
            f"one call takes {wall}, less than half a thread hand-off "
            f"({_fmt(handoff)}), so it runs with other short calls on one thread",
        )
    parallel = costs.cpus >= 2 and not costs.free_threaded
    # A process round trip never costs less than a thread hand-off: a call
    # whose CPU is below what that would need never pays for processes, and
    # no process pool is started to measure what it costs.
    may_pay = parallel and facts.cpu_s >= _process_threshold(costs, costs.thread_s)
    if (
        not cpu_bound
        and facts.busy >= mixed_min(costs)
        and releases is not True
        and may_pay
        and facts.transferable is not False
    ):
        if facts.transferable is None:
            return Need.TRANSFER
        if costs.process_s is None:
            return Need.PROCESS_COST
        if facts.cpu_s >= _process_threshold(costs, _trip(costs.process_s, facts)):
            reading = (
                f"it computes {facts.busy:.0%} of the time while holding the GIL "
                f"({_fmt(facts.cpu_s)} per call) and waits the rest"
            )
            if facts.first_reading:
                # A first call's set-up, or a moment of contention, can read a
                # waiting call (an HTTP request) as this; on processes it would
                # then wait with a few workers instead of many threads.
                return verdict(
                    "thread",
                    f"{reading}; it runs on threads until a second call confirms "
                    "that reading",
                    provisional=True,
                )
            return verdict(
                "process",
                f"{reading}, so processes run the computing parts in parallel "
                "and overlap the waits",
            )
    if not cpu_bound:
        waits = f"busy {facts.busy:.0%} of the time it could run (one call {wall})"
        if facts.first_reading and cost < PAUSE_MAX:
            return verdict(
                "thread",
                f"it waited ({waits}), as briefly as a pause of the machine "
                "(another VM's turn on the CPU) makes any call wait; it runs on "
                "threads until a second call confirms that reading",
                provisional=True,
            )
        return verdict(
            "thread", f"it mostly waits: {waits}, so threads overlap the waits"
        )
    if costs.free_threaded:
        return verdict(
            "thread",
            "it is CPU-bound and this interpreter is free-threaded, so threads "
            "run it in parallel",
        )
    if releases:
        return verdict(
            "thread",
            f"it is CPU-bound but releases the GIL (it ran {share:.0%} of the "
            "time another thread held the GIL), so threads run it in parallel",
        )
    if releases is None and facts.recheck:
        return verdict(
            "thread",
            f"it is CPU-bound and {holds}; it runs on threads until a later "
            "call's GIL test tells",
            provisional=True,
        )
    stays = ""  # why the cluster does not take it, said in a local verdict
    if costs.cluster and facts.transferable is not False:
        if facts.transferable is None:
            return Need.TRANSFER
        if costs.cluster_s is None:
            return Need.CLUSTER_COST
        if cluster_pays(cost, costs):
            return verdict(
                "dask", f"it is CPU-bound and {holds}, and {to_cluster(cost, costs)}"
            )
        stays = f"; {not_to_cluster(cost, costs)}"
    if costs.cpus < 2 or costs.process_s == float("inf"):
        return verdict(
            "thread",
            f"it is CPU-bound and {holds}, but only one CPU is usable (or no "
            f"worker process can start), so processes cannot run it faster{stays}",
        )
    if not may_pay:
        return verdict(
            "thread",
            f"it is CPU-bound and {holds}, but one call ({wall}) is too short "
            f"to pay for a process round trip (more than a thread hand-off, "
            f"{_fmt(costs.thread_s)} here){stays}",
        )
    if facts.transferable is None:
        return Need.TRANSFER
    if not facts.transferable:
        return verdict(
            "thread",
            f"it is CPU-bound and {holds}, but it cannot be pickled for a "
            f"process ({facts.transfer_error}), so it stays on threads",
        )
    if costs.process_s is None:
        return Need.PROCESS_COST
    trip = _trip(costs.process_s, facts)
    with_args = f"{_fmt(trip)} here" + (
        " with its arguments" if trip > 2 * costs.process_s else ""
    )
    if cost >= _process_threshold(costs, trip):
        return verdict(
            "process",
            f"it is CPU-bound and {holds}, and one call ({wall}) pays "
            f"{cost / trip:.0f}x for a process round trip ({with_args}), so "
            f"processes run it in parallel{stays}",
        )
    return verdict(
        "thread",
        f"it is CPU-bound and {holds}, but one call ({wall}) is too short "
        f"to pay for a process round trip ({with_args}){stays}",
    )


def mixed_min(costs: Costs) -> float:
    """The busy share from which calls that compute and wait go to processes.

    ``n`` such calls at a time keep the GIL busy from a busy share of ``1/n``
    on: threads then queue for it, while processes compute in parallel and
    overlap the waits as well. ``1/8`` on two CPUs; never below MIXED_MIN.
    """
    slots = costs.mixed_slots or 4 * costs.cpus
    return max(MIXED_MIN, 1 / slots)


def _trip(process_s: float, facts: Facts) -> float:
    """A process round trip for the call: a no-op's, plus its arguments' way
    there (pickled, copied through the pipe, unpickled: TRANSFER_TRIPS times
    what pickling them took here, from TRANSFER_MIN_S on)."""
    heavy = facts.transfer_s >= TRANSFER_MIN_S
    return process_s + TRANSFER_TRIPS * facts.transfer_s * heavy


def _process_threshold(costs: Costs, process_s: float) -> float:
    """The CPU per call from which processes pay (rules 3 and 11)."""
    return PROCESS_FACTOR * process_s * costs.cpus / (costs.cpus - 1)
