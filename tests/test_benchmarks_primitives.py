"""The primitives benchmark runs end to end and every row measures something.

No time is asserted: benchmarks/primitives.py runs once, in a subprocess, in its
quick mode on a tiny size with one timed run per row; every row must come back
with a positive, finite time and ratio, every target must be checked, and no
thread or process may outlive the run.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "primitives.py"
GROUPS = [
    "lock-thread-acquire-release",
    "lock-process-acquire-release",
    "lock-thread-with",
    "lock-process-with",
    "queue-thread",
    "queue-process",
    "queue-async",
    "lock-async",
    "transfer-small",
    "transfer-large",
    "dict-thread",
    "dict-process",
    "dict-writers",
    "counter",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the script with ``--quick`` on a tiny size; return its JSON record."""
    out = tmp_path_factory.mktemp("primitives") / "primitives.json"
    command = [sys.executable, str(SCRIPT), "--quick", "--size", "0.01"]
    command += ["--repeat", "1", "--no-page", "--out", str(out)]
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    data: dict[str, Any] = json.loads(out.read_text())
    data["stdout"] = completed.stdout
    return data


def _positive(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_every_group_ran(record: dict[str, Any]) -> None:
    assert [g["key"] for g in record["groups"]] == GROUPS
    for group in record["groups"]:
        assert f"**{group['title']}**" in record["stdout"]


def test_every_row_measured_a_positive_finite_time(record: dict[str, Any]) -> None:
    for group in record["groups"]:
        assert len(group["rows"]) >= 2, group["key"]
        assert group["rows"][0]["family"] == "stdlib", group["key"]
        assert any(row["family"] == "unirun" for row in group["rows"]), group["key"]
        for row in group["rows"]:
            where = f"{group['key']} / {row['label']}"
            assert len(row["times"]) == 1, where
            values = [*row["times"], row["median_s"], row["min_s"], row["max_s"]]
            values.append(row["ratio"])
            assert all(_positive(v) for v in values), (where, values)


def test_every_target_checked(record: dict[str, Any]) -> None:
    assert len(record["targets"]) == 11
    for target in record["targets"]:
        assert isinstance(target["met"], bool), target
        assert target["measured"], target
    assert "## Targets" in record["stdout"]


def test_locked_increments_were_exact(record: dict[str, Any]) -> None:
    exact = [t for t in record["targets"] if "exact" in t["name"]]
    assert len(exact) == 1
    assert exact[0]["met"] is True


def test_nothing_left_running(record: dict[str, Any]) -> None:
    assert record["meta"]["leftovers"] == {"threads": [], "processes": []}
