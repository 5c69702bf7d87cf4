"""Time DaskExecutor against bare Dask: ``python benchmarks/dask_bench.py``.

Every contender runs on the same ``LocalCluster`` through the same client:
``Client.submit``/``Client.map`` (with ``pure=False``, as a drop-in executor
must), ``Client.get_executor()`` (Dask's own ``concurrent.futures`` executor)
and ``unirun.DaskExecutor(client=...)``. Each group's rows are measured side by
side: one warm-up each, then the timed runs interleaved, the order rotating
each round, so a load spike hits every row alike. A row reports the median of
its runs, its fastest and slowest, the cost per task or item, and the ratio of
its median per-item cost to the group's first row (below 1 is cheaper).

    round trip   one task at a time: submit, then wait for its result
    burst        N tasks submitted at once, then all results
    tiny map     a map over tiny items; Client.map and get_executor().map run
                 fewer items than unirun's map(chunksize=None) (one Dask task per
                 item is slow), and rows compare the cost per item

Options: ``--quick`` (a smoke run), ``--repeat N`` (default 5), ``--workers N``
(default 2, one thread each), ``--out FILE.json`` and ``--page FILE.md``
(default docs/benchmarks-dask.md; ``--no-page`` to skip).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime
import importlib
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
TIMES = "\u00d7"
DASH = "\u2013"


def tiny(x: int) -> int:
    """The task: next to no work, so that only dispatch is measured."""
    return x + 1


@dataclass
class Row:
    """One contender of a group: what it does, per run, and its timings."""

    name: str
    items: int
    run: Callable[[], object] = field(repr=False)
    seconds: list[float] = field(default_factory=list)

    @property
    def per_item(self) -> float:
        return statistics.median(self.seconds) / self.items


@dataclass
class Group:
    """Rows measured side by side; the first is the reference."""

    title: str
    rows: list[Row]


def measure(groups: list[Group], repeat: int) -> None:
    """Warm every row up once, then time ``repeat`` interleaved rounds."""
    for group in groups:
        for row in group.rows:
            row.run()
        for round_ in range(repeat):
            shift = round_ % len(group.rows)
            for row in group.rows[shift:] + group.rows[:shift]:
                start = time.perf_counter()
                row.run()
                row.seconds.append(time.perf_counter() - start)
            print(f"  {group.title}: round {round_ + 1}/{repeat}", flush=True)


def build(client: Any, ex: Any, deep: Any, quick: bool) -> list[Group]:
    """The groups of rows, each run checking what it got back."""
    burst = 50 if quick else 500
    per_task_map = 200 if quick else 2_000
    big_map = 2_000 if quick else 20_000
    dask_ex = client.get_executor(pure=False)

    def check(got: list[int], n: int) -> None:
        assert got == [x + 1 for x in range(n)], "wrong results"

    def client_submit_one() -> None:
        assert client.submit(tiny, 1, pure=False).result() == 2

    def dask_executor_one() -> None:
        assert dask_ex.submit(tiny, 1).result() == 2

    def unirun_one() -> None:
        assert ex.submit(tiny, 1).result() == 2

    def client_map(n: int) -> Callable[[], None]:
        return lambda: check(client.gather(client.map(tiny, range(n), pure=False)), n)

    def client_submits(n: int) -> Callable[[], None]:
        def run() -> None:
            futures = [client.submit(tiny, x, pure=False) for x in range(n)]
            check(client.gather(futures), n)

        return run

    def executor_submits(executor: Any, n: int) -> Callable[[], None]:
        def run() -> None:
            futures = [executor.submit(tiny, x) for x in range(n)]
            cf.wait(futures)
            check([f.result() for f in futures], n)

        return run

    def executor_map(executor: Any, n: int, **kw: Any) -> Callable[[], None]:
        return lambda: check(list(executor.map(tiny, range(n), **kw)), n)

    each = f"{TIMES} {burst}"
    return [
        Group(
            "round trip: submit one task, wait for its result",
            [
                Row("Client.submit(pure=False).result()", 1, client_submit_one),
                Row("Client.get_executor().submit().result()", 1, dask_executor_one),
                Row("**unirun DaskExecutor.submit().result()**", 1, unirun_one),
            ],
        ),
        Group(
            f"burst: {burst} tasks submitted at once, then every result",
            [
                Row("Client.map(pure=False) + gather", burst, client_map(burst)),
                Row(
                    f"Client.submit(pure=False) {each} + gather",
                    burst,
                    client_submits(burst),
                ),
                Row(
                    f"Client.get_executor().submit {each} + wait",
                    burst,
                    executor_submits(dask_ex, burst),
                ),
                Row(
                    f"**unirun DaskExecutor.submit {each} + wait**",
                    burst,
                    executor_submits(ex, burst),
                ),
                Row(
                    f"**unirun DaskExecutor(max_workers=64).submit {each} + wait**",
                    burst,
                    executor_submits(deep, burst),
                ),
                Row(
                    "**unirun DaskExecutor.map(chunksize=1)**",
                    burst,
                    executor_map(ex, burst),
                ),
            ],
        ),
        Group(
            "tiny map: cost per item",
            [
                Row(
                    f"Client.map(pure=False) + gather, {per_task_map:,} items",
                    per_task_map,
                    client_map(per_task_map),
                ),
                Row(
                    f"Client.get_executor().map, {per_task_map:,} items",
                    per_task_map,
                    executor_map(dask_ex, per_task_map),
                ),
                Row(
                    f"**unirun DaskExecutor.map(chunksize=None), {big_map:,} items**",
                    big_map,
                    executor_map(ex, big_map, chunksize=None),
                ),
            ],
        ),
    ]


def _record(row: Row) -> dict[str, Any]:
    fields = {k: v for k, v in asdict(row).items() if k != "run"}
    return fields | {"per_item": row.per_item}


def _fmt(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def page(groups: list[Group], meta: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    lines = [
        "# Benchmarks: the Dask backend",
        "",
        f"Generated by `python benchmarks/dask_bench.py` on {meta['when']}: "
        f"{meta['cpus']} CPUs, CPython {meta['python']}, distributed "
        f"{meta['distributed']}, a LocalCluster of {meta['workers']} worker "
        f"processes with one thread each, on this machine. Load average (1, 5, "
        f"15 min) before the run: {meta['load_before']}, after: "
        f"{meta['load_after']}.",
        "",
        f"Each row: median of {meta['repeat']} timed runs after a warm-up, min "
        f"{DASH} max beside it; the runs of a group's rows are interleaved. "
        f"**{TIMES} ref** "
        "divides a row's median cost per item by the group's first row: below 1 "
        "is cheaper. Every contender uses the same client and cluster.",
    ]
    for group in groups:
        ref = group.rows[0].per_item
        lines += [
            "",
            f"## {group.title[0].upper()}{group.title[1:]}",
            "",
            f"| contender | run (median) | min {DASH} max | per item | {TIMES} ref |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for row in group.rows:
            lines.append(
                f"| {row.name} | {_fmt(statistics.median(row.seconds))} | "
                f"{_fmt(min(row.seconds))} {DASH} {_fmt(max(row.seconds))} | "
                f"{_fmt(row.per_item)} | {row.per_item / ref:.3g}{TIMES} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write the JSON record and the page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "dask.json"
    )
    parser.add_argument(
        "--page", type=Path, default=ROOT / "docs" / "benchmarks-dask.md"
    )
    parser.add_argument("--no-page", action="store_true")
    args = parser.parse_args(argv)  # fmt: skip

    import unirun

    # Typed as Any: distributed is mostly unannotated.
    distributed: Any = importlib.import_module("distributed")

    load_before = [round(x, 2) for x in os.getloadavg()]
    cluster = distributed.LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        dashboard_address=":0",
        scheduler_kwargs={"dashboard": False},
    )
    client = distributed.Client(cluster)
    ex = unirun.DaskExecutor(client=client)
    deep = unirun.DaskExecutor(max_workers=64, client=client)
    groups: list[Group] = []
    try:
        groups = build(client, ex, deep, args.quick)
        measure(groups, 1 if args.quick else args.repeat)
    finally:
        ex.shutdown()
        deep.shutdown()
        client.close()
        cluster.close()
    meta = {
        "when": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "distributed": distributed.__version__,
        "workers": args.workers,
        "repeat": 1 if args.quick else args.repeat,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    record = {
        "meta": meta,
        "groups": [
            {"title": g.title, "rows": [_record(r) for r in g.rows]} for g in groups
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    text = page(groups, meta)
    print(text)
    if not args.no_page and not args.quick:
        args.page.write_text(text)
    return 0


if __name__ == "__main__":  # worker processes import this module
    sys.exit(main())
