"""The scenarios, their contenders and the measuring loop of ``scenarios.py``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import unirun
from unirun._cpu import usable_cpus

from .scenario_report import page, plot
from .scenario_tasks import (
    BLAS_VARIABLES,
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

#: Run one scenario once on an open executor; return its results.
Run = Callable[[], list[Any]]

ROOT = Path(__file__).resolve().parent.parent
CORES = usable_cpus()
IO_WORKERS = 32  # threads for the I/O scenarios, as benchmarks/run.py uses


# --- who runs them -------------------------------------------------------------

#: What a contender runs on its open executor (``None`` for the serial loop).
Work = Callable[[Any], list[Any]]


@dataclass(frozen=True)
class Contender:
    """One way to run a scenario: a label, the kind it runs on, how to open it."""

    label: str
    kind: str  # "thread", "process", "coroutine", "auto" or "serial"
    open: Callable[[], contextlib.AbstractContextManager[Run]]


@contextlib.contextmanager
def _on(kind: str, work: Work, options: dict[str, Any]) -> Iterator[Run]:
    with unirun.executor(kind, **options) as ex:  # type: ignore[arg-type]
        yield lambda: work(ex)


def on(label: str, kind: str, work: Work, **options: Any) -> Contender:
    """``work`` on an executor of ``kind``, opened once for all its runs."""
    return Contender(label, kind, lambda: _on(kind, work, options))


def serially(label: str, work: Work) -> Contender:
    return Contender(
        label, "serial", lambda: contextlib.nullcontext(lambda: work(None))
    )


def mapping(fn: Callable[..., Any], items: list[tuple[Any, ...]], **kw: Any) -> Work:
    """``ex.map`` over ``items`` (argument tuples); the builtin map when serial."""
    columns = list(zip(*items, strict=True))
    return lambda ex: list((ex.map(fn, *columns, **kw)) if ex else map(fn, *columns))


def gathering(fn: Callable[..., Any], items: list[tuple[Any, ...]]) -> Work:
    """One ``submit`` per item, then ``gather``; ``asyncio.gather`` when serial."""

    async def all_at_once() -> list[Any]:
        return list(await asyncio.gather(*(fn(*args) for args in items)))

    def work(ex: unirun.Executor | None) -> list[Any]:
        if ex is None:
            return asyncio.run(all_at_once())
        return list(ex.gather(*(ex.submit(fn, *args) for args in items)).result())

    return work


def on_every_kind(work: Work, *, io: bool = False, note: str = "") -> list[Contender]:
    """``work`` on each kind; for I/O, thread pools get 32 workers."""
    threads = {"max_workers": IO_WORKERS} if io else {}
    label = f" ({IO_WORKERS} workers)" if io else ""
    return [
        on(f"thread{label}{note}", "thread", work, **threads),
        on(f"process{note}", "process", work),
        on(f"coroutine{note}", "coroutine", work),
        on(f"auto{note}", "auto", work),
    ]


@dataclass
class Cell:
    """One contender's timings on one scenario."""

    label: str
    kind: str
    times: list[float] = field(default_factory=list)
    status: str = "ok"

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")


@dataclass
class Scenario:
    """One of the article's scenarios, with its advice and its right answer."""

    key: str
    title: str
    bound: str
    advice: str
    expected: list[Any]
    contenders: list[Contender]
    note: str = ""
    cells: list[Cell] = field(default_factory=list)

    def best(self) -> Cell:
        ok = [c for c in self.cells if c.status == "ok" and c.kind != "serial"]
        return min(ok, key=lambda c: c.median)


# --- the scenarios -----------------------------------------------------------------


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
        with _on("coroutine", work, {}) as run:
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


# --- measuring -------------------------------------------------------------------


def same(got: list[Any], expected: list[Any]) -> bool:
    """Equal, floats within a relative 1e-6 (BLAS may sum in another order)."""
    if len(got) != len(expected):
        return False
    return all(
        abs(g - e) <= 1e-6 * max(abs(e), 1e-12) if isinstance(e, float) else g == e
        for g, e in zip(got, expected, strict=True)
    )


def _timed(cell: Cell, run: Run, expected: list[Any], keep: bool) -> None:
    """Run once and check the results; record the time if ``keep``."""
    if cell.status != "ok":
        return
    try:
        start = time.perf_counter()
        got = run()
        elapsed = time.perf_counter() - start
        if not same(got, expected):
            raise AssertionError(f"wrong results: {got[:5]!r}...")
    except Exception as exc:  # a failed cell is reported, not fatal
        cell.status = f"failed: {type(exc).__name__}: {exc}"[:200]
        return
    if keep:
        cell.times.append(elapsed)


