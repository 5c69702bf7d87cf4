"""The embedded cluster of a DaskExecutor, and what it installs on any cluster.

An embedded cluster's worker processes start with the native thread variables
of :data:`.._worker.THREAD_VARIABLES` set to their share of the CPUs, through
Dask's own ``distributed.nanny.pre-spawn-environ``: a nanny writes those into
this process's environment just before it spawns a worker, so they hold before
the worker imports anything (the main module of a script included). Once the
workers are up, this process gets back the values it had. What workers print
and log travels back as events of a topic the client subscribes to
(:class:`.remote.OutputForwarder`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
from typing import TYPE_CHECKING, Any, Literal

import dask.config
import distributed

from ..._cpu import usable_cpus
from ..._transfer import SharedPickler, dumps
from .._output import deliver
from .._worker import THREAD_VARIABLES
from ..process import _native_threads
from . import remote

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = ["close_owned", "open_embedded", "register_initializer"]

#: Dask's setting for the environment its nannies spawn workers with.
PRE_SPAWN = "distributed.nanny.pre-spawn-environ"


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
    # Pickled as tasks are: a __main__ initializer shares the worker's
    # __main__ namespace with them (the globals it sets reach them).
    plugin = remote.Initializer(dumps((initializer, initargs), SharedPickler), name)
    try:
        client.register_plugin(plugin, name=name)
    except Exception:
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(name)
        raise
    return name


def close_owned(
    client: distributed.Client | None,
    cluster: distributed.LocalCluster | None,
    plugins: tuple[distributed.Client, list[str]] | None = None,
) -> None:
    """Close the client and the cluster an executor opened itself, after
    unregistering its ``plugins`` (a client, and the names it registered on a
    joined cluster: its initializer's, which would otherwise run on in workers
    that join or restart after the program ended)."""
    try:
        if plugins is not None:
            for name in plugins[1]:
                with contextlib.suppress(Exception):
                    plugins[0].unregister_worker_plugin(name)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    finally:
        if cluster is not None:
            _HUSH.release(cluster)


def open_embedded(
    max_workers: int | None,
    *,
    dashboard: bool | str,
    cluster_options: Mapping[str, Any] | None,
    native_threads: int | Literal["auto"] | None,
    forward_output: bool,
) -> tuple[distributed.LocalCluster, distributed.Client]:
    """Start the embedded cluster (worker processes, one thread each) and its client.

    Closes what it started if a later step fails.
    """
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
    processes = bool(options.get("processes", True))
    if not processes and "host" not in (cluster_options or {}):
        # Workers in this process talk over Dask's in-process transport, whose
        # addresses are not hosts: 127.0.0.1 would fail the scheduler's start.
        del options["host"]
    threads = _native_threads(native_threads, options.get("n_workers") or 1)
    hushed = _HUSH.acquire(options.get("silence_logs", logging.WARNING))
    try:
        if processes:
            with _spawn_environment(threads, options.get("env")):
                cluster = distributed.LocalCluster(**options)
        else:  # workers in this process: no environment of their own
            cluster = distributed.LocalCluster(**options)
    except BaseException:
        if hushed:
            _HUSH.release(None)
        raise
    if hushed:
        _HUSH.adopt(cluster)
    try:
        client = distributed.Client(cluster, set_as_default=False)
    except BaseException:
        close_owned(None, cluster)
        raise
    if forward_output and processes:  # workers in this process print here anyway
        try:
            forward_output_of(client)
        except BaseException:
            close_owned(client, cluster)
            raise
    return cluster, client


@contextlib.contextmanager
def _spawn_environment(
    threads: int | None, env: Mapping[str, object] | None
) -> Iterator[None]:
    """Workers spawned inside start with ``threads`` for each thread variable.

    A variable this process has, or the cluster's ``env`` option names, keeps
    that value. ``None``: Dask's own setting applies, untouched. Either way this
    process has its own values back afterwards.
    """
    before = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    setting: dict[str, object] = {}
    if threads is not None:
        given = dict(env or {})
        spawn = dict(dask.config.get(PRE_SPAWN))
        for name in THREAD_VARIABLES:
            # Dask itself lets this process's environment win over the setting.
            spawn[name] = str(given.get(name, threads))
        setting[PRE_SPAWN] = spawn
    try:
        with dask.config.set(setting):
            yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def forward_output_of(client: distributed.Client) -> None:
    """Relay what the cluster's workers print and log to this process."""
    topic = f"unirun-output-{uuid.uuid4().hex}"
    client.subscribe_topic(topic, _relay)
    client.register_plugin(remote.OutputForwarder(topic, _levels()), name=topic)


def _relay(event: tuple[float, Any]) -> None:
    """Deliver one event of a worker's output (on the client's event loop)."""
    _, (stream, data) = event
    deliver(stream, data if stream == 0 else data.decode("utf-8", "surrogatepass"))


def _levels() -> dict[str, int]:
    """This process's logger levels, for the workers; Dask's own stay Dask's."""
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
        and logger.level
        and name.partition(".")[0] not in ("distributed", "tornado", "bokeh")
    }
    levels[""] = logging.root.level
    return levels


class _Hush:
    """Holds Dask's own records in this process under ``silence_logs``.

    ``LocalCluster(silence_logs=...)`` quietens the stream handler Dask gives
    the ``distributed`` logger. Dask gives it none when the root logger already
    had handlers (``logging.basicConfig`` before the executor): its scheduler
    and nannies, which run in this process, then log every connection and every
    step of a shutdown (with a traceback or two) to the application's handlers.
    Then the logger's own level is raised instead, while any embedded cluster
    that asked is open, and is given back when the last one closes, unless
    someone set another level meanwhile.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clusters: set[int] = set()
        self._count = 0
        self._before = logging.NOTSET
        self._level = logging.NOTSET

    def acquire(self, silence: object) -> bool:
        """Raise the level to ``silence`` if Dask's own handler will not; say if so."""
        level = _level_of(silence)
        logger = logging.getLogger("distributed")
        if level is None or logger.handlers:
            return False  # nothing asked, or Dask's handler does it
        with self._lock:
            if self._count == 0:
                self._before = logger.level
                self._level = max(level, logger.level)
            else:
                self._level = max(self._level, level)
            self._count += 1
            logger.setLevel(self._level)
        return True

    def adopt(self, cluster: object) -> None:
        """The hold just acquired ends when ``cluster`` is released."""
        with self._lock:
            self._clusters.add(id(cluster))

    def release(self, cluster: object | None) -> None:
        """End the hold of ``cluster`` (``None``: of one never adopted)."""
        with self._lock:
            if cluster is not None:
                if id(cluster) not in self._clusters:
                    return
                self._clusters.discard(id(cluster))
            self._count -= 1
            logger = logging.getLogger("distributed")
            if self._count == 0 and logger.level == self._level:
                logger.setLevel(self._before)


def _level_of(silence: object) -> int | None:
    """The level ``silence_logs`` names; ``None`` for no silencing."""
    if not silence:
        return None
    if isinstance(silence, str):
        level = logging.getLevelName(silence.upper())
        return level if isinstance(level, int) else None
    if isinstance(silence, int):
        return silence
    return None


_HUSH = _Hush()
