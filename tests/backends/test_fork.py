"""Executors in a forked child (``os.fork()``, the ``fork`` start method, a
server's pre-forked workers): each starts afresh, and the parent's workers
still see the parent die (see src/unirun/_forked.py).

Every test runs a real program that forks; its children report on stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import psutil
import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork here")

#: What every program starts with: forking a process with threads is what the
#: tests do on purpose (3.12+ warns of it).
PRELUDE = """
import faulthandler, json, os, sys, time, warnings
import unirun
warnings.simplefilter("ignore", DeprecationWarning)

def add_one(x):
    return x + 1

async def add_one_async(x):
    return x + 1

def held(path):
    # Runs until the file at path exists: a task under way as the fork comes.
    while not os.path.exists(path):
        time.sleep(0.01)
    return "held ran"

def child_ends(code):
    # A hung child prints where it hangs, and the parent still reports.
    faulthandler.dump_traceback_later(60, exit=True)

def report(seen):
    # One line in one write: children writing at once (or with unbuffered
    # output, PYTHONUNBUFFERED) never interleave their lines on the pipe.
    os.write(1, (json.dumps(seen) + "\\n").encode())
"""


def run(tmp_path: Path, body: str, *args: str) -> list[dict[str, object]]:
    """Run ``PRELUDE + body``; the JSON lines it printed, in order."""
    script = tmp_path / "program.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


#: The kinds whose workers live in this process or its children.
LOCAL_KINDS = ["thread", "process", "coroutine", "auto"]


def run_on(tmp_path: Path, kind: str, body: str) -> list[dict[str, object]]:
    """:func:`run` ``body`` with ``ex``, an executor of ``kind``, and
    ``release``, the path whose file ends ``held()``."""
    head = "ex = unirun.executor(sys.argv[1])\nrelease = sys.argv[2]\n"
    return run(tmp_path, head + textwrap.dedent(body), kind, str(tmp_path / "release"))


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_an_executor_used_before_a_fork_runs_the_childs_calls(
    tmp_path: Path, kind: str
) -> None:
    # Before, the child's calls waited forever for workers that only the
    # parent has (auto's shutdown() too), as with the stdlib's pools.
    lines = run_on(
        tmp_path,
        kind,
        """
        before = ex.submit(add_one, 1).result(timeout=60)
        running = ex.submit(held, release)  # still running in the parent at the fork
        ex.submit(add_one, 1).result(timeout=60)  # and a worker idle there
        closed = unirun.executor(sys.argv[1])
        closed.submit(add_one, 1).result(timeout=60)
        closed.shutdown()
        pid = os.fork()
        if pid == 0:
            child_ends(0)
            seen = {
                "submit": ex.submit(add_one, 10).result(timeout=60),
                "map": list(ex.map(add_one, range(3), timeout=60)),
                "async": ex.submit(add_one_async, 20).result(timeout=60),
                "parent's task done here": running.done(),
            }
            counted = ex.statistics()
            # The child's calls only: 3 to 5 (a map batch counts once), none
            # running (the parent's held call still runs there).
            seen["counted"] = [3 <= counted.submitted <= 5, counted.running]
            try:
                closed.submit(add_one, 1)
            except RuntimeError:
                seen["shut down in the parent"] = "refuses"
            ex.shutdown()
            closed.shutdown()
            report(seen)
            os._exit(0)
        status = os.waitpid(pid, 0)[1]
        open(release, "w").close()
        print(json.dumps({
            "before": before,
            "child's exit status": status,
            "parent's task": running.result(timeout=60),
            "after": ex.submit(add_one, 2).result(timeout=60),
        }), flush=True)
        ex.shutdown()
        """,
    )
    assert lines == [
        {
            "submit": 11,
            "map": [1, 2, 3],
            "async": 21,
            "parent's task done here": False,
            "counted": [True, 0],
            "shut down in the parent": "refuses",
        },
        {
            "before": 2,
            "child's exit status": 0,
            "parent's task": "held ran",
            "after": 3,
        },
    ]


def test_an_unused_process_executor_serves_two_forked_children_at_once(
    tmp_path: Path,
) -> None:
    # A server that makes its pool at import and forks its workers: before, the
    # children shared the pool's selector and wake-up pipe, and hung.
    lines = run(
        tmp_path,
        """
        ex = unirun.ProcessExecutor(2)
        children = []
        for n in range(2):
            pid = os.fork()
            if pid == 0:
                child_ends(0)
                results = [ex.submit(add_one, n * 10 + i).result(timeout=60)
                           for i in range(20)]
                ex.shutdown()
                report({"child": n, "results": results})
                os._exit(0)
            children.append(pid)
        statuses = [os.waitpid(pid, 0)[1] for pid in children]
        print(json.dumps({"statuses": statuses,
                          "parent": ex.submit(add_one, 0).result(timeout=60)}))
        ex.shutdown()
        """,
    )
    by_child = {line["child"]: line["results"] for line in lines[:-1]}
    assert by_child == {n: [n * 10 + i + 1 for i in range(20)] for n in range(2)}
    assert lines[-1] == {"statuses": [0, 0], "parent": 1}


def test_a_task_that_forks_can_use_its_own_pool_in_the_child(tmp_path: Path) -> None:
    # The child's only thread is the worker that forked: it stays a worker of
    # the child's pool, and a new one runs the child's call.
    lines = run(
        tmp_path,
        """
        def forks(ex):
            pid = os.fork()
            if pid == 0:
                child_ends(0)
                os._exit(ex.submit(add_one, 41).result(timeout=60))
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

        with unirun.ThreadExecutor(2) as ex:
            print(json.dumps({"child's exit code": ex.submit(forks, ex).result(60)}))
        """,
    )
    assert lines == [{"child's exit code": 42}]


@pytest.mark.parametrize("kind", LOCAL_KINDS)
def test_a_child_exits_while_its_parent_closes_an_executor(
    tmp_path: Path, kind: str
) -> None:
    # Before, auto's child waited at exit for its parent's close (for good).
    lines = run_on(
        tmp_path,
        kind,
        """
        ex.submit(add_one, 1).result(timeout=60)
        running = ex.submit(held, release)
        ex.shutdown(wait=False)  # closing in the background as the fork comes
        pid = os.fork()
        if pid == 0:
            child_ends(0)
            sys.exit(0)  # the interpreter's exit, with its hooks
        status = os.waitpid(pid, 0)[1]
        open(release, "w").close()
        print(json.dumps({"child": status, "parent": running.result(timeout=60)}))
        """,
    )
    assert lines == [{"child": 0, "parent": "held ran"}]


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("start", ["fork", "os.fork", "fork workers"])
def test_workers_exit_when_the_parent_is_killed_while_a_forked_child_lives(
    tmp_path: Path, start: str
) -> None:
    # Before, the child's copy of the workers' lifeline kept them (and the fork
    # server) alive for as long as the child lived; a worker started by the
    # fork start method held one itself, and outlived its parent for good.
    script = tmp_path / "program.py"
    script.write_text(
        PRELUDE
        + textwrap.dedent(
            """
            import multiprocessing

            def sleeper():
                time.sleep(120)

            if __name__ == "__main__":
                start = sys.argv[1]
                if start == "fork workers":
                    context = multiprocessing.get_context("fork")
                    ex = unirun.ProcessExecutor(1, mp_context=context)
                else:
                    ex = unirun.ProcessExecutor(1)
                worker = ex.submit(os.getpid).result(timeout=60)
                if start == "fork":
                    child = multiprocessing.get_context("fork").Process(target=sleeper)
                    child.start()
                    child_pid = child.pid
                elif start == "os.fork":
                    child_pid = os.fork()
                    if child_pid == 0:
                        sleeper()
                        os._exit(0)
                else:
                    child_pid = None
                print(json.dumps({"worker": worker, "child": child_pid}), flush=True)
                time.sleep(120)
            """
        )
    )
    child = None
    with subprocess.Popen(
        [sys.executable, str(script), start], stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None
            pids = json.loads(parent.stdout.readline())
            child, worker = pids["child"], pids["worker"]
            # The process that forked the worker: unirun's fork server, or the
            # parent itself (fork workers).
            starter = psutil.Process(worker).ppid()
            parent.send_signal(signal.SIGKILL)
            parent.wait(timeout=60)
            deadline = time.monotonic() + 30  # a worker looks once a second
            while time.monotonic() < deadline and (_alive(worker) or _alive(starter)):
                time.sleep(0.05)
            assert not _alive(worker), "the worker outlived its parent"
            assert not _alive(starter), "the fork server outlived its parent"
            if child is not None:
                assert _alive(child)  # the child was what kept them, before
        finally:
            parent.kill()
            if child is not None:
                try:
                    psutil.Process(child).kill()
                except psutil.NoSuchProcess:
                    pass


@pytest.mark.parametrize("kind", ["process", "dask"])
def test_a_child_that_exits_normally_leaves_its_parents_workers_alone(
    tmp_path: Path, kind: str
) -> None:
    # Before, such a child's exit (atexit handlers run) counted the parent's
    # workers as its own children: it terminated the daemonic ones (Dask's)
    # and failed joining the others, skipping its own exit handlers; and it
    # closed the parent's Dask client and cluster, waiting on them for ever.
    if kind == "dask":
        pytest.importorskip("distributed")
    script = tmp_path / "program.py"
    script.write_text(
        PRELUDE
        + textwrap.dedent(
            """
            def main():  # Dask spawns its workers: they import this module
                if sys.argv[1] == "dask":
                    ex = unirun.DaskExecutor(1)
                else:
                    ex = unirun.ProcessExecutor(1)
                worker = ex.submit(os.getpid).result(timeout=60)
                pid = os.fork()
                if pid == 0:
                    child_ends(0)
                    try:
                        seen = ex.submit(add_one, 1).result(timeout=10)
                    except unirun.BrokenExecutor as exc:
                        seen = str(exc)
                    try:
                        event = ex.Event()
                        event.set()
                        made = event.is_set()
                    except unirun.BrokenExecutor as exc:
                        made = str(exc)
                    report({"child": seen, "event": made})
                    sys.exit(0)  # a normal exit: the exit handlers run
                status = os.waitpid(pid, 0)[1]
                print(json.dumps({
                    "child's exit status": status,
                    "same worker": ex.submit(os.getpid).result(timeout=60) == worker,
                }), flush=True)
                ex.shutdown()

            if __name__ == "__main__":
                main()
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script), kind],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    child, parent = (json.loads(line) for line in done.stdout.splitlines())
    if kind == "dask":  # the child cannot reach the parent's cluster
        assert "made before the process forked" in child["child"]
        assert "made before the process forked" in child["event"]
    else:  # the child's own pool
        assert child == {"child": 2, "event": True}
    assert parent == {"child's exit status": 0, "same worker": True}
    assert "can only join a child process" not in done.stderr
