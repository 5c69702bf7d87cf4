"""The Dask cluster an AutoExecutor may send work to, as an inner executor of its own.

What the user gives, and what auto makes of it::

    AutoExecutor(cluster=x)
      x a unirun.DaskExecutor -> DaskExecutor(client=x.client), x's max_workers
      x a distributed.Client  -> DaskExecutor(client=x)
      x "tcp://host:port"     -> DaskExecutor(address=x): a client of auto's own

The inner executor is auto's, whatever was given: auto's shutdown shuts it down,
which waits for (or cancels) auto's own tasks only and closes the client only
where it opened one. The DaskExecutor or client the user gave, and the cluster,
stay as they were. Dask is imported here, and only when a cluster is given;
when it pays is decided in ``classify`` (:func:`~unirun._auto.classify.cluster_pays`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable

    import distributed

    from .._backends._dask import DaskExecutor

__all__ = ["Cluster", "attach"]

#: What ``AutoExecutor(cluster=...)`` takes.
Cluster: TypeAlias = "DaskExecutor | distributed.Client | str"

_EXPECTED = (
    "cluster must be a unirun.DaskExecutor, a distributed.Client or a scheduler address"
)


def attach(
    cluster: object,
    initializer: Callable[..., object] | None,
    initargs: tuple[Any, ...],
) -> DaskExecutor:
    """Make auto's own DaskExecutor on the cluster ``cluster`` names.

    ``initializer(*initargs)`` runs in every worker of the cluster (a worker
    plugin, removed when the executor shuts down).

    Raises:
        TypeError: ``cluster`` is none of the three, or ``True`` (a cluster
            started on this machine would have no more CPUs than auto's own
            process pool: it could never pay).
        ValueError: ``cluster`` is an empty address.
        ModuleNotFoundError: Dask is not installed (extra ``unirun[dask]``).
        OSError: no scheduler answers at the address.
    """
    if isinstance(cluster, bool):
        raise TypeError(
            f"{_EXPECTED}, not {cluster!r}: a cluster started on this machine "
            "has no more CPUs than auto's own process pool, so it would never "
            "pay; start one with unirun.DaskExecutor() if you want it anyway"
        )
    if isinstance(cluster, str):
        if not cluster.strip():
            raise ValueError(f"{_EXPECTED}, not an empty string")
        from unirun import DaskExecutor

        return DaskExecutor(address=cluster, initializer=initializer, initargs=initargs)
    from unirun import DaskExecutor

    if isinstance(cluster, DaskExecutor):
        if cluster._shutdown:
            raise ValueError(f"{cluster!r} is shut down")
        return DaskExecutor(
            cluster._max_workers,
            client=cluster.client,
            initializer=initializer,
            initargs=initargs,
        )
    import distributed

    if isinstance(cluster, distributed.Client):
        # DaskExecutor refuses an asynchronous client, saying why.
        return DaskExecutor(client=cluster, initializer=initializer, initargs=initargs)
    raise TypeError(f"{_EXPECTED}, not {cluster!r}")
