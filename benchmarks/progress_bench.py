"""What ``progress=`` costs on ``map``: ``python benchmarks/progress_bench.py``.

Options: ``--quick`` (a smoke run: fewer items and runs), ``--items N`` (items
per map, default 20000), ``--repeat N`` (timed runs per row, default 9).

Each backend maps a trivial function (``operator.neg``) over N items, so the
time is all overhead, in four variants measured side by side: no ``progress``
argument at all, ``progress=None``, a ``(done, total)`` callable that does
nothing, and a tqdm-like class that does nothing. The runs are interleaved (the
order rotating each round) so a load spike hits every variant alike, and the
garbage collector is off while a run is timed. Each row gives the fastest and
the median wall time, and the CPU time this process (all its threads) spent per
item in its least costly run, against the run without the argument: CPU time is
what progress adds, and it hardly moves when other programs load the machine.
On the process backend the workers' CPU time is not counted (progress adds
nothing there); only the parent's.
"""

from __future__ import annotations

import argparse
import gc
import operator
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

import unirun

if TYPE_CHECKING:
    from unirun._base import BaseExecutor

# kind, executor options, chunksize, share of the items (a plain function on the
# coroutine backend goes through a worker thread each: slower per item).
BACKENDS: tuple[tuple[str, dict[str, Any], int | None, float], ...] = (
    ("thread", {"max_workers": 4}, 1, 1.0),
    ("process", {"max_workers": 2}, None, 1.0),
    ("coroutine", {}, 1, 0.25),
)


def _ignore(done: int, total: int | None) -> None:
    pass


class NullBar:
    """A tqdm-like class that draws nothing."""

    def __init__(self, *, total: int | None) -> None:
        self.total = total

    def update(self, n: int) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


VARIANTS: dict[str, Any] = {
    "no argument": ...,
    "progress=None": None,
    "progress=callable": _ignore,
    "progress=class": NullBar,
}


def _once(
    executor: BaseExecutor, items: range, chunksize: int | None, progress: Any
) -> tuple[float, float]:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        cpu = time.process_time()
        if progress is ...:
            results = executor.map(operator.neg, items, chunksize=chunksize)
        else:
            results = executor.map(
                operator.neg, items, chunksize=chunksize, progress=progress
            )
        for _ in results:
            pass
        return time.perf_counter() - start, time.process_time() - cpu
    finally:
        gc.enable()


def measure(items: int, repeat: int) -> list[dict[str, Any]]:
    """Time every variant on every backend; one row per pair."""
    rows: list[dict[str, Any]] = []
    names = list(VARIANTS)
    for kind, options, chunksize, share in BACKENDS:
        count = max(1, int(items * share))
        work = range(count)
        times: dict[str, list[float]] = {name: [] for name in names}
        cpus: dict[str, list[float]] = {name: [] for name in names}
        with unirun.executor(kind, **options) as executor:  # type: ignore[arg-type]  # a known kind
            for name in names:  # warm up: workers started, code paths hot
                _once(executor, work, chunksize, VARIANTS[name])
            for round_ in range(repeat):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    wall, cpu = _once(executor, work, chunksize, VARIANTS[name])
                    times[name].append(wall)
                    cpus[name].append(cpu)
        base = min(cpus["no argument"])
        for name in names:
            best = min(cpus[name])
            rows.append(
                {
                    "variant": name,
                    "backend": kind,
                    "chunksize": chunksize,
                    "items": count,
                    "min_s": min(times[name]),
                    "median_s": statistics.median(times[name]),
                    "cpu_per_item_us": best / count * 1e6,
                    "ratio": best / base,
                    "extra_per_item_us": (best - base) / count * 1e6,
                }
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    lines = [
        "| variant | backend | items | wall min ms | wall median ms "
        "| CPU per item µs | extra CPU per item µs | CPU vs no argument |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        chunks = " (chunksize=None)" if row["chunksize"] is None else ""
        lines.append(
            f"| {row['variant']} | {row['backend']}{chunks} | {row['items']} "
            f"| {row['min_s'] * 1e3:.1f} | {row['median_s'] * 1e3:.1f} "
            f"| {row['cpu_per_item_us']:.2f} | {row['extra_per_item_us']:+.2f} "
            f"| {row['ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--items", type=int, default=None, help="items per map")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per row")
    args = parser.parse_args(argv)
    items = args.items or (2_000 if args.quick else 20_000)
    repeat = args.repeat or (3 if args.quick else 9)
    rows = measure(items, repeat)
    print(f"map(operator.neg, range(N)): {repeat} timed runs per row; the CPU time")
    print("of this process (all its threads), from its least costly run\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
