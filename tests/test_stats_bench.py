"""``benchmarks/stats_bench.py`` runs and reports every variant (#15)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_stats_benchmark_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stats_bench.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    for backend in ("thread", "process"):
        assert sum(row.startswith(f"| {backend} |") for row in rows) == 7
    base = [row for row in rows if "statistics() never called" in row]
    assert len(base) == 2
    assert all(row.endswith("| 1.00 |") for row in base)  # each ratio's baseline
