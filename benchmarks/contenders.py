"""The contenders: every library (or way of using one) the suite compares.

A :class:`Contender` names a library and opens a session of it sized for one
workload; ``requires`` lists the optional modules it needs, and a contender
whose module is missing is skipped with a note instead of failing the run.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import unirun

from . import peers
from .sessions import (
    AnyioProcessSession,
    AnyioSession,
    AsyncioSession,
    ExecutorSession,
    SerialSession,
    UnirunInLoopSession,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .sessions import Chunk, Session

__all__ = ["CONTENDERS", "Contender", "Family", "Model"]

# unirun; the stdlib's own tools; other libraries; no concurrency at all.
Family = Literal["unirun", "stdlib", "peer", "baseline"]
# What runs the tasks: the headline compares unirun with peers of its model.
Model = Literal["thread", "process", "event loop", "serial", "auto"]


@dataclass(frozen=True)
class Contender:
    """A library (or a way of using one) that can run a workload's batches.

    ``open(workers, concurrency, chunksize)`` returns a live session: ``workers``
    sizes thread and process pools, ``concurrency`` bounds coroutine-style
    contenders (``None``: no bound), ``chunksize`` is for map-only libraries
    that fix their batching when the pool is made (joblib).
    """

    key: str
    label: str
    family: Family
    model: Model
    open: Callable[[int, int | None, Chunk], Session]
    requires: tuple[str, ...] = ()

    def missing(self) -> str | None:
        """Return the first required module that is not installed, if any."""
        for name in self.requires:
            if importlib.util.find_spec(name) is None:
                return name
        return None


def _unirun_thread(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return ExecutorSession(unirun.ThreadExecutor(max_workers=workers))


def _unirun_process(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return ExecutorSession(unirun.ProcessExecutor(max_workers=workers))


def _unirun_coroutine(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return ExecutorSession(unirun.CoroutineExecutor(max_concurrency=concurrency))


def _unirun_auto(workers: int, concurrency: int | None, _: Chunk) -> Session:
    # max_workers caps every task auto runs at once, on whichever backend: the
    # job's bound on tasks at once, as the coroutine backend gets, and none
    # where the job has none (many coroutines; tiny calls).
    return ExecutorSession(unirun.AutoExecutor(max_workers=concurrency))


def _unirun_in_loop(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return UnirunInLoopSession(concurrency)


def _stdlib_thread(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return ExecutorSession(cf.ThreadPoolExecutor(max_workers=workers))


def _stdlib_process(workers: int, concurrency: int | None, _: Chunk) -> Session:
    # The default start method, as a drop-in user gets it (fork on Linux < 3.14).
    return ExecutorSession(cf.ProcessPoolExecutor(max_workers=workers))


def _asyncio(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return AsyncioSession(concurrency)


def _anyio(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return AnyioSession(concurrency)


def _anyio_process(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return AnyioProcessSession(workers)


def _loky(workers: int, concurrency: int | None, _: Chunk) -> Session:
    loky = importlib.import_module("loky")
    return ExecutorSession(loky.ProcessPoolExecutor(max_workers=workers))


def _joblib_loky(workers: int, concurrency: int | None, chunk: Chunk) -> Session:
    return peers.JoblibSession("loky", workers, chunk)


def _joblib_threading(workers: int, concurrency: int | None, chunk: Chunk) -> Session:
    return peers.JoblibSession("threading", workers, chunk)


def _mpire(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return peers.MpireSession(workers, None)


def _mpire_threading(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return peers.MpireSession(workers, "threading")


def _pebble_process(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return peers.PebbleSession("ProcessPool", workers)


def _pebble_thread(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return peers.PebbleSession("ThreadPool", workers)


def _serial(workers: int, concurrency: int | None, _: Chunk) -> Session:
    return SerialSession()


CONTENDERS: dict[str, Contender] = {
    contender.key: contender
    for contender in (
        Contender("unirun-thread", "unirun thread", "unirun", "thread", _unirun_thread),
        Contender(
            "unirun-process", "unirun process", "unirun", "process", _unirun_process
        ),
        Contender("unirun-auto", "unirun auto", "unirun", "auto", _unirun_auto),
        Contender(
            "unirun-coroutine",
            "unirun coroutine",
            "unirun",
            "event loop",
            _unirun_coroutine,
        ),
        Contender(
            "unirun-coroutine-inloop",
            "unirun coroutine (async with)",
            "unirun",
            "event loop",
            _unirun_in_loop,
        ),
        Contender(
            "stdlib-thread",
            "stdlib ThreadPoolExecutor",
            "stdlib",
            "thread",
            _stdlib_thread,
        ),
        Contender(
            "stdlib-process",
            "stdlib ProcessPoolExecutor",
            "stdlib",
            "process",
            _stdlib_process,
        ),
        Contender("asyncio", "asyncio.gather", "stdlib", "event loop", _asyncio),
        Contender("anyio-thread", "anyio.to_thread", "peer", "event loop", _anyio),
        Contender("anyio-taskgroup", "anyio task group", "peer", "event loop", _anyio),
        Contender(
            "anyio-process", "anyio.to_process", "peer", "process", _anyio_process
        ),
        Contender("loky", "loky", "peer", "process", _loky, ("loky",)),
        Contender(
            "joblib-loky", "joblib (loky)", "peer", "process", _joblib_loky, ("joblib",)
        ),
        Contender(
            "joblib-threading",
            "joblib (threading)",
            "peer",
            "thread",
            _joblib_threading,
            ("joblib",),
        ),
        Contender("mpire", "mpire", "peer", "process", _mpire, ("mpire",)),
        Contender(
            "mpire-threading",
            "mpire (threading)",
            "peer",
            "thread",
            _mpire_threading,
            ("mpire",),
        ),
        Contender(
            "pebble-process",
            "pebble ProcessPool",
            "peer",
            "process",
            _pebble_process,
            ("pebble",),
        ),
        Contender(
            "pebble-thread",
            "pebble ThreadPool",
            "peer",
            "thread",
            _pebble_thread,
            ("pebble",),
        ),
        Contender("serial", "serial loop", "baseline", "serial", _serial),
    )
}
