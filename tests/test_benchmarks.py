"""The benchmark suite runs end to end and every cell verifies its results.

No time is asserted here: benchmarks/ holds every wall-clock measurement. The
suite runs once, in a subprocess, in its quick mode on a tiny size; each cell
must have returned the expected values (or, for an optional peer that is not
installed, be skipped with a note). Only the stdlib and unirun are needed.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "benchmarks" / "run.py"
# Optional peers, as the suite names them; each is skipped here when missing.
OPTIONAL_PEERS = ("joblib", "loky", "mpire", "pebble")
# Always importable (the stdlib, unirun and its dependency anyio): never skipped.
CORE_CONTENDERS = (
    "unirun-thread",
    "unirun-process",
    "unirun-coroutine",
    "unirun-coroutine-inloop",
    "stdlib-thread",
    "stdlib-process",
    "asyncio",
    "anyio-thread",
    "anyio-taskgroup",
    "serial",
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run ``benchmarks/run.py --quick`` on a tiny size; return its JSON record."""
    out = tmp_path_factory.mktemp("benchmarks")
    command = [sys.executable, str(RUN), "--quick", "--size", "0.01", "--repeat", "1"]
    command += ["--no-plots", "--out", str(out)]
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=110, check=False
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    data: dict[str, Any] = json.loads((out / "benchmarks.json").read_text())
    data["page"] = (out / "benchmarks.md").read_text()
    data["stdout"] = completed.stdout
    return data


def _cells(suite: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for w in suite["workloads"] for cell in w["cells"]]


def test_benchmarks_every_cell_verified_or_skipped(suite: dict[str, Any]) -> None:
    contenders = suite["meta"]["contenders"]
    for cell in _cells(suite):
        where = f"{cell['workload']} / {cell['label']}"
        if cell["status"] == "skipped":
            requires = contenders[cell["contender"]]["requires"]
            assert requires, f"{where}: only optional peers may be skipped"
            assert cell["note"].endswith("is not installed"), where
            continue
        assert cell["status"] == "ok", f"{where}: {cell['note']}"
        assert cell["verified"] is True, where
        assert len(cell["times"]) == 1, where


@pytest.mark.parametrize("contender", CORE_CONTENDERS)
def test_benchmarks_core_contender_verified(
    suite: dict[str, Any], contender: str
) -> None:
    cells = [c for c in _cells(suite) if c["contender"] == contender]
    assert cells, f"{contender} runs no workload"
    assert all(c["status"] == "ok" and c["verified"] for c in cells), cells


@pytest.mark.parametrize("peer", OPTIONAL_PEERS)
def test_benchmarks_optional_peer_verified(suite: dict[str, Any], peer: str) -> None:
    if peer in suite["meta"]["missing"]:
        pytest.skip(f"{peer} is not installed")
    contenders = suite["meta"]["contenders"]
    cells = [c for c in _cells(suite) if peer in contenders[c["contender"]]["requires"]]
    assert cells, f"no cell uses {peer}"
    assert all(c["status"] == "ok" and c["verified"] for c in cells), cells


def test_benchmarks_every_workload_ran(suite: dict[str, Any]) -> None:
    names = [w["name"] for w in suite["workloads"]]
    numpy = ["gil-free-numpy"] if importlib.util.find_spec("numpy") else []
    assert names == [
        "overhead",
        "map",
        "cpu-python",
        "cpu-gil-free",
        "gil-free-hashlib",
        "gil-free-zlib",
        *numpy,
        "blocking-sleep",
        "blocking-http",
        "async-io",
        "mixed",
    ]
    for name in names:
        assert f"(`{name}`)" in suite["page"]
    assert suite["page"] in suite["stdout"]


def test_benchmarks_leave_no_thread_or_process(suite: dict[str, Any]) -> None:
    assert suite["meta"]["leftovers"] == {"threads": [], "processes": []}
