"""Rule 8 and a map's chunks: when the Dask cluster pays, and how a verdict says so.

Pure functions of the measured :class:`~.classify.Costs`, as the rest of
``classify``; kept here so that each module reads in one sitting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .classify import Costs

__all__ = [
    "CLUSTER_FACTOR",
    "cluster_pays",
    "fmt_seconds",
    "local_slots",
    "not_to_cluster",
    "to_cluster",
]

#: The cluster pays only for a task that lasts this many round trips to it.
CLUSTER_FACTOR = 10.0


def fmt_seconds(seconds: float) -> str:
    """``seconds`` for a verdict's reason: s, ms or µs."""
    if seconds >= 1e-3:
        return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} µs"


def local_slots(costs: Costs) -> int:
    """How many GIL-holding calls this machine runs at once: one per worker
    process, or one thread where processes cannot help."""
    if costs.cpus < 2 or costs.process_s == float("inf"):
        return 1
    return min(costs.cpus, costs.process_slots or costs.cpus)


def cluster_pays(cost: float, costs: Costs) -> bool:
    """Whether GIL-holding tasks of ``cost`` seconds each finish sooner on the
    cluster than here.

    Both on measured figures: a task lasts at least :data:`CLUSTER_FACTOR`
    round trips to the cluster (the trip adds at most a tenth to it), and the
    cluster's worker threads, each losing the trip's share of its time,
    outnumber what runs here at once (:func:`local_slots`):
    ``slots * cost / (cost + trip) > local``.
    """
    trip, slots = costs.cluster_s, costs.cluster_slots
    if trip is None or slots < 1 or cost < CLUSTER_FACTOR * trip:
        return False
    return slots * cost / (cost + trip) > local_slots(costs)


def _here(costs: Costs) -> str:
    local = local_slots(costs)
    return "the one thread here" if local == 1 else f"the {local} processes here"


def to_cluster(cost: float, costs: Costs) -> str:
    trip = costs.cluster_s or 0.0
    return (
        f"one call ({fmt_seconds(cost)}) pays {cost / trip:.0f}x for a round trip to "
        f"the Dask cluster ({fmt_seconds(trip)}), whose {costs.cluster_slots} worker "
        f"threads outnumber {_here(costs)}, so it runs on the cluster"
    )


def not_to_cluster(cost: float, costs: Costs) -> str:
    trip = costs.cluster_s or 0.0
    if trip == float("inf") or costs.cluster_slots < 1:
        return "the Dask cluster has no worker thread for it (see the log)"
    if cost < CLUSTER_FACTOR * trip:
        return (
            f"the Dask cluster does not pay: one call is shorter than "
            f"{CLUSTER_FACTOR:.0f} round trips to it ({fmt_seconds(trip)} each)"
        )
    return (
        f"the Dask cluster does not pay: its {costs.cluster_slots} worker "
        f"threads do not outnumber {_here(costs)}"
    )
