"""A real cluster, started the ordinary way: ``dask scheduler`` and two ``dask worker``.

The executor joins it by address, runs work and primitives through it, and
leaves it running; the test then stops the cluster and checks that no process
of it is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

import _primitive_tasks as tasks
import unirun
from _tasks import getpid, square
from conftest import HAS_DASK

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.skipif(not HAS_DASK, reason="needs unirun[dask]")

TESTS = Path(__file__).parent.parent


def _dask(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = Path(sys.executable).with_name("dask")
    return subprocess.Popen(
        [str(command), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _scheduler_address(scheduler_file: Path, limit: float = 60.0) -> str:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            time.sleep(0.05)
    raise AssertionError("the scheduler never wrote its address")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A scheduler and two workers (one thread each) on 127.0.0.1."""
    env = dict(os.environ)
    # Workers import the test's task modules by name, as a user's workers would
    # import theirs.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(TESTS), env.get("PYTHONPATH")) if p
    )
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = _dask(
        "scheduler",
        "--host=127.0.0.1",
        "--port=0",
        "--dashboard-address=127.0.0.1:0",
        "--no-dashboard",
        f"--scheduler-file={scheduler_file}",
        env=env,
    )
    processes = [scheduler]
    try:
        address = _scheduler_address(scheduler_file)
        processes += [
            _dask(
                "worker",
                address,
                "--nthreads=1",
                f"--name={name}",
                "--host=127.0.0.1",
                "--no-dashboard",
                env=env,
            )
            for name in ("a", "b")
        ]
        yield address, processes
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_executor_joins_a_cli_cluster_and_leaves_no_process(
    cluster: tuple[str, list[subprocess.Popen[bytes]]],
) -> None:
    address, processes = cluster
    me = psutil.Process()
    with unirun.DaskExecutor(address=address) as ex:
        ex.client.wait_for_workers(2, timeout=60)
        assert ex._parallelism() == 2
        assert list(ex.map(square, range(30))) == [x * x for x in range(30)]
        pids = {ex.submit(getpid).result(60) for _ in range(6)}
        assert os.getpid() not in pids
        # A producer on one worker feeds a consumer on another, through the
        # scheduler, and the caller joins the queue.
        q = ex.Queue(maxsize=2)
        consumer = ex.submit(tasks.consume, q)
        assert ex.submit(tasks.produce, q, 20).result(60) == 20
        assert consumer.result(60)[0] == list(range(20))
        q.join()
    # The cluster is not the executor's: it is still up.
    assert all(p.poll() is None for p in processes)
    tree = {p.pid for p in processes}
    for process in processes:
        tree |= {c.pid for c in psutil.Process(process.pid).children(recursive=True)}
    assert pids <= tree
    members = [psutil.Process(pid) for pid in tree if psutil.pid_exists(pid)]
    for process in reversed(processes):
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(60)
    # Nothing of the cluster is left: no scheduler, nanny or worker process. A
    # worker process may outlive its `dask worker` parent by a moment.
    _, alive = psutil.wait_procs(members, timeout=60)
    assert not [p.pid for p in alive if _alive(p)]
    assert not {c.pid for c in me.children(recursive=True)} & tree


def _alive(process: psutil.Process) -> bool:
    try:
        return bool(process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


PROGRAM = """
import sys
import unirun

FACTOR = int(sys.argv[2])

def work(x):
    return x * FACTOR

with unirun.DaskExecutor(address=sys.argv[1]) as ex:
    ex.client.wait_for_workers(2, timeout=60)
    print(sorted(set(ex.map(work, [1] * 20))))
"""


def test_programs_sharing_a_cluster_each_read_their_own_main_globals(
    cluster: tuple[str, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    # The workers outlive each program, and serve them all: a global of one
    # program's __main__ must never be what another program's tasks read.
    address, _ = cluster
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    seen = [
        subprocess.run(
            [sys.executable, str(script), address, str(factor)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout.strip()
        for factor in (5, 7)
    ]
    assert seen == ["[5]", "[7]"]


LEFT_RUNNING = """
import sys
import unirun

def init():
    pass

ex = unirun.DaskExecutor(address=sys.argv[1], initializer=init)
print(ex.submit(abs, -1).result())
"""


def test_a_program_that_never_shuts_down_takes_its_initializer_away(
    cluster: tuple[str, list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    # Registered as a worker plugin, it would run in every worker that joins or
    # restarts after the program ended.
    import distributed

    address, _ = cluster
    script = tmp_path / "program.py"
    script.write_text(LEFT_RUNNING)
    done = subprocess.run(
        [sys.executable, str(script), address],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.strip() == "1"
    with distributed.Client(address, set_as_default=False) as client:
        plugins = client.run_on_scheduler(
            lambda dask_scheduler: list(dask_scheduler.worker_plugins)
        )
    assert not [name for name in plugins if name.startswith("unirun-initializer")]
