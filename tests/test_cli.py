"""``python -m unirun profile``: verdicts for good targets, one-line errors for bad."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "unirun", "profile", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_profile_prints_verdict_and_measurements() -> None:
    completed = run("time:sleep", "0.05")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert out.startswith("time:sleep: thread")
    for label in ("why:", "wall time:", "CPU time:", "CPU ratio:", "GIL:", "samples:"):
        assert label in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no_such_module_xyz:f",), "cannot import 'no_such_module_xyz'"),
        (("os:no_such_function",), "has no attribute 'no_such_function'"),
        (("os:sep",), "is not callable"),
        (("time:sleep", "abc("), "is not a Python literal"),
        (("time.sleep",), "must be module:function"),
        (("math:sqrt", "-1"), "raised ValueError"),
    ],
)
def test_profile_bad_target_one_line_error(args: tuple[str, ...], message: str) -> None:
    completed = run(*args)
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert message in lines[0]
