"""``python -m unirun``: command-line entry points."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING

from ._auto.classify import BUSY_MIN

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._auto.classify import Verdict

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
    demo.add_argument(
        "--stats",
        action="store_true",
        help="also print each executor's statistics() at the end",
    )
    profile = commands.add_parser(
        "profile",
        help="call module:function once, measured, and print auto's verdict",
    )
    profile.add_argument("target", help="the callable, as module:function")
    profile.add_argument(
        "arguments", nargs="*", help="its arguments, as Python literals"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        return run_demo(scale=args.scale, out=sys.stdout, stats=args.stats)
    if args.command == "profile":
        return _profile(args.target, args.arguments)
    return 2  # pragma: no cover  # argparse rejects unknown commands


def gil_reading(verdict: Verdict) -> str:
    """What the GIL test said about a verdict's call, in a few words."""
    if verdict.releases_gil is not None:
        return "released" if verdict.releases_gil else "held"
    if verdict.backend == "coroutine" or verdict.busy < BUSY_MIN:
        return "not measured (not CPU-bound)"
    return "could not tell (no CPU was free for the test, or too short a call)"


def _fail(message: str) -> int:
    print(f"python -m unirun profile: error: {message}", file=sys.stderr)
    return 1


def _end_at_once(signum: int, frame: object) -> None:
    """End the program as Ctrl-C ends one that does not catch it (status -2)."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)


def _profile(target: str, raw_arguments: list[str]) -> int:
    """Resolve ``target``, call it with the literal arguments, print the verdict."""
    import ast
    import importlib

    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        return _fail(f"target must be module:function, got {target!r}")
    arguments = []
    for raw in raw_arguments:
        try:
            arguments.append(ast.literal_eval(raw))
        except (ValueError, SyntaxError):
            hint = f" (a string needs quotes of its own: \"'{raw}'\")"
            return _fail(
                f"argument {raw!r} is not a Python literal"
                + (hint if raw.isidentifier() else "")
            )
    sys.path.insert(0, os.getcwd())
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:
        return _fail(f"cannot import {module_name!r}: {type(exc).__name__}: {exc}")
    try:
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        return _fail(f"module {module_name!r} has no attribute {attribute!r}")
    if not callable(obj):
        return _fail(f"{target} is not callable: {type(obj).__name__}")
    from ._auto import profile

    # A call that never returns runs on in a thread nothing can stop, which
    # the executor's close and the interpreter's exit would each wait for:
    # one Ctrl-C ends the program, as a plain script's would.
    previous = signal.signal(signal.SIGINT, _end_at_once)
    try:
        verdict = profile(obj, *arguments)
    except (Exception, SystemExit) as exc:  # the call's own exit is its error
        first = str(exc).splitlines()[0] if str(exc) else ""
        return _fail(f"calling {target} raised {type(exc).__name__}: {first}")
    finally:
        signal.signal(signal.SIGINT, previous)
    print(f"{target}: {verdict.backend}")
    print(f"  why:          {verdict.reason}")
    print(f"  wall time:    {verdict.wall_s:.6f} s per call")
    print(f"  CPU time:     {verdict.cpu_s:.6f} s per call (the worker's thread)")
    print(f"  CPU ratio:    {verdict.cpu_ratio:.2f}")
    print(f"  busy share:   {verdict.busy:.2f} (corrected for GIL contention)")
    print(f"  GIL:          {gil_reading(verdict)}")
    transferable = {True: "yes", False: "no", None: "not checked"}
    print(f"  pickles:      {transferable[verdict.transferable]}")
    print(f"  samples:      {verdict.samples}")
    return 0
