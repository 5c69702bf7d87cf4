"""The scenarios of ``scenarios.py``, each a context manager yielding its inputs."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import unirun

from .scenario_model import (
    CORES,
    IO_WORKERS,
    Contender,
    Run,
    Scenario,
    gathering,
    mapping,
    on,
    on_every_kind,
    open_on,
    serially,
)
from .scenario_tasks import (
    count_words,
    fetch_async,
    fetch_blocking,
    file_round_trip,
    file_round_trip_async,
    handle_inline,
    handle_offloaded,
    one_blas_thread,
    train,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def http_client(scale: float) -> Iterator[Scenario]:
    from .delayserver import delay_server

    n = max(20, int(200 * scale))
    with delay_server(0.02) as port:
        items = [(port, i) for i in range(n)]
        yield Scenario(
            "http",
            "HTTP client",
            "I/O",
            "asyncio + aiohttp (or threads)",
            list(range(n)),
            [
                *on_every_kind(
                    mapping(fetch_blocking, items), io=True, note=", urllib"
                ),
                on(
                    "coroutine, async client",
                    "coroutine",
                    gathering(fetch_async, items),
                ),
                on("auto, async client", "auto", gathering(fetch_async, items)),
                serially("serial loop, urllib", mapping(fetch_blocking, items)),
            ],
            note=f"{n} GETs to a local server that answers each after 20 ms",
        )


@contextlib.contextmanager
def _offloading(items: list[tuple[int, int]]) -> Iterator[Run]:
    with unirun.ProcessExecutor() as cpu, unirun.ThreadExecutor(IO_WORKERS) as io:
        work = gathering(handle_offloaded, [(*args, cpu, io) for args in items])
        with open_on("coroutine", work, {}) as run:
            yield run


@contextlib.contextmanager
def web_service(scale: float) -> Iterator[Scenario]:
    n = max(20, int(100 * scale))
    items = [(i, 20_000) for i in range(n)]
    yield Scenario(
        "web",
        "Web service",
        "mixed",
        "asyncio + processes/threads",
        list(range(n)),
        [
            *on_every_kind(gathering(handle_inline, items), io=True),
            Contender(
                "coroutine + process (CPU) + thread (blocking)",
                "coroutine",
                lambda: _offloading(items),
            ),
            serially(
                "one request at a time",
                mapping(lambda i, c: asyncio.run(handle_inline(i, c)), items),
            ),
        ],
        note=(
            f"{n} requests, each: await 10 ms, about 2 ms of pure-Python CPU, "
            "a 5 ms blocking call"
        ),
    )


@contextlib.contextmanager
def text_files(n: int) -> Iterator[list[tuple[str]]]:
    """``n`` files of 40,000 words in a temporary folder, as argument tuples."""
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog,",
        "and",
        "then",
        "again.",
    ]
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i in range(n):
            path = Path(folder) / f"doc{i}.txt"
            path.write_text(
                " ".join(words[(i + j) % len(words)] for j in range(40_000))
            )
            paths.append((str(path),))
        yield paths


@contextlib.contextmanager
def data_processing(scale: float) -> Iterator[Scenario]:
    n = max(8, int(96 * scale))
    with text_files(n) as paths:
        expected = [count_words(path) for (path,) in paths]
        yield Scenario(
            "data",
            "Data processing",
            "CPU",
            "multiprocessing",
            expected,
            [
                *on_every_kind(mapping(count_words, paths, chunksize=None)),
                serially("serial loop", mapping(count_words, paths)),
            ],
            note=f"word counts over {n} files of 40,000 words, map(chunksize=None)",
        )


@contextlib.contextmanager
def training(scale: float) -> Iterator[Scenario]:
    n, steps = 4 * CORES, max(4, int(20 * scale))
    items = [(seed, steps) for seed in range(n)]
    expected = [train(seed, steps) for seed, steps in items]
    yield Scenario(
        "training",
        "ML training (numpy)",
        "CPU, GIL released",
        "multiprocessing + numpy",
        expected,
        [
            *on_every_kind(mapping(train, items)),
            on(
                "process, 1 BLAS thread per worker",
                "process",
                mapping(train, items),
                initializer=one_blas_thread,
            ),
            serially("serial loop", mapping(train, items)),
        ],
        note=f"{n} small two-layer networks, {steps} full-batch steps each",
    )


@contextlib.contextmanager
def file_io(scale: float) -> Iterator[Scenario]:
    n = max(20, int(400 * scale))
    with tempfile.TemporaryDirectory() as folder:
        sync_items = [(folder, i) for i in range(n)]
        expected = [file_round_trip(folder, i) for i in range(n)]
        yield Scenario(
            "files",
            "File I/O",
            "I/O (local disk)",
            "asyncio + aiofiles",
            expected,
            [
                *on_every_kind(
                    mapping(file_round_trip, sync_items), io=True, note=", open()"
                ),
                on(
                    "coroutine, anyio.Path",
                    "coroutine",
                    gathering(file_round_trip_async, sync_items),
                ),
                on(
                    "auto, anyio.Path",
                    "auto",
                    gathering(file_round_trip_async, sync_items),
                ),
                serially("serial loop, open()", mapping(file_round_trip, sync_items)),
            ],
            note=f"write then read {n} files of 4 KB",
        )


@contextlib.contextmanager
def processes_per_core(scale: float) -> Iterator[Scenario]:
    n = max(8, int(96 * scale))
    with text_files(n) as paths:
        work = mapping(count_words, paths, chunksize=None)
        yield Scenario(
            "scaling",
            "More processes than cores",
            "CPU",
            "one process per core",
            [count_words(path) for (path,) in paths],
            [
                on(
                    f"process, {k} worker{'s' * (k > 1)}",
                    "process",
                    work,
                    max_workers=k,
                )
                for k in sorted({1, CORES, 2 * CORES, 4 * CORES})
            ],
            note=f"the data-processing work on {CORES} usable CPUs",
        )


SCENARIOS = {
    "http": http_client,
    "web": web_service,
    "data": data_processing,
    "training": training,
    "files": file_io,
    "scaling": processes_per_core,
}
