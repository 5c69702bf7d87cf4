"""From measurements to a verdict: a pure function, no clock and no I/O.

The rules, in order (docs/auto.md explains each threshold and how it was chosen):

1. the call returned an awaitable                        -> coroutine
2. one call costs less than half a thread hand-off       -> inline
3. computes 25-50% holding the GIL, waits the rest,
   and its CPU per call pays for a process round trip    -> process
4. it mostly waits (busy share < BUSY_MIN)               -> thread
5. CPU-bound on a free-threaded interpreter              -> thread
6. CPU-bound and releases the GIL (overlap >= 1.2)       -> thread
7. CPU-bound, holds the GIL, one usable CPU              -> thread
8. CPU-bound, holds the GIL, cannot be pickled           -> thread
9. CPU-bound, holds the GIL, long enough for a process   -> process
10. otherwise (too short to pay for a process)           -> thread
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .profiling import ProbeSample

__all__ = [
    "BUSY_MIN",
    "INLINE_FRACTION",
    "MIXED_MIN",
    "OVERLAP_MIN",
    "PROCESS_FACTOR",
    "Costs",
    "Facts",
    "Verdict",
    "busy_share",
    "classify",
]

Backend = Literal["thread", "process", "coroutine", "inline"]

#: A call is CPU-bound when it used at least this share of the time it could run.
BUSY_MIN = 0.5
#: A call that computes at least this share of the time (holding the GIL) and
#: waits the rest gains from processes too: their CPU parts run in parallel.
MIXED_MIN = 0.25
#: With the canary, a GIL-releasing call and the canary run at once: overlap ~2.
#: Holding the GIL they take turns: overlap <= 1. The cut is between, with margin.
OVERLAP_MIN = 1.2
#: A call shorter than this fraction of a thread hand-off runs inline.
INLINE_FRACTION = 0.5
#: A process pays when one call lasts this many round trips (scaled by CPUs).
PROCESS_FACTOR = 2.0
#: Other threads can take the GIL away for at most this share of the wall time in
#: the busy-share estimate; beyond it the estimate is capped (see busy_share).
_FLOOR = 0.25


@dataclass(frozen=True, slots=True)
class Verdict:
    """Where an :class:`AutoExecutor` runs a callable, and why.

    Returned by :meth:`AutoExecutor.explain` and :func:`unirun.profile`.

    Attributes:
        backend: ``"thread"``, ``"process"``, ``"coroutine"`` or ``"inline"`` (run
            in the caller's thread; a ``map`` runs such items in batches).
        reason: one sentence saying why.
        wall_s: wall time of one call, in seconds (the latest measurement).
        cpu_s: CPU time of the worker's own thread for one call, in seconds.
        cpu_ratio: ``cpu_s / wall_s``; near 1 for CPU work, near 0 for waiting.
            A thread starved of the GIL by busy neighbours also shows a low
            ratio; the verdict corrects for that (see ``busy``).
        busy: the share of the time the call could run that it spent on a CPU,
            after discounting time other threads held the GIL.
        releases_gil: whether two runs overlapped in CPU; ``None`` if not measured
            (the call was too short, or it is not CPU-bound).
        transferable: whether the call pickles for a process; ``None`` if it did
            not matter.
        samples: how many calls were measured.
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


@dataclass(frozen=True, slots=True)
class Costs:
    """Dispatch costs measured on this machine, and what the machine can do.

    Attributes:
        thread_s: round trip of a no-op through a thread pool.
        process_s: round trip of a no-op through a warm process pool; ``None``
            until measured.
        cpus: CPUs this process may use.
        free_threaded: the interpreter runs threads in parallel.
    """

    thread_s: float
    process_s: float | None
    cpus: int
    free_threaded: bool = False


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the classifier uses: one probe's numbers plus what is known."""

    wall_s: float
    cpu_s: float
    busy: float
    overlap: float | None
    returned_awaitable: bool = False
    transferable: bool | None = None
    transfer_error: str = ""
    samples: int = 1
    saturated: bool = False


def busy_share(sample: ProbeSample) -> tuple[float, float | None]:
    """Return (busy share, overlap) of a probe, corrected for GIL contention.

    ``busy = demand / available`` where demand is the probe thread's CPU time and
    available is the wall time minus the time other threads of this process held
    the GIL. A CPU-bound call next to N busy threads gets ~1/(N+1) of the wall
    time but also ~1/(N+1) of the GIL, so its busy share stays ~1; a call that
    sleeps has ~0 demand whatever its neighbours do. Available time is floored
    at ``_FLOOR`` of the wall time so that a waiting call next to busy threads
    cannot divide a tiny demand by a tiny denominator.
    """
    window = sample.window
    if window is not None and window.run_share is not None:
        # The state samples start late (the monitor waits for the GIL too): a
        # CPU phase at the start of the call shows in its raw CPU ratio instead.
        raw = sample.cpu_s / sample.wall_s if sample.wall_s else 0.0
        return max(window.run_share, min(1.0, raw)), window.overlap
    if window is not None:
        wall, demand = window.seconds, window.probe_cpu
        others = window.others_cpu
        overlap: float | None = window.overlap
    else:
        wall, demand = sample.wall_s, sample.cpu_s
        others = sample.others_cpu_s
        overlap = None
    gil_others = min(others, max(0.0, wall - demand))
    available = max(wall - gil_others, _FLOOR * wall, 1e-9)
    return min(1.0, demand / available), overlap


def _fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def classify(facts: Facts, costs: Costs) -> Verdict | None:
    """Return the verdict for ``facts``; ``None`` if the process cost is needed.

    Pure and total: the same facts and costs always give the same verdict. The
    caller measures ``costs.process_s`` and calls again when this returns None.
    """
    releases = None if facts.overlap is None else facts.overlap >= OVERLAP_MIN
    if releases is False and facts.saturated:
        releases = None  # no free CPU for the overlap to show: not measured
    cpu_bound = facts.busy >= BUSY_MIN

    def verdict(backend: Backend, reason: str) -> Verdict:
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
        )

    holds = (
        "holds the GIL"
        if releases is False
        else "may hold the GIL (the test could not tell: no CPU was free for it)"
    )
    # What one call costs by itself: its CPU time when CPU-bound (its wall time
    # also holds waits for the GIL that busy neighbours caused), else its wall.
    cost = facts.cpu_s if cpu_bound else facts.wall_s
    wall = _fmt(cost)
    if facts.returned_awaitable:
        return verdict("coroutine", "it returns an awaitable, so it runs on the loop")
    if cost < INLINE_FRACTION * costs.thread_s:
        return verdict(
            "inline",
            f"one call takes {wall}, less than half a thread hand-off "
            f"({_fmt(costs.thread_s)}), so it runs where it is called",
        )
    mixed = (
        not cpu_bound
        and facts.busy >= MIXED_MIN
        and releases is not True
        and facts.transferable is not False
        and costs.cpus >= 2
        and not costs.free_threaded
    )
    if mixed:
        if costs.process_s is None:
            return None
        needed = PROCESS_FACTOR * costs.process_s * costs.cpus / (costs.cpus - 1)
        if facts.cpu_s >= needed:
            return verdict(
                "process",
                f"it computes {facts.busy:.0%} of the time while holding the GIL "
                f"({_fmt(facts.cpu_s)} per call) and waits the rest, so processes "
                "run the computing parts in parallel and overlap the waits",
            )
    if not cpu_bound:
        return verdict(
            "thread",
            f"it mostly waits: busy {facts.busy:.0%} of the time it could run "
            f"(one call {wall}), so threads overlap the waits",
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
            f"it is CPU-bound but releases the GIL (two runs overlapped "
            f"{facts.overlap:.1f}x), so threads run it in parallel",
        )
    if costs.cpus < 2 or costs.process_s == float("inf"):
        return verdict(
            "thread",
            f"it is CPU-bound and {holds}, but only one CPU is usable (or no "
            "worker process can start), so processes cannot run it faster",
        )
    if facts.transferable is False:
        return verdict(
            "thread",
            f"it is CPU-bound and {holds}, but it cannot be pickled for a "
            f"process ({facts.transfer_error}), so it stays on threads",
        )
    if costs.process_s is None:
        return None
    needed = PROCESS_FACTOR * costs.process_s * costs.cpus / (costs.cpus - 1)
    if cost >= needed:
        return verdict(
            "process",
            f"it is CPU-bound and {holds}, and one call ({wall}) pays "
            f"{cost / costs.process_s:.0f}x for a process round trip "
            f"({_fmt(costs.process_s)} here), so processes run it in parallel",
        )
    return verdict(
        "thread",
        f"it is CPU-bound and {holds}, but one call ({wall}) is too short "
        f"to pay for a process round trip ({_fmt(costs.process_s)} here)",
    )
