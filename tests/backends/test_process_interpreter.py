"""A script's interpreter settings reach process workers, as with a fork.

A script that raises the recursion limit (or the int digits limit, or sets
warning filters) before its pool starts has its tasks run under them in a
forked stdlib worker; a worker of ours, a fresh interpreter, takes them on as
it starts. Each test runs a real script and compares with the stdlib's fork.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

SCRIPT = """
import concurrent.futures as cf, json, multiprocessing as mp, sys, warnings
import unirun

sys.setrecursionlimit(5000)
sys.set_int_max_str_digits(9999)
sys.setswitchinterval(0.002)
warnings.simplefilter("ignore", DeprecationWarning)  # a fork with threads (3.12+)
warnings.filterwarnings("ignore", message="quiet")
warnings.filterwarnings("error", message="loud")


class OwnWarning(UserWarning):
    pass


# A worker cannot import this category: this filter is left out, not the others.
warnings.filterwarnings("error", category=OwnWarning)


def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)


def attempt(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:
        return type(exc).__name__


def warned(message):
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn(message)
    return len(seen)


def facts():
    return [
        sys.getrecursionlimit(),
        sys.get_int_max_str_digits(),
        sys.getswitchinterval(),
        attempt(depth, 4000),
        attempt(lambda: len(str(10**9000))),
        attempt(warned, "quiet please"),
        attempt(warned, "loud please"),
        attempt(warned, "anything else"),
    ]


if __name__ == "__main__":
    seen = {}
    with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as ex:
        seen["fork"] = ex.submit(facts).result()
    with unirun.ProcessExecutor(1) as ex:
        seen["unirun"] = ex.submit(facts).result()
    print(json.dumps(seen))
"""


def test_tasks_run_under_the_scripts_limits_and_warning_filters(
    tmp_path: Path,
) -> None:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(SCRIPT))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout)
    assert seen["fork"] == [5000, 9999, 0.002, 4000, 9001, 0, "UserWarning", 1]
    assert seen["unirun"] == seen["fork"]
