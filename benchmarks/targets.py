"""The performance targets of DESIGN.md, measured side by side as ratios.

``python benchmarks/targets.py [--repeat N] [--out docs/benchmarks-targets.md]``

Each row runs unirun and its reference in one process, interleaved, ``repeat``
times, and reports the medians and their ratio, with the machine's load average
before and after. Nothing here is asserted: the page says what was measured.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import contextlib
import gc
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

# As in run.py: the repository root instead of benchmarks/ on the path, so that
# `benchmarks` imports as a package here and in every worker.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import unirun
from benchmarks import tasks
from benchmarks.asyncio_floor import FloorLoop
from benchmarks.autorows import auto_rows
from benchmarks.coldstart import cold_map
from benchmarks.targets_page import render
from unirun._cpu import usable_cpus

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator

#: Tiny items in the map rows.
MAP_ITEMS = 100_000
#: Tasks in the per-task rows.
TASKS = 2_000
#: Fresh sets of threads the rows from sync code are timed with.
THREAD_SETS = 5


def tiny(x: int) -> int:
    return x + 1


def noop() -> None:
    return None


async def anoop(i: int) -> int:
    return i


def _interleaved(
    ours: Callable[[], float], theirs: Callable[[], float], repeat: int
) -> tuple[float, float]:
    """Medians of ``repeat`` runs of each, run in turn (the load hits both)."""
    times = _rounds({"ours": ours, "theirs": theirs}, repeat)
    return times["ours"], times["theirs"]


def _interleaved_all(
    runs: dict[str, Callable[[], float]], repeat: int
) -> dict[str, float]:
    """Medians of ``repeat`` runs of each, warmed first, run in turn."""
    for run in runs.values():
        run()  # warm
    return _rounds(runs, repeat)


def _rounds(runs: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    """Medians of ``repeat`` rounds that run each once, the order rotating (so
    that none always runs right after the same other)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(repeat):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(runs[name]())
    return {name: statistics.median(values) for name, values in times.items()}


@contextlib.contextmanager
def _placed(layout: str) -> Iterator[Callable[[], None]]:
    """Place this thread and the threads it starts inside, by ``layout``.

    ``"one CPU"``: all of them on one CPU. ``"two CPUs"``: the threads it starts
    on one, and this one, once it calls what this yields, on another.
    ``"kernel"``: where the kernel puts them. Where the platform cannot place
    threads (or has one CPU for two), only ``"kernel"`` runs: the others raise
    :class:`_CannotPlace`.
    """
    setter = getattr(os, "sched_setaffinity", None)
    allowed = os.sched_getaffinity(0) if setter is not None else set()
    cpus = sorted(allowed)
    if layout == "kernel":
        yield lambda: None
        return
    if setter is None or len(cpus) < (1 if layout == "one CPU" else 2):
        raise _CannotPlace(layout)
    setter(0, {cpus[-1]})  # the threads started inside stay there
    try:
        if layout == "one CPU":
            yield lambda: None
        else:
            yield lambda: setter(0, {cpus[0]})
    finally:
        setter(0, allowed)


class _CannotPlace(Exception):
    """The platform cannot place threads so."""


#: How each layout of _placed reads in a row's name.
_WHERE = {
    "one CPU": "every thread on one CPU",
    "two CPUs": "the caller and the executor's thread on two CPUs",
    "kernel": "threads where the kernel puts them (median of sets)",
}


def _timed(body: Callable[[], object]) -> float:
    start = time.perf_counter()
    body()
    return time.perf_counter() - start


# -- the rows ------------------------------------------------------------------------


