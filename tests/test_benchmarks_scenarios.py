"""benchmarks/scenarios.py runs end to end, and the guide's numbers are its record.

No time is asserted: the scenarios run once, tiny, and every cell must have
returned the right results; the page docs/choose-a-model.md includes must be
exactly what the committed record renders to.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "scenarios.py"
RECORDS = ROOT / "docs" / "_generated"


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_every_scenario_cell_verifies_its_results(tmp_path: Path) -> None:
    completed = run_script(
        "--quick",
        "--scale",
        "0.02",
        "--repeat",
        "1",
        "--no-plots",
        "--out",
        str(tmp_path),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-3000:]
    record: dict[str, Any] = json.loads((tmp_path / "scenarios.json").read_text())
    keys = {scenario["key"] for scenario in record["scenarios"]}
    assert {"http", "web", "data", "files", "scaling"} <= keys
    for scenario in record["scenarios"]:
        kinds = {cell["kind"] for cell in scenario["cells"]}
        assert "process" in kinds, scenario["key"]
        for cell in scenario["cells"]:
            assert cell["status"] == "ok", (scenario["key"], cell)
            assert len(cell["times"]) == 1
    assert {row["label"] for row in record["startup"]} >= {"thread", "process"}
    assert "<!-- summary -->" in (tmp_path / "scenarios.md").read_text()


@pytest.mark.parametrize("record", ["scenarios.json", "one-blas-thread/scenarios.json"])
def test_committed_page_is_what_its_record_renders(record: str, tmp_path: Path) -> None:
    shutil.copy(RECORDS / record, tmp_path / "scenarios.json")
    completed = run_script("--render", str(tmp_path / "scenarios.json"), "--no-plots")
    assert completed.returncode == 0, completed.stderr
    committed = (RECORDS / record).with_suffix(".md").read_text()
    assert (tmp_path / "scenarios.md").read_text() == committed
