"""Run unirun's benchmark suite: ``python benchmarks/run.py [--quick] [--help]``.

Also runs as ``python -m benchmarks.run`` from the repository root.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _main() -> int:
    # Run as a script, sys.path[0] is benchmarks/ itself: put the repository
    # root there instead, so `benchmarks` imports as a package (and its module
    # names never shadow the stdlib's) in this process and in every worker.
    root = str(Path(__file__).resolve().parent.parent)
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path[0] = root
    elif root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.cli import main

    return main()


if __name__ == "__main__":
    raise SystemExit(_main())