def map_rows(repeat: int) -> list[tuple[str, float, str, float, str]]:
    """Per-item cost of map(chunksize=None) over tiny items, on every backend."""
    items = list(range(MAP_ITEMS))

    def mapped(ex: unirun.Executor) -> Callable[[], float]:
        return lambda: _timed(lambda: list(ex.map(tiny, items, chunksize=None)))

    kinds = ("process", "thread", "coroutine", "auto")
    with contextlib.ExitStack() as stack:
        executors = {kind: stack.enter_context(unirun.executor(kind)) for kind in kinds}
        for ex in executors.values():
            list(ex.map(tiny, range(1000), chunksize=None))  # warm, probed
        runs = {kind: mapped(ex) for kind, ex in executors.items()}
        runs["serial"] = lambda: _timed(lambda: [tiny(x) for x in items])
        medians = _interleaved_all(runs, repeat)
    reference = medians["process"] / MAP_ITEMS
    rows = [
        (
            f"map of {MAP_ITEMS:,} tiny items, chunksize=None, on {kind}",
            medians[kind] / MAP_ITEMS,
            "the process backend's batched map",
            reference,
            "≤ 1",
        )
        for kind in kinds[1:]
    ]
    rows.append(
        (
            "(for scale) a serial loop, per item",
            medians["serial"] / MAP_ITEMS,
            "the process backend's batched map",
            reference,
            "-",
        )
    )
    return rows


