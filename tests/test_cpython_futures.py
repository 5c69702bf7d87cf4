"""CPython's own ``test_concurrent_futures``, run on unirun's executors.

Where the interpreter ships its ``test`` package (a package from 3.12; some
installs leave it out), tests/cpython_futures_tests.py runs the suite with
``ThreadPoolExecutor`` and ``ProcessPoolExecutor`` swapped for unirun's: the
futures and thread pools in one child, the forkserver pools in another, side
by side (the suite mostly sleeps). Nothing may fail but the differences that
file lists, each on purpose, and each must still show.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).with_name("cpython_futures_tests.py")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("test.test_concurrent_futures") is None,
    reason="this interpreter does not ship CPython's test_concurrent_futures",
)


@pytest.mark.slow
def test_cpython_suite_finds_only_the_listed_differences(tmp_path: Path) -> None:
    command = [sys.executable, str(RUNNER), "--part"]
    children = {
        part: subprocess.Popen(
            [*command, part, "--json", str(tmp_path / part)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for part in ("threads", "forkserver")
    }
    try:
        outputs = {
            part: child.communicate(timeout=600)[0].decode(errors="replace")
            for part, child in children.items()
        }
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    for part, child in children.items():
        report = outputs[part][-6000:]
        assert (tmp_path / part).exists(), report
        found = json.loads((tmp_path / part).read_text())
        assert found["unexpected"] == [], report
        assert found["expected_but_passed"] == [], report
        assert found["ran"] > 50, report  # the suite was found and ran
        assert child.returncode == 0, report
