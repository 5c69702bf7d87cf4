"""Every script in examples/ runs to completion and prints what it promises.

Each example runs as a user runs it: ``python examples/<name>.py [kind]`` in a
subprocess. Scripts written once against ``unirun.Executor`` run on each kind
named in :data:`PER_KIND`; an example whose optional dependency (the
``examples`` extra) is missing is skipped, saying which.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

import unirun

EXAMPLES = Path(__file__).parent.parent / "examples"
ALL_KINDS = ("thread", "process", "coroutine", "auto")
CLASSES: dict[str, type[object]] = {
    "thread": unirun.ThreadExecutor,
    "process": unirun.ProcessExecutor,
    "coroutine": unirun.CoroutineExecutor,
    "auto": unirun.AutoExecutor,
}


@dataclass(frozen=True)
class Example:
    """How to check one script: a line it prints, what it needs, where it runs."""

    expect: str
    kinds: tuple[str, ...] = ALL_KINDS
    needs: tuple[str, ...] = ()
    primitive: str | None = None  # an executor method it needs, e.g. "Dict"


#: Scripts that take the kind on the command line.
PER_KIND = {
    "hello_tasks.py": Example("work(5) = 30"),
    "pool_map.py": Example("[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]"),
    "task_queue.py": Example("consumer got [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"),
    "periodic_task.py": Example("stopped after"),
    "shared_dict.py": Example("{0: 0, 1: 1, 2: 4, 3: 9, 4: 16}", primitive="Dict"),
    "coroutines.py": Example("tasks created first, then gathered: [0, 2, 4, 6, 8]"),
    "blocking_in_async.py": Example("slept 0.3 s"),
    "cpu_in_async.py": Example("submit:          5208302083375000"),
    "data_processing.py": Example("same as a serial loop: True"),
    "async_files.py": Example("anyio.Path: 1275 lines"),
    "training.py": Example(
        "best learning rate: 0.2", kinds=("process",), needs=("numpy",)
    ),
}
#: Scripts that run as they are, each checked by its own test below.
SINGLE = {
    "http_client.py": Example("auto ran fetch_all on: coroutine", needs=("aiohttp",)),
    "web_service.py": Example(
        "worker processes left after shutdown: 0",
        needs=("fastapi", "uvicorn", "httpx"),
    ),
    "dask_scale_out.py": Example(
        "time-out: the task was cancelled on its worker", needs=("distributed",)
    ),
}
#: Scripts other parts of the suite own, checked below too.
OWN_TESTS = {
    "every_backend.py",
    "producer_consumer.py",
    "lock_counter.py",
    "semaphore_throttling.py",
}


def run_example(name: str, *args: str) -> str:
    """Run ``examples/<name> args`` to completion; return what it printed."""
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr, completed.stderr
    return completed.stdout


def skip_if_missing(example: Example, kind: str | None = None) -> None:
    """Skip, with the reason, when the example cannot run here."""
    missing = [name for name in example.needs if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: pip install 'unirun[examples]'")
    primitive = example.primitive
    if (
        kind is not None
        and primitive is not None
        and not hasattr(CLASSES[kind], primitive)
    ):
        pytest.skip(f"{CLASSES[kind].__name__} has no {primitive}() yet")


def test_every_example_is_checked() -> None:
    names = {path.name for path in EXAMPLES.glob("*.py")}
    assert names == set(PER_KIND) | set(SINGLE) | OWN_TESTS


@pytest.mark.parametrize(
    ("name", "kind"),
    [(name, kind) for name, example in PER_KIND.items() for kind in example.kinds],
)
def test_example_runs_on_kind(name: str, kind: str) -> None:
    example = PER_KIND[name]
    skip_if_missing(example, kind)
    out = run_example(name, kind)
    assert example.expect in out, out


def test_web_service_leaves_no_worker_behind() -> None:
    skip_if_missing(SINGLE["web_service.py"])
    out = run_example("web_service.py")
    assert SINGLE["web_service.py"].expect in out, out
    match = re.search(r"^worker pids: ([\d ]+)$", out, re.MULTILINE)
    assert match, out
    pids = [int(pid) for pid in match.group(1).split()]
    assert pids, "the CPU endpoint reported no worker"
    for pid in pids:
        # A pid can be reused by an unrelated process: only a python child of
        # the example's own would be a leaked worker.
        if psutil.pid_exists(pid):
            process = psutil.Process(pid)
            assert process.status() == psutil.STATUS_ZOMBIE or (
                "python" not in process.name()
            ), f"worker {pid} outlived the server"


def test_http_client_prints_each_way() -> None:
    skip_if_missing(SINGLE["http_client.py"])
    out = run_example("http_client.py")
    assert SINGLE["http_client.py"].expect in out, out
    for label in (
        "aiohttp, CoroutineExecutor",
        "urllib, ThreadExecutor(40)",
        "urllib, AutoExecutor",
        "aiohttp, AutoExecutor",
    ):
        assert re.search(rf"^{re.escape(label)} +40 pages in \d+\.\d\d s$", out, re.M)
    assert "auto ran fetch_blocking on: thread" in out


def test_every_backend_example_covers_each_kind() -> None:
    out = run_example("every_backend.py")
    for kind in ("thread", "process", "coroutine"):
        line = next(line for line in out.splitlines() if line.strip().startswith(kind))
        assert "primes=[1229, 2262, 3245]" in line
        assert "timed out as asked" in line


def test_cli_demo_runs() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "unirun", "demo", "--scale", "0.1", "--stats"],
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
    # --stats: one row per kind, after the workloads, with what each ran.
    table = completed.stdout.split("statistics() of each executor")[1]
    for kind in ("thread", "process", "coroutine", "auto"):
        row = next(line for line in table.splitlines() if line.startswith(kind))
        submitted, done = (int(field) for field in row.split()[1:3])
        assert submitted > 0
        assert done == submitted


@pytest.mark.parametrize(
    "name", ["producer_consumer.py", "lock_counter.py", "semaphore_throttling.py"]
)
def test_primitive_examples_are_right_on_every_backend(name: str) -> None:
    out = run_example(name)
    lines = {line.split(":")[0].strip(): line for line in out.splitlines()}
    for kind in ("thread", "process", "coroutine", "auto"):
        assert lines[kind].endswith("(ok)"), out


def test_dask_example_runs_on_an_embedded_cluster() -> None:
    example = SINGLE["dask_scale_out.py"]
    skip_if_missing(example)
    out = run_example("dask_scale_out.py")
    assert "submit: 9" in out, out
    assert "map: 2666466670000" in out, out
    assert example.expect in out, out
