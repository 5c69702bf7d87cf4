"""Command line of the suite: ``python benchmarks/run.py [options]``.

Where the output goes:

    JSON        benchmarks/results/benchmarks-<UTC time>.json
    markdown    docs/benchmarks.md       (a full run: not --quick, not --only)
    plots       docs/benchmarks-<workload>.png
    --out DIR   all three in DIR instead (DIR/benchmarks.json, ...)

Quick and --only runs write their page and plots to benchmarks/results/, so a
smoke run never replaces the committed numbers.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import platform
import sys
from pathlib import Path
from typing import Any

from unirun._backends.process import default_context
from unirun._cpu import usable_cpus

from . import plots, report
from .contenders import CONTENDERS
from .jobs import Sizing
from .leftovers import leftovers
from .peers import version_of
from .suite import WorkloadResult, run_workload
from .workloads import WORKLOADS

__all__ = ["main", "parse_args"]

ROOT = Path(__file__).resolve().parent.parent
PEERS = ("anyio", "joblib", "loky", "mpire", "pebble", "matplotlib")  # distributions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; ``--quick`` fills in the size and repeats."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Time unirun side by side with the stdlib pools and peers.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: --size 0.05 --repeat 3 unless given (well under a minute)",
    )
    parser.add_argument(
        "--size",
        type=float,
        default=None,
        metavar="N",
        help="multiply every workload's amount of work by N (default 1)",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, metavar="R", help="timed runs per cell"
    )
    names = [w.name for w in WORKLOADS]
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="WORKLOAD",
        help=f"run only this workload (repeatable, or comma-separated): {names}",
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="write everything here"
    )
    parser.add_argument("--no-plots", action="store_true", help="write no PNGs")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = 0.05 if args.quick else 1.0
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.size <= 0 or args.repeat < 1:
        parser.error("--size must be > 0 and --repeat >= 1")
    args.only = [name for group in args.only for name in group.split(",") if name]
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {names}")
    return args


def _meta(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    versions = {name: version_of(name) for name in PEERS}
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python benchmarks/run.py", *argv]),
        "usable_cpus": usable_cpus(),
        "cpu_count": os.cpu_count(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
        "unirun": version_of("unirun") or "(not installed: run from source)",
        "peers": {name: v for name, v in versions.items() if v is not None},
        "missing": [name for name, v in versions.items() if v is None],
        "start_methods": {
            "unirun": default_context().get_start_method(),
            "default": multiprocessing.get_start_method(allow_none=False),
        },
        "contenders": {
            key: {
                "label": c.label,
                "family": c.family,
                "model": c.model,
                "requires": list(c.requires),
            }
            for key, c in CONTENDERS.items()
        },
        "load_before": _load(),
        "size": args.size,
        "repeats": args.repeat,
        "quick": args.quick,
    }


def _load() -> list[float] | None:
    """Return the 1, 5 and 15 minute load averages, where the platform has them."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _destinations(args: argparse.Namespace) -> tuple[Path, Path]:
    """Return (the JSON file, the folder for the page and plots)."""
    if args.out is not None:
        out: Path = args.out
        return out / "benchmarks.json", out
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    results = ROOT / "benchmarks" / "results"
    json_path = results / f"benchmarks-{stamp}.json"
    full = not args.quick and not args.only
    return json_path, (ROOT / "docs" if full else results)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; print the page to stdout; return 1 if any cell failed."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    sizing = Sizing(scale=args.size, cores=usable_cpus())
    meta = _meta(args, argv)
    selected = [w for w in WORKLOADS if not args.only or w.name in args.only]
    results: list[WorkloadResult] = [
        run_workload(workload, sizing, args.repeat) for workload in selected
    ]
    meta["leftovers"] = leftovers()
    meta["load_after"] = _load()
    json_path, page_dir = _destinations(args)
    images: dict[str, str] = {}
    if not args.no_plots and plots.available():
        for result in results:
            name = f"benchmarks-{result.workload.name}.png"
            plots.plot_workload(result, page_dir / name)
            images[result.workload.name] = name
    page = report.markdown(results, meta, images)
    page_dir.mkdir(parents=True, exist_ok=True)
    (page_dir / "benchmarks.md").write_text(page)
    report.write_json(json_path, results, meta)
    print(page)
    print(f"wrote {json_path} and {page_dir / 'benchmarks.md'}", file=sys.stderr)
    failed = any(c.status == "failed" for r in results for c in r.cells)
    return 1 if failed else 0
