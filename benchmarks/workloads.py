"""The workloads: what is run, by whom, how big, and what the ideal would be.

Each :class:`Workload` prepares a :class:`Job` for a given :class:`Sizing` (a
context manager, so the HTTP workload can run its server around the cells) and
lists its :class:`Entry` rows: which contender runs it, through which API.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from . import tasks
from .delayserver import delay_server
from .jobs import Entry, Job, Sizing, Workload, scaled
from .sessions import Batch

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["WORKLOADS", "Entry", "Job", "Sizing", "Workload"]


# Thread pools and coroutine bounds in the I/O workloads.
IO_CONCURRENCY = 32
IO_DELAY = 0.02


@contextlib.contextmanager
def _overhead(sizing: Sizing) -> Iterator[Job]:
    n = scaled(10_000, sizing, 50)
    items = [(i,) for i in range(n)]
    batch = Batch(tasks.echo, tasks.echo_async, items)
    yield Job(
        batch,
        list(range(n)),
        sizing.cores,
        None,
        per_task=True,
        params={"tasks": n, "workers": sizing.cores},
    )


@contextlib.contextmanager
def _map(sizing: Sizing) -> Iterator[Job]:
    n = scaled(20_000, sizing, 200)
    items = [(i,) for i in range(n)]
    tuned = max(1, n // (4 * sizing.cores))
    batch = Batch(tasks.square, None, items)
    expected = [i * i for i in range(n)]
    params = {"items": n, "workers": sizing.cores, "tuned chunksize": tuned}
    yield Job(
        batch,
        expected,
        sizing.cores,
        sizing.cores,
        tuned_chunksize=tuned,
        per_task=True,
        params=params,
    )


def _cpu_job(sizing: Sizing, batch: Batch, expected: list[Any], **params: Any) -> Job:
    cores = sizing.cores
    return Job(
        batch,
        expected,
        cores,
        cores,
        ideal_speedup=float(cores),
        ideal_from_serial=lambda serial: serial / cores,
        params={"tasks": len(batch.items), "workers": cores, **params},
    )


@contextlib.contextmanager
def _cpu_python(sizing: Sizing) -> Iterator[Job]:
    count = scaled(1_000_000, sizing, 2_000)
    items = [(i * count, count) for i in range(4 * sizing.cores)]
    expected = [tasks.sum_squares_expected(*args) for args in items]
    batch = Batch(tasks.sum_squares, None, items)
    yield _cpu_job(sizing, batch, expected, **{"loop iterations per task": count})


@contextlib.contextmanager
def _cpu_gil_free(sizing: Sizing) -> Iterator[Job]:
    block = 1 << 20
    rounds = scaled(64, sizing, 1)
    items = [(i % 4, block, rounds) for i in range(4 * sizing.cores)]
    digests = {seed: tasks.hash_rounds(seed, block, rounds) for seed in range(4)}
    expected = [digests[seed] for seed, _, _ in items]
    batch = Batch(tasks.hash_rounds, None, items)
    yield _cpu_job(sizing, batch, expected, **{"MiB hashed per task": rounds})


@contextlib.contextmanager
def _short_hashlib(sizing: Sizing) -> Iterator[Job]:
    # One 8 MiB update per task: ~8 ms, the GIL released throughout.
    block = 8 << 20
    items = [(i % 4, block, 1) for i in range(scaled(8 * sizing.cores, sizing, 4))]
    digests = {seed: tasks.hash_rounds(seed, block, 1) for seed in range(4)}
    expected = [digests[seed] for seed, _, _ in items]
    batch = Batch(tasks.hash_rounds, None, items)
    yield _cpu_job(sizing, batch, expected, **{"MiB hashed per task": 8})


@contextlib.contextmanager
def _short_zlib(sizing: Sizing) -> Iterator[Job]:
    copies = 1000  # ~1 MB of text per task: a few ms
    items = [(i % 4, copies) for i in range(scaled(8 * sizing.cores, sizing, 4))]
    sizes = {seed: tasks.compress(seed, copies) for seed in range(4)}
    expected = [sizes[seed] for seed, _ in items]
    batch = Batch(tasks.compress, None, items)
    yield _cpu_job(sizing, batch, expected, **{"KB of text per task": 1080})


@contextlib.contextmanager
def _short_numpy(sizing: Sizing) -> Iterator[Job]:
    count = 400_000  # ~5 ms of ufuncs per task
    items = [(i % 4, count) for i in range(scaled(8 * sizing.cores, sizing, 4))]
    sums = {seed: tasks.elementwise(seed, count) for seed in range(4)}
    expected = [sums[seed] for seed, _ in items]
    batch = Batch(tasks.elementwise, None, items)
    yield _cpu_job(sizing, batch, expected, **{"floats per task": count})


def _numpy_installed() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def _io_job(sizing: Sizing, batch: Batch, n: int, **params: Any) -> Job:
    ideal = n * IO_DELAY / IO_CONCURRENCY
    return Job(
        batch,
        list(range(n)),
        IO_CONCURRENCY,
        IO_CONCURRENCY,
        floor_s=0.95 * ideal,
        ideal_s=ideal,
        params={
            "tasks": n,
            "delay (s)": IO_DELAY,
            "concurrency": IO_CONCURRENCY,
            **params,
        },
    )


@contextlib.contextmanager
def _blocking_sleep(sizing: Sizing) -> Iterator[Job]:
    n = scaled(640, sizing, IO_CONCURRENCY, IO_CONCURRENCY)
    items = [(i, IO_DELAY) for i in range(n)]
    yield _io_job(sizing, Batch(tasks.sleep_echo, tasks.sleep_echo_async, items), n)


@contextlib.contextmanager
def _blocking_http(sizing: Sizing) -> Iterator[Job]:
    n = scaled(640, sizing, IO_CONCURRENCY, IO_CONCURRENCY)
    with delay_server(IO_DELAY) as port:
        items = [(port, i) for i in range(n)]
        batch = Batch(tasks.fetch, tasks.fetch_async, items)
        yield _io_job(sizing, batch, n)


@contextlib.contextmanager
def _async_io(sizing: Sizing) -> Iterator[Job]:
    n = scaled(10_000, sizing, 100)
    delay = 0.1
    items = [(i, delay) for i in range(n)]
    batch = Batch(tasks.sleep_echo, tasks.sleep_echo_async, items)
    yield Job(
        batch,
        list(range(n)),
        sizing.cores,
        None,
        floor_s=delay,
        ideal_s=delay,
        params={"coroutines": n, "delay (s)": delay},
    )


@contextlib.contextmanager
def _mixed(sizing: Sizing) -> Iterator[Job]:
    cores = sizing.cores
    workers = 4 * cores
    n = scaled(64, sizing, 2 * workers, workers)
    count, delay = 50_000, 0.01
    items = [(i * count, count, delay) for i in range(n)]
    expected = [tasks.sum_squares_expected(start, size) for start, size, _ in items]

    def ideal(serial: float) -> float:
        # CPU parts spread over the cores; whole tasks over the workers.
        return max((serial - n * delay) / cores, serial / workers)

    params = {
        "tasks": n,
        "loop iterations": count,
        "delay (s)": delay,
        "workers": workers,
    }
    yield Job(
        Batch(tasks.mixed, None, items),
        expected,
        workers,
        workers,
        floor_s=0.95 * n * delay / workers,
        ideal_from_serial=ideal,
        params=params,
    )


# Who runs the CPU-bound workloads (and the mixed one).
_CPU_ENTRIES = (
    Entry("serial"),
    Entry("unirun-auto"),
    Entry("unirun-thread"),
    Entry("unirun-process"),
    Entry("unirun-coroutine"),
    Entry("stdlib-thread"),
    Entry("stdlib-process"),
    Entry("loky"),
    Entry("joblib-loky", "map", "auto"),
    Entry("joblib-threading", "map", "auto"),
    Entry("mpire", "map"),
    Entry("pebble-process"),
    Entry("pebble-thread"),
    Entry("anyio-thread"),
    Entry("anyio-process"),
)
# Who runs the short GIL-releasing calls: auto against the pools it chooses from.
_SHORT_ENTRIES = (
    Entry("serial"),
    Entry("unirun-auto"),
    Entry("unirun-auto", "map", None, "map, chunksize=None"),
    Entry("unirun-thread"),
    Entry("unirun-process"),
    Entry("stdlib-thread"),
    Entry("stdlib-process"),
)
_SHORT_NOTES = (
    "Each call lasts a few ms and releases the GIL for most of it: auto must "
    "read it as GIL-free from one probe and send it to threads (issue 13).",
)
# Who runs the blocking I/O workloads: threads (processes would be absurd here).
_IO_ENTRIES = (
    Entry("unirun-auto"),
    Entry("unirun-thread"),
    Entry("unirun-coroutine"),
    Entry("stdlib-thread"),
    Entry("joblib-threading", "map", "auto"),
    Entry("mpire-threading", "map"),
    Entry("pebble-thread"),
    Entry("anyio-thread"),
)
_IO_NOTES = (
    "Process pools are not run: a process per concurrent wait is not how anyone "
    "does I/O. The serial loop would take `tasks * delay` by construction.",
)

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "overhead",
        "Per-task overhead",
        "submit() then result() of a no-op, for many tasks: the cost of one round "
        "trip through each pool. Coroutine contenders get an `async def` no-op.",
        _overhead,
        (
            Entry("serial"),
            Entry("unirun-auto"),
            Entry("unirun-thread"),
            Entry("unirun-process"),
            Entry("unirun-coroutine", "async", note="async no-op"),
            Entry("stdlib-thread"),
            Entry("stdlib-process"),
            Entry("loky"),
            Entry("pebble-thread"),
            Entry("pebble-process"),
            Entry("anyio-thread"),
            Entry("anyio-process"),
            Entry("asyncio", "async", note="async no-op"),
        ),
        ("joblib and mpire have no per-task submit; see the map workload.",),
    ),
    Workload(
        "map",
        "map over many tiny items",
        "map(square, range(n)): each contender with its own batching. The tuned "
        "chunksize is `items / (4 * workers)`.",
        _map,
        (
            Entry("serial", "map", note="builtin map"),
            Entry("unirun-auto", "map", None, "chunksize=None"),
            Entry("unirun-thread", "map"),
            Entry("unirun-process", "map", None, "chunksize=None"),
            Entry("unirun-process", "map", 1, "chunksize=1"),
            Entry("unirun-coroutine", "map"),
            Entry("stdlib-thread", "map"),
            Entry("stdlib-process", "map", 1, "chunksize=1"),
            Entry("stdlib-process", "map", "tuned", "tuned chunksize"),
            Entry("loky", "map", "tuned", "tuned chunksize"),
            Entry("joblib-loky", "map", "auto", "auto batching"),
            Entry("joblib-threading", "map", "auto", "auto batching"),
            Entry("mpire", "map", None, "auto chunking"),
            Entry("pebble-process", "map", "tuned", "tuned chunksize"),
        ),
    ),
    Workload(
        "cpu-python",
        "Pure-Python CPU work",
        "A pure-Python loop (holds the GIL), 4 tasks per usable core. Ideal "
        "speed-up over the serial loop = usable cores.",
        _cpu_python,
        _CPU_ENTRIES,
    ),
    Workload(
        "cpu-gil-free",
        "GIL-releasing CPU work",
        "SHA-256 over 1 MiB buffers (hashlib releases the GIL), 4 tasks per usable "
        "core. Ideal speed-up over the serial loop = usable cores.",
        _cpu_gil_free,
        _CPU_ENTRIES,
    ),
    Workload(
        "gil-free-hashlib",
        "Short GIL-releasing calls: SHA-256",
        "SHA-256 of one 8 MiB buffer per task (~8 ms; hashlib releases the GIL), "
        "8 tasks per usable core. Ideal speed-up over the serial loop = usable cores.",
        _short_hashlib,
        _SHORT_ENTRIES,
        _SHORT_NOTES,
    ),
    Workload(
        "gil-free-zlib",
        "Short GIL-releasing calls: zlib",
        "zlib.compress of ~1 MB of text per task (a few ms; zlib releases the GIL), "
        "8 tasks per usable core. Ideal speed-up over the serial loop = usable cores.",
        _short_zlib,
        _SHORT_ENTRIES,
        _SHORT_NOTES,
    ),
    *(
        (
            Workload(
                "gil-free-numpy",
                "Short GIL-releasing calls: numpy",
                "numpy exp and sqrt over 400k floats per task (~5 ms; ufuncs "
                "release the GIL), 8 tasks per usable core; only when numpy is "
                "installed. Ideal speed-up over the serial loop = usable cores.",
                _short_numpy,
                _SHORT_ENTRIES,
                _SHORT_NOTES,
            ),
        )
        if _numpy_installed()
        else ()
    ),
    Workload(
        "blocking-sleep",
        "Blocking I/O: sleeps",
        "Many `time.sleep` tasks with a fixed concurrency. Ideal = "
        "`tasks * delay / concurrency`.",
        _blocking_sleep,
        _IO_ENTRIES,
        _IO_NOTES,
    ),
    Workload(
        "blocking-http",
        "Blocking I/O: HTTP GETs",
        "Many HTTP GETs (http.client) to a local http.server that answers after a "
        "fixed delay; the server runs in its own process. Ideal = "
        "`tasks * delay / concurrency`.",
        _blocking_http,
        (
            *_IO_ENTRIES,
            Entry("unirun-coroutine", "async", note="async client"),
            Entry("asyncio", "async", note="async client"),
        ),
        _IO_NOTES,
    ),
    Workload(
        "async-io",
        "Async I/O: many coroutines",
        "Many coroutines each awaiting `asyncio.sleep`, no concurrency bound. Ideal "
        "= one delay.",
        _async_io,
        (
            Entry("unirun-auto", "async", note="async def"),
            Entry("unirun-coroutine", "async", note="own loop thread"),
            Entry("unirun-coroutine-inloop", "async"),
            Entry("asyncio", "async"),
            Entry("anyio-taskgroup", "async"),
        ),
        (
            "Thread and process executors run each coroutine to completion on a "
            "worker's own loop, one at a time per worker, so they are not run.",
        ),
    ),
    Workload(
        "mixed",
        "Mixed CPU and blocking I/O",
        "Each task computes (pure Python, a few ms) then blocks (sleep): a request "
        "handler's shape. Pools get 4 workers per usable core. Ideal = max(CPU "
        "time / cores, serial time / workers).",
        _mixed,
        _CPU_ENTRIES,
    ),
)
