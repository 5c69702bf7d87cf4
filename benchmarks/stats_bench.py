"""What ``statistics()`` costs: ``python benchmarks/stats_bench.py``.

Options: ``--quick`` (a smoke run: fewer tasks and runs), ``--repeat N`` (timed
runs per variant, default 9).

Each backend (thread, process) runs no-op tasks one at a time, ``submit`` then
``result()``, so the time is all overhead, in six variants measured side by
side on one executor: the stdlib's pool of the same size (for scale: unirun
always keeps the counters), ``statistics()`` never called, called every
millisecond from another thread (a live display), called in a tight loop from
another thread (the worst case), and, as controls, that thread running plain
Python of about the same length per turn, with no lock at all, at both paces:
what another thread costs by taking its share of the GIL, whatever it calls.
The runs are interleaved, the order rotating each round, so a load spike hits
every variant alike. Each row gives the median time per task and its ratio to
"never called". Then the cost of one ``statistics()`` call on each backend,
median of the runs.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import os
import statistics
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import unirun

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# kind, workers, tasks per timed run (process round trips cost more)
BACKENDS: tuple[tuple[str, int, int], ...] = (("thread", 4, 2000), ("process", 2, 500))
#: Calls per timed run of ``statistics()`` alone.
CALLS = 2000


def noop() -> None:
    return None


def _spin() -> object:
    """Plain Python work of about a ``statistics()`` call's length, no lock."""
    return [{"n": n} for n in range(70)]


def _poll(
    call: Callable[[], object], pause: float | None
) -> Callable[[], Iterator[None]]:
    """A context in which another thread calls ``call`` in a loop."""

    def poller() -> Iterator[None]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                call()
                if pause is not None:
                    stop.wait(pause)

        thread = threading.Thread(target=loop, name="stats-poller")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    return poller


def _trips(executor: cf.Executor, tasks: int) -> float:
    start = time.perf_counter()
    for _ in range(tasks):
        executor.submit(noop).result()
    return time.perf_counter() - start


def measure(
    quick: bool, repeat: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Time every variant on every backend; then one call of ``statistics()``."""
    rows: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for kind, workers, tasks in BACKENDS:
        if quick:
            tasks //= 10
        stdlib: cf.Executor = (
            cf.ThreadPoolExecutor(workers)
            if kind == "thread"
            else cf.ProcessPoolExecutor(workers)
        )
        with stdlib, unirun.executor(kind, max_workers=workers) as ours:  # type: ignore[call-overload]  # a known kind
            variants: dict[str, tuple[cf.Executor, Any]] = {
                "stdlib pool (for scale)": (stdlib, None),
                "statistics() never called": (ours, None),
                "called every 1 ms, another thread": (
                    ours,
                    _poll(ours.statistics, 0.001),
                ),
                "called in a tight loop, another thread": (
                    ours,
                    _poll(ours.statistics, None),
                ),
                "control: plain Python every 1 ms": (ours, _poll(_spin, 0.001)),
                "control: plain Python in a tight loop": (ours, _poll(_spin, None)),
            }
            names = list(variants)
            times: dict[str, list[float]] = {name: [] for name in names}
            for executor, _ in variants.values():  # warm: workers started
                _trips(executor, tasks)
            for round_ in range(repeat):
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    executor, poller = variants[name]
                    if poller is None:
                        times[name].append(_trips(executor, tasks))
                    else:
                        for _ in poller():
                            times[name].append(_trips(executor, tasks))
            base = statistics.median(times["statistics() never called"])
            for name in names:
                median = statistics.median(times[name])
                rows.append(
                    {
                        "backend": kind,
                        "variant": name,
                        "tasks": tasks,
                        "per_task_us": median / tasks * 1e6,
                        "ratio": median / base,
                    }
                )
            one = []
            for _ in range(repeat):
                start = time.perf_counter()
                for _ in range(CALLS):
                    ours.statistics()
                one.append((time.perf_counter() - start) / CALLS)
            snapshot = ours.statistics()
            calls.append(
                {
                    "backend": kind,
                    "workers": snapshot.workers_alive,
                    "per_call_us": statistics.median(one) * 1e6,
                }
            )
    return rows, calls


def table(rows: list[dict[str, Any]], calls: list[dict[str, Any]]) -> str:
    """The rows as two markdown tables."""
    lines = [
        "| backend | variant | tasks | per task µs (median) | vs never called |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {row['backend']} | {row['variant']} | {row['tasks']} "
        f"| {row['per_task_us']:.1f} | {row['ratio']:.2f} |"
        for row in rows
    ]
    lines += ["", "| backend | workers | one statistics() call µs (median) |"]
    lines.append("| --- | ---: | ---: |")
    lines += [
        f"| {call['backend']} | {call['workers']} | {call['per_call_us']:.2f} |"
        for call in calls
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per row")
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 9)
    before = os.getloadavg()[0]
    rows, calls = measure(args.quick, repeat)
    after = os.getloadavg()[0]
    print(
        f"submit(noop).result(), one task at a time; {repeat} timed runs per row, "
        f"interleaved. Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {before:.2f} before and {after:.2f} after.\n"
    )
    print(table(rows, calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
