"""The five classic scenarios on every backend: ``python benchmarks/scenarios.py``.

What docs/choose-a-model.md quotes: an HTTP client, a web service's mixed
requests, data processing, numpy "training" and file I/O, each run on threads,
processes, coroutines and auto (and a serial loop as the baseline); how
processes scale past the core count; what each executor costs to start and
hold. Every run's results are checked against the expected values.

    python benchmarks/scenarios.py            # writes docs/_generated/scenarios.*
    python benchmarks/scenarios.py --quick    # smoke run to benchmarks/results/

Each cell: one untimed warm-up run on an open executor (auto makes its
verdicts there), then the median of ``--repeat`` timed runs. The numbers are
this machine's, on record; the tests never assert them.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _main() -> int:
    # Run as a script, sys.path[0] is benchmarks/ itself: put the repository
    # root there instead, so that `benchmarks` imports as a package and the
    # tasks travel to process workers by reference.
    root = str(Path(__file__).resolve().parent.parent)
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path[0] = root
    elif root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.scenario_suite import main

    return main()


if __name__ == "__main__":
    raise SystemExit(_main())
