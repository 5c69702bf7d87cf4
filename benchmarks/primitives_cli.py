"""The command line of ``benchmarks/primitives.py``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["parse_args"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/primitives.py",
        description="Time unirun's queues and locks side by side with the stdlib's.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: --size 0.1 unless given"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, metavar="N", help="timed runs per row (7)"
    )
    parser.add_argument(
        "--size", type=float, default=None, metavar="X", help="scale every row's work"
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE.json", help="raw numbers here"
    )
    parser.add_argument(
        "--page",
        type=Path,
        default=None,
        metavar="FILE.md",
        help="write the page here (default: docs/benchmarks-primitives.md, full "
        "runs only)",
    )
    parser.add_argument("--no-page", action="store_true", help="write no page")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = 0.1 if args.quick else 1.0
    if args.repeat is None:
        args.repeat = 5 if args.quick else 7
    if args.size <= 0 or args.repeat < 1:
        parser.error("--size must be > 0 and --repeat >= 1")
    return args
