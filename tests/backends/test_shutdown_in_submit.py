"""``shutdown()`` called by a signal handler that runs inside the executor's own
``submit`` (a SIGTERM or Ctrl-C handler, while a big ``map`` submits its items):
the stdlib's pools deadlock on their lock; unirun's close once the call that
was being submitted is queued.

Each case is a real program, so that a deadlock fails the test by its time-out
instead of hanging the suite. The handler is made to run inside ``submit`` by
raising the signal from within the executor's ``_schedule`` (where the lock is
held), not left to chance. The last test takes the handler's place itself: a
call on the thread that holds the lock, as the handler's would be.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from typing import TYPE_CHECKING

import pytest

import unirun

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    not hasattr(os, "kill") or sys.platform == "win32", reason="POSIX signals"
)

#: What every program starts with: the task and the handler (``ex`` is the
#: executor that each program makes next).
HEAD = """
import json, signal, sys, threading
import unirun

def add_one(x):
    return x + 1

def on_signal(signum, frame):
    if sys.argv[2] == "returns":
        ex.shutdown(wait=True)
    else:  # as a service's SIGTERM handler does
        ex.shutdown(wait=False, cancel_futures=True)
        raise SystemExit(3)
"""

#: The executor of the kind named, whose lock ``_schedule`` runs under.
EXECUTOR = """
ex = unirun.executor(sys.argv[1])
ex.submit(add_one, 0).result(timeout=60)  # its workers are up
schedule = ex._schedule

def raising_first(*args):
    # The handler runs before schedule() starts: inside submit, lock held.
    signal.raise_signal(signal.SIGTERM)
    return schedule(*args)

ex._schedule = raising_first
"""

#: AutoExecutor's own fast path for a short call it ran inline before: the
#: call goes straight to its lane, under the lane's lock, not the executor's.
LANE = """
import unirun._auto.verdicts as verdicts
from unirun._auto.classify import Verdict

# Inline, whatever a cold first call measures (often, not always, under 25 µs).
verdicts.classify = lambda facts, costs: Verdict(
    "inline", "scripted", 1e-5, 1e-5, 1.0, 1.0, None, None, 1)
ex = unirun.AutoExecutor()
ex.submit(add_one, 0).result(timeout=60)  # probed
assert ex.explain(add_one).backend == "inline"
ex.submit(add_one, 0).result(timeout=60)  # routed: the lane knows it now
lane = ex._router.lane
assert lane.known and lane._counters is not None

class RaisingFirst:
    # The lane counts a call under its lock: the handler runs there.
    def __init__(self, counters):
        self.counters, self.raised = counters, False

    def submitted(self):
        if not self.raised:
            self.raised = True
            signal.raise_signal(signal.SIGTERM)
        self.counters.submitted()

    def __getattr__(self, name):
        return getattr(self.counters, name)

lane._counters = RaisingFirst(lane._counters)
"""

#: The call whose submit the handler runs in, the next one, and the report.
TAIL = """
signal.signal(signal.SIGTERM, on_signal)
future = ex.submit(add_one, 1)
try:
    ex.submit(add_one, 2)
    refused = False
except RuntimeError:
    refused = True
result = future.result(timeout=60)
# A helper thread that was told to end may take a moment to go (anyio's worker
# threads, on coroutine): one that stays 30 s was left running.
for thread in threading.enumerate():
    if thread is not threading.main_thread():
        thread.join(30)
print(json.dumps({
    "result": result,
    "then refused": refused,
    "threads left": [t.name for t in threading.enumerate()
                     if t is not threading.main_thread()],
}))
"""

KINDS = ["thread", "process", "coroutine", "auto", "auto's lane"]


def run(tmp_path: Path, kind: str, then: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "program.py"
    body = LANE if kind == "auto's lane" else EXECUTOR
    script.write_text(textwrap.dedent(HEAD + body + TAIL))
    return subprocess.run(
        [sys.executable, str(script), kind, then],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_handler_that_shuts_down_inside_submit_and_returns(
    tmp_path: Path, kind: str
) -> None:
    done = run(tmp_path, kind, "returns")
    assert done.returncode == 0, done.stdout + done.stderr
    # The call being submitted ran (it was accepted before the shutdown), the
    # next one was refused, and shutdown(wait=True) left no thread.
    assert json.loads(done.stdout) == {
        "result": 2,
        "then refused": True,
        "threads left": [],
    }


@pytest.mark.parametrize("kind", KINDS)
def test_a_handler_that_shuts_down_inside_submit_and_exits(
    tmp_path: Path, kind: str
) -> None:
    done = run(tmp_path, kind, "exits")
    # SystemExit(3) left submit, and the interpreter's exit did not hang.
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout == ""


def test_a_cancel_asked_inside_another_shutdown_is_carried_out() -> None:
    # A handler's shutdown(cancel_futures=True) that lands while this thread's
    # own shutdown() holds the lock only asks (as inside submit); the outer
    # shutdown then does what it asked. Before, the cancel was lost.
    ex = unirun.ThreadExecutor(1)
    release = threading.Event()
    running = ex.submit(release.wait, 60)
    queued = [ex.submit(abs, -i) for i in range(5)]
    with ex._shutdown_lock:  # where the outer shutdown() holds it
        ex.shutdown(wait=False, cancel_futures=True)  # the handler's
    ex.shutdown(wait=False)  # the outer one goes on
    assert [future.cancelled() for future in queued] == [True] * 5
    release.set()
    assert running.result(timeout=60) is True
    ex.shutdown(wait=True)