def measure(scenario: Scenario, repeat: int) -> None:
    """Time every contender, interleaved: round after round, one run each.

    All contenders' executors are open at once; each is warmed up by one
    checked run, then each round times one run of every contender, starting
    from a different one each round, so that a change in the machine's load
    falls on all of them alike.
    """
    cells = [Cell(c.label, c.kind) for c in scenario.contenders]
    with contextlib.ExitStack() as stack:
        runs: list[Run] = []
        for contender, cell in zip(scenario.contenders, cells, strict=True):
            try:
                runs.append(stack.enter_context(contender.open()))
            except Exception as exc:  # reported in its cell
                cell.status = f"failed: {type(exc).__name__}: {exc}"[:200]
                runs.append(list)
            _timed(cell, runs[-1], scenario.expected, keep=False)
        for round_ in range(repeat):
            for i in range(len(cells)):
                j = (i + round_) % len(cells)
                _timed(cells[j], runs[j], scenario.expected, keep=True)
    scenario.cells.extend(cells)
    for cell in cells:
        shown = f"{cell.median * 1e3:8.1f} ms" if cell.status == "ok" else cell.status
        print(f"  {cell.label:<48} {shown}", flush=True)


def startup_costs(repeat: int) -> list[dict[str, Any]]:
    """Start-up and memory of each executor with every worker started."""
    try:
        import psutil
    except ImportError:
        psutil = None
    import concurrent.futures as cf

    makers: list[tuple[str, Callable[[], Any]]] = [
        (kind, lambda kind=kind: unirun.executor(kind))
        for kind in ("thread", "process", "coroutine", "auto")
    ]
    makers += [
        ("stdlib ThreadPoolExecutor", cf.ThreadPoolExecutor),
        ("stdlib ProcessPoolExecutor", cf.ProcessPoolExecutor),
    ]
    rows = []
    for label, make in makers:
        starts, memory = [], []
        for _ in range(repeat):
            me = psutil.Process() if psutil else None
            before = {p.pid for p in me.children(recursive=True)} if me else set()
            rss = me.memory_info().rss if me else 0
            start = time.perf_counter()
            ex = make()
            # One task per usable CPU, at once, so that every worker starts.
            list(ex.map(time.sleep, [0.05] * CORES))
            starts.append(time.perf_counter() - start - 0.05)  # less the sleep
            if me:
                new = [p for p in me.children(recursive=True) if p.pid not in before]
                uss = sum(p.memory_full_info().uss for p in new)
                memory.append((me.memory_info().rss - rss + uss) / 2**20)
            ex.shutdown(wait=True)
        rows.append(
            {
                "label": label,
                "start_s": statistics.median(starts),
                "memory_mib": statistics.median(memory) if memory else None,
            }
        )
        print(f"  {label:<30} start {rows[-1]['start_s'] * 1e3:7.1f} ms", flush=True)
    return rows


# --- command line ----------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, one run each"
    )
    parser.add_argument("--scale", type=float, default=None, help="work multiplier")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per cell")
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), default=None)
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--one-blas-thread",
        action="store_true",
        help="set OMP_NUM_THREADS and kin to 1 here and in every worker",
    )
    args = parser.parse_args(argv)
    if args.one_blas_thread:
        # Before numpy is first imported (train() imports it), and inherited by
        # every worker process started after this.
        os.environ.update(dict.fromkeys(BLAS_VARIABLES, "1"))
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 5)
    full = not (args.quick or args.only or args.scale or args.repeat)
    full = full and not args.one_blas_thread
    out = args.out or (
        ROOT / "docs" / "_generated" if full else ROOT / "benchmarks" / "results"
    )
    keys = args.only or list(SCENARIOS)
    if "training" in keys and importlib.util.find_spec("numpy") is None:
        print("numpy is not installed: the training scenario is skipped")
        keys.remove("training")
    record: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "repeat": repeat,
        "scale": scale,
        "one_blas_thread": args.one_blas_thread,
        "machine": {
            "usable_cpus": CORES,
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform(),
            "unirun": importlib.metadata.version("unirun"),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        },
    }
    scenarios = []
    for key in keys:
        with SCENARIOS[key](scale) as scenario:
            print(f"{scenario.title}: {scenario.note}", flush=True)
            measure(scenario, repeat)
        scenarios.append(scenario)
    print("Start-up and memory", flush=True)
    record["startup"] = startup_costs(max(1, min(repeat, 3))) if not args.only else []
    record["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    record["scenarios"] = [
        {
            "key": sc.key,
            "title": sc.title,
            "advice": sc.advice,
            "note": sc.note,
            "cells": [asdict(c) for c in sc.cells],
        }
        for sc in scenarios
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "scenarios.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "scenarios.md").write_text(page(record, scenarios) + "\n")
    if not args.no_plots and plot(scenarios, out / "scenarios.png"):
        print(f"wrote {out / 'scenarios.png'}")
    print(f"wrote {out / 'scenarios.md'} and {out / 'scenarios.json'}")
    failed = [c.label for sc in scenarios for c in sc.cells if c.status != "ok"]
    return 1 if failed else 0