def coroutine_rows(repeat: int) -> list[tuple[str, float, str, float, str]]:
    """Per-task cost of the coroutine backend against asyncio and threads."""

    async def bare() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(anoop(i) for i in range(TASKS)))
        return time.perf_counter() - start

    async def ours() -> float:
        async with unirun.CoroutineExecutor() as ex:
            start = time.perf_counter()
            await ex.gather(*[ex.submit(anoop, i) for i in range(TASKS)])
            return time.perf_counter() - start

    def settled(run: Callable[[], Coroutine[object, object, float]]) -> float:
        gc.collect()  # each run starts from the same heap, whatever ran before
        return asyncio.run(run())

    # A run takes a few milliseconds, which one stray wake-up of another
    # process can double: many more runs than elsewhere, for a steady median.
    inside, gathered = _interleaved(
        lambda: settled(ours), lambda: settled(bare), max(25, 5 * repeat)
    )

    def round_trips(ex: unirun.Executor, fn: Callable[..., object]) -> float:
        count = TASKS // 4
        return _timed(lambda: [ex.submit(fn, 1).result() for _ in range(count)])

    def from_sync_code(layout: str) -> dict[str, float]:
        # Every thread the run needs starts here, first: threads keep the CPUs
        # of the thread that started them (see _placed).
        with _placed(layout) as caller_moves:
            loop = asyncio.new_event_loop()
            loop_thread = threading.Thread(target=loop.run_forever)
            loop_thread.start()
            floor = FloorLoop()

            def bare_trips() -> float:
                count = TASKS // 4
                return _timed(
                    lambda: [
                        asyncio.run_coroutine_threadsafe(anoop(1), loop).result()
                        for _ in range(count)
                    ]
                )

            try:
                with (
                    unirun.CoroutineExecutor() as coroutine,
                    unirun.ThreadExecutor(max_workers=1) as thread,
                ):
                    runs = {
                        "coroutine": lambda: round_trips(coroutine, anoop),
                        "thread": lambda: round_trips(thread, tiny),
                        "thread, async def": lambda: round_trips(thread, anoop),
                        "asyncio": bare_trips,
                        "floor": lambda: _timed(
                            lambda: [floor.call(anoop(1)) for _ in range(TASKS // 4)]
                        ),
                    }
                    for run in runs.values():
                        run()  # every thread started
                    caller_moves()
                    return _interleaved_all(runs, repeat)
            finally:
                floor.close()
                loop.call_soon_threadsafe(loop.stop)
                loop_thread.join()
                loop.close()

    # Where the kernel places a pair of threads that wake each other sticks for
    # as long as they live, and differs from pair to pair: left to the kernel,
    # the thread backend read 12 µs with one set of threads and 90 µs with the
    # next, and the coroutine backend the other way round. The targets are
    # read with the threads placed; the kernel's choice is the median of sets.
    placed: dict[str, dict[str, float]] = {}
    for layout in ("one CPU", "two CPUs"):
        try:
            placed[layout] = from_sync_code(layout)
        except _CannotPlace:
            placed[layout] = {}
    sets = [from_sync_code("kernel") for _ in range(THREAD_SETS)]
    by_kernel = {name: statistics.median(s[name] for s in sets) for name in sets[0]}
    trips = TASKS // 4
    rows = [
        (
            "coroutine submit + await, inside async with",
            inside / TASKS,
            "bare asyncio.gather",
            gathered / TASKS,
            "≤ 1.5",
        )
    ]
    where = _WHERE
    for layout, times in [*placed.items(), ("kernel", by_kernel)]:
        if not times:  # the platform cannot place threads
            continue
        rows.append(
            (
                "coroutine submit + result() of an async def from sync code, "
                + where[layout],
                times["coroutine"] / trips,
                "the thread backend (a plain function)",
                times["thread"] / trips,
                "≤ 1" if layout != "kernel" else "-",
            )
        )
    # The same async def on both: what switching the kind string changes for
    # code whose tasks are coroutines (shown; the target is the row above).
    for layout, times in [*placed.items(), ("kernel", by_kernel)]:
        if not times:
            continue
        rows.append(
            (
                "the same, " + where[layout],
                times["coroutine"] / trips,
                "the thread backend running the same async def",
                times["thread, async def"] / trips,
                "-",
            )
        )
    rows.append(
        (
            "the same, " + where["kernel"],
            by_kernel["coroutine"] / trips,
            "asyncio's run_coroutine_threadsafe to a loop in a thread",
            by_kernel["asyncio"] / trips,
            "-",
        )
    )
    # What is left once an executor drops everything it could (see
    # asyncio_floor.py): shown, against the same reference as the target.
    for layout, times in [*placed.items(), ("kernel", by_kernel)]:
        if not times:
            continue
        rows.append(
            (
                "(floor) a bare asyncio round trip from sync code: a parked "
                "loop, a task per call, a lock back; " + where[layout],
                times["floor"] / trips,
                "the thread backend (a plain function)",
                times["thread"] / trips,
                "-",
            )
        )
    return rows


def process_rows(repeat: int) -> list[tuple[str, float, str, float, str]]:
    """A no-op round trip through a warm process pool, against the stdlib's."""
    count = TASKS // 4

    def trips(ex: cf.Executor) -> float:
        return _timed(lambda: [ex.submit(noop).result() for _ in range(count)])

    with (
        unirun.ProcessExecutor(max_workers=2) as ours,
        cf.ProcessPoolExecutor(max_workers=2) as stdlib,
    ):
        trips(ours), trips(stdlib)  # warm: workers started
        mine, theirs = _interleaved(lambda: trips(ours), lambda: trips(stdlib), repeat)
    return [
        (
            "process submit + result() round trip (no-op)",
            mine / count,
            "ProcessPoolExecutor",
            theirs / count,
            "≤ 0.7",
        )
    ]


#: A large module global of the script itself (in ``__main__`` when run).
BIG = list(range(5_000_000))


def read_global(i: int) -> int:
    """A __main__ function that reads a large global on every call."""
    return BIG[i]


def global_rows(repeat: int) -> list[tuple[str, float, str, float, str]]:
    """A __main__ function reading a large global: its global travels once."""
    count = 200

    def calls(ex: cf.Executor) -> float:
        return _timed(
            lambda: [ex.submit(read_global, i).result() for i in range(count)]
        )

    with (
        unirun.ProcessExecutor(max_workers=2) as ours,
        cf.ProcessPoolExecutor(max_workers=2) as stdlib,
    ):
        calls(ours), calls(stdlib)  # warm: workers started, the function sent
        mine, theirs = _interleaved(lambda: calls(ours), lambda: calls(stdlib), repeat)
    return [
        (
            "a __main__ function reading a 5M-item global, per call",
            mine / count,
            "ProcessPoolExecutor",
            theirs / count,
            "≤ 1.5",
        )
    ]


def thread_rows(repeat: int) -> list[tuple[str, float, str, float, str]]:
    """Per-task overhead of the thread backend (statistics are always counted)."""
    count = TASKS

    def trips(ex: cf.Executor) -> float:
        return _timed(lambda: [ex.submit(tiny, 1).result() for _ in range(count)])

    def one_set(layout: str) -> tuple[float, float]:
        # One worker each, started before the caller moves: see _placed.
        with (
            _placed(layout) as caller_moves,
            unirun.ThreadExecutor(max_workers=1) as ours,
            cf.ThreadPoolExecutor(max_workers=1) as stdlib,
        ):
            trips(ours), trips(stdlib)
            caller_moves()
            return _interleaved(lambda: trips(ours), lambda: trips(stdlib), repeat)

    # As from sync code (see coroutine_rows): left to the kernel, one set of
    # pools read 0.18x and the next 4.9x, and the pool whose worker started
    # first got the caller's CPU more often. Placed, then the median of sets.
    rows = []
    for layout in ("one CPU", "two CPUs", "kernel"):
        try:
            sets = [
                one_set(layout) for _ in range(1 if layout != "kernel" else THREAD_SETS)
            ]
        except _CannotPlace:
            continue
        mine = statistics.median(m for m, _ in sets)
        theirs = statistics.median(t for _, t in sets)
        rows.append(
            (
                "thread submit + result() (statistics counted), " + _WHERE[layout],
                mine / count,
                "ThreadPoolExecutor",
                theirs / count,
                "≤ 1" if layout != "kernel" else "-",
            )
        )
    return rows


def _train(steps: int) -> float:
    import numpy as np

    rng = np.random.default_rng(0)
    weights = rng.standard_normal((400, 400))
    for _ in range(steps):
        weights = np.tanh(weights @ weights / 400)
    return float(weights.sum())


def numpy_rows(repeat: int) -> list[tuple[str, float, str, float, str]]:
    """A numpy "training" loop on process workers, against joblib's."""
    try:
        import joblib
        import numpy  # noqa: F401
    except ImportError:
        return []

    def ours() -> float:
        with unirun.ProcessExecutor(max_workers=2) as ex:
            return _timed(lambda: list(ex.map(_train, [40] * 16)))

    def theirs() -> float:
        parallel = joblib.Parallel(n_jobs=2)
        return _timed(lambda: parallel(joblib.delayed(_train)(40) for _ in range(16)))

    mine, joblibs = _interleaved(ours, theirs, repeat)
    return [
        (
            "numpy training, 16 steps on ProcessExecutor(2) (start-up included)",
            mine,
            "joblib (loky, capped threads)",
            joblibs,
            "≤ 1.2",
        )
    ]


def cold_rows() -> list[tuple[str, float, str, float, str]]:
    """What the first call costs on each backend (a fresh executor)."""
    rows = []
    for kind in ("thread", "coroutine", "process", "auto"):
        start = time.perf_counter()
        with unirun.executor(kind) as ex:
            ex.submit(tiny, 1).result()
        rows.append(
            (
                f"first call on a new {kind} executor",
                time.perf_counter() - start,
                "",
                0.0,
                "-",
            )
        )
    return rows


def cold_map_rows(repeat: int) -> list[tuple[str, float, str, float, str]]:
    """A new executor's first map of GIL-releasing calls: auto against threads.

    Creation, auto's probe and classification, the map and the shutdown are all
    timed (as in ``benchmarks/coldstart.py``).
    """
    block = 8 << 20  # one ~8 ms SHA-256 per task, the GIL released
    count = 4 * usable_cpus()
    items = [(i % 4, block, 1) for i in range(count)]
    digests = {seed: tasks.hash_rounds(seed, block, 1) for seed in range(4)}
    expected = [digests[seed] for seed, _, _ in items]
    auto, thread = _interleaved(
        lambda: cold_map("auto", items, expected),
        lambda: cold_map("thread", items, expected),
        repeat,
    )
    return [
        (
            f"first map of {count} SHA-256 calls of 8 MiB (GIL released) on a new "
            "auto executor",
            auto,
            "the same on a new thread executor",
            thread,
            "≤ 2",
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    before = os.getloadavg()[0]
    rows = [
        *map_rows(args.repeat),
        *coroutine_rows(args.repeat),
        *thread_rows(args.repeat),
        *process_rows(args.repeat),
        *global_rows(max(1, args.repeat // 2)),
        *numpy_rows(max(1, args.repeat // 2)),
        *cold_rows(),
        *cold_map_rows(args.repeat),
        *auto_rows(args.repeat),
    ]
    after = os.getloadavg()[0]
    meta = (
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{before:.2f} before and {after:.2f} after, {time.strftime('%Y-%m-%d')}."
    )
    page = render(rows, meta)
    if args.out is not None:
        args.out.write_text(page)
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
