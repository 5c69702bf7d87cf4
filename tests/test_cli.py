"""``python -m unirun profile``: verdicts for good targets, one-line errors for bad."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path


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
        (("sys:exit", "3"), "raised SystemExit: 3"),
        (("len", "hello"), "must be module:function"),
        (("builtins:len", "hello"), "a string needs quotes of its own: \"'hello'\""),
    ],
)
def test_profile_bad_target_one_line_error(args: tuple[str, ...], message: str) -> None:
    completed = run(*args)
    assert completed.returncode != 0
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert message in lines[0]


def test_one_ctrl_c_ends_the_profile_of_a_call_that_never_returns(
    tmp_path: Path,
) -> None:
    # The close of the executor, then the interpreter's exit, each waited for
    # the call's thread: it took three Ctrl-Cs, and printed three tracebacks.
    started = tmp_path / "started"
    (tmp_path / "forever_mod.py").write_text(
        "import pathlib, time\n"
        "def forever():\n"
        f"    pathlib.Path({str(started)!r}).touch()\n"
        "    while True:\n"
        "        time.sleep(0.01)\n"
    )
    program = subprocess.Popen(
        [sys.executable, "-m", "unirun", "profile", "forever_mod:forever"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():  # the call runs, in its worker thread
            assert program.poll() is None, program.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        program.send_signal(signal.SIGINT)
        _, err = program.communicate(timeout=60)
    finally:
        program.kill()
    assert program.returncode == -signal.SIGINT
    assert "Traceback" not in err
