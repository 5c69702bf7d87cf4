"""Every script in examples/ runs to completion and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: Checked line by line by their own tests below.
CHECKED = {
    "every_backend.py",
    "producer_consumer.py",
    "lock_counter.py",
    "semaphore_throttling.py",
}
EXAMPLES = [
    path
    for path in sorted((Path(__file__).parent.parent / "examples").glob("*.py"))
    if path.name not in CHECKED
]


@pytest.mark.parametrize(
    "script", EXAMPLES or [None], ids=lambda p: getattr(p, "name", "none")
)
def test_example_runs(script: Path | None) -> None:
    if script is None:
        pytest.skip("no other example yet")
    completed = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip(), "the example printed nothing"
    assert "Traceback" not in completed.stderr


def test_every_backend_example_covers_each_kind() -> None:
    script = Path(__file__).parent.parent / "examples" / "every_backend.py"
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    for kind in ("thread", "process", "coroutine"):
        line = next(line for line in out.splitlines() if line.strip().startswith(kind))
        assert "primes=[1229, 2262, 3245]" in line
        assert "timed out as asked" in line


def test_cli_demo_runs() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "unirun", "demo", "--scale", "0.1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    for workload in (
        "pure-Python CPU",
        "blocking I/O",
        "async I/O",
        "tiny tasks",
        "mixed",
    ):
        assert workload in completed.stdout
    assert "*" in completed.stdout
    assert "auto chose" in completed.stdout
    assert "blocking I/O socket" in completed.stdout


@pytest.mark.parametrize(
    "name", ["producer_consumer.py", "lock_counter.py", "semaphore_throttling.py"]
)
def test_primitive_examples_are_right_on_every_backend(name: str) -> None:
    script = Path(__file__).parent.parent / "examples" / name
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    lines = {line.split(":")[0].strip(): line for line in out.splitlines()}
    for kind in ("thread", "process", "coroutine", "auto"):
        assert lines[kind].endswith("(ok)"), out
