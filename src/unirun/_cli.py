"""``python -m unirun``: command-line entry points."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m unirun",
        description="One executor API over threads, processes and coroutines.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="run the same tasks on every backend and print the results"
    )
    demo.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply the size of every workload (default 1.0)",
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(scale=args.scale, out=sys.stdout)
    return 2  # pragma: no cover  # argparse rejects unknown commands
