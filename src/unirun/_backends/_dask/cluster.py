"""The embedded cluster of a DaskExecutor, and what it installs on any cluster."""

from __future__ import annotations

import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import cloudpickle
import distributed

from ..._cpu import usable_cpus
from . import remote

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["close_owned", "register_initializer", "start_cluster"]


def register_initializer(
    client: distributed.Client,
    initializer: Callable[..., object],
    initargs: tuple[Any, ...],
) -> str:
    """Run ``initializer(*initargs)`` in every worker, now and as they join.

    Returns the plugin's name, for :meth:`distributed.Client.unregister_worker_plugin`.

    Raises:
        Exception: what the initializer raised in a worker (it is unregistered).
    """
    name = f"unirun-initializer-{uuid.uuid4().hex}"
    plugin = remote.Initializer(cloudpickle.dumps((initializer, initargs)), name)
    try:
        client.register_plugin(plugin, name=name)
    except Exception:
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(name)
        raise
    return name


def close_owned(
    client: distributed.Client | None, cluster: distributed.LocalCluster | None
) -> None:
    """Close the client and the cluster an executor opened itself."""
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


def start_cluster(
    max_workers: int | None,
    dashboard: bool | str,
    cluster_options: Mapping[str, Any] | None,
) -> distributed.LocalCluster:
    """Start the embedded cluster: worker processes, one thread each."""
    options: dict[str, Any] = {
        "n_workers": max_workers or usable_cpus(),
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        # Dask always serves a few HTTP routes; without a dashboard they go on
        # a free port instead of taking the usual 8787.
        "dashboard_address": (
            (":8787" if dashboard is True else dashboard) if dashboard else ":0"
        ),
        "scheduler_kwargs": {"dashboard": bool(dashboard)},
    }
    options.update(cluster_options or {})
    return distributed.LocalCluster(**options)
