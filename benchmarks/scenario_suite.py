"""Measure the scenarios and write the record: the command line of ``scenarios.py``."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import unirun

from .scenario_cases import SCENARIOS
from .scenario_model import CORES, Cell, Scenario
from .scenario_report import page, plot
from .scenario_tasks import BLAS_VARIABLES

if TYPE_CHECKING:
    from collections.abc import Callable

    from .scenario_model import Run

ROOT = Path(__file__).resolve().parent.parent


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
        "--render",
        type=Path,
        default=None,
        metavar="JSON",
        help="measure nothing: rewrite the page and plot of a recorded run",
    )
    parser.add_argument(
        "--one-blas-thread",
        action="store_true",
        help="set OMP_NUM_THREADS and kin to 1 here and in every worker",
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        record = json.loads(args.render.read_text())
        write(args.out or args.render.parent, record, args.no_plots)
        return 0
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
        "scenarios": [],
        "machine": {
            "usable_cpus": CORES,
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "platform": platform.platform(),
            "unirun": importlib.metadata.version("unirun"),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        },
    }
    for key in keys:
        with SCENARIOS[key](scale) as scenario:
            print(f"{scenario.title}: {scenario.note}", flush=True)
            measure(scenario, repeat)
        record["scenarios"].append(
            {
                "key": scenario.key,
                "title": scenario.title,
                "bound": scenario.bound,
                "advice": scenario.advice,
                "note": scenario.note,
                "cells": [asdict(c) for c in scenario.cells],
            }
        )
    print("Start-up and memory", flush=True)
    record["startup"] = startup_costs(max(1, min(repeat, 3))) if not args.only else []
    record["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    write(out, record, args.no_plots)
    cells = [cell for sc in record["scenarios"] for cell in sc["cells"]]
    return 1 if any(cell["status"] != "ok" for cell in cells) else 0


def write(out: Path, record: dict[str, Any], no_plots: bool) -> None:
    """Write the record, its page and (unless ``no_plots``) its plot to ``out``."""
    scenarios = [
        Scenario(
            sc["key"],
            sc["title"],
            sc["bound"],
            sc["advice"],
            [],
            [],
            sc["note"],
            [Cell(**cell) for cell in sc["cells"]],
        )
        for sc in record["scenarios"]
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / "scenarios.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "scenarios.md").write_text(page(record, scenarios) + "\n")
    if not no_plots and plot(scenarios, out / "scenarios.png"):
        print(f"wrote {out / 'scenarios.png'}")
    print(f"wrote {out / 'scenarios.md'} and {out / 'scenarios.json'}")
