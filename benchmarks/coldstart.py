"""Cold start: a fresh executor's first ``map`` of short GIL-releasing calls.

``python benchmarks/coldstart.py [--repeat R] [--tasks N]``

Each run creates an executor, maps the task over its items, checks the results
and shuts the executor down; all of it is timed, so auto's probe (and the pool
starts it causes) counts. The suite's workloads time warm pools only; this is
the first call's cost that the benchmark page quotes (issue 13: auto's cold map
of a GIL-free workload within 2x of the thread backend's).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# As in run.py: the repository root instead of benchmarks/ on the path, so that
# `benchmarks` imports as a package here and in every worker.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import unirun
from benchmarks import tasks
from unirun._cpu import usable_cpus

KINDS = ("thread", "auto", "process")


def cold_map(
    kind: str, items: list[tuple[int, int, int]], expected: list[str]
) -> float:
    """Time one fresh executor of ``kind`` through its first map, start to end."""
    start = time.perf_counter()
    with unirun.executor(kind) as executor:  # type: ignore[call-overload]  # a kind
        results = list(executor.map(tasks.hash_rounds, *zip(*items, strict=True)))
    elapsed = time.perf_counter() - start
    if results != expected:
        raise AssertionError(f"{kind}: wrong results")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print medians and the auto/thread ratio."""
    parser = argparse.ArgumentParser(prog="python benchmarks/coldstart.py")
    parser.add_argument("--repeat", type=int, default=7, help="runs per kind")
    parser.add_argument("--tasks", type=int, default=None, help="default 4 per CPU")
    args = parser.parse_args(argv)
    cpus = usable_cpus()
    block = 8 << 20  # one ~8 ms SHA-256 per task, the GIL released
    count = args.tasks or 4 * cpus
    items = [(i % 4, block, 1) for i in range(count)]
    digests = {seed: tasks.hash_rounds(seed, block, 1) for seed in range(4)}
    expected = [digests[seed] for seed, _, _ in items]
    load = os.getloadavg()
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(args.repeat):  # interleaved: load changes hit every kind
        for kind in KINDS:
            times[kind].append(cold_map(kind, items, expected))
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    print(
        f"cold map of {count} SHA-256 calls of 8 MiB, {cpus} usable CPUs, "
        f"median of {args.repeat}; load average before {load[0]:.2f}, "
        f"after {os.getloadavg()[0]:.2f}"
    )
    for kind in KINDS:
        low, high = min(times[kind]), max(times[kind])
        print(
            f"  {kind:<8} {medians[kind] * 1e3:8.1f} ms  "
            f"({low * 1e3:.1f} - {high * 1e3:.1f})"
        )
    print(f"  auto / thread: {medians['auto'] / medians['thread']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
