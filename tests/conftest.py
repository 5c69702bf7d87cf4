"""Shared fixtures: the executor of every kind, and a guard against leaks."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import psutil
import pytest

from _progress_helpers import FakeBar

if TYPE_CHECKING:
    from collections.abc import Iterator

    from unirun._base import BaseExecutor

#: Whether the optional Dask backend can run here (extra ``unirun[dask]``).
HAS_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAS_DASK, reason="needs unirun[dask]")

#: Every backend the conformance suite runs on; a new backend adds itself here.
KINDS: tuple[Any, ...] = (
    "thread",
    "process",
    "coroutine",
    "auto",
    pytest.param("dask", marks=needs_dask),
    # auto with the session's Dask cluster attached (its tasks stay local or
    # go there as they pay): the same semantics either way.
    pytest.param("auto+dask", marks=needs_dask),
)

#: Conformance tests that cannot hold on a kind, and why (skipped, not weakened).
SKIPS: dict[str, dict[str, str]] = {
    "auto": {
        "test_submit_remote_traceback_is_cause": (
            "auto crosses processes only for tasks routed there; a failing tiny "
            "task runs in this process, with a local traceback"
        ),
    },
}
SKIPS["auto+dask"] = SKIPS["auto"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the conformance tests listed in :data:`SKIPS` for their kind."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None:
            continue
        kind = callspec.params.get("kind")
        reason = SKIPS.get(str(kind), {}).get(getattr(item, "originalname", ""))
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def make_executor(kind: str, **options: object) -> BaseExecutor:
    """Create a small executor of ``kind`` for a test."""
    from unirun._backends import load_backend

    if kind == "auto+dask":
        options.setdefault("cluster", dask_session().client)
        kind = "auto"
    cls = load_backend(kind)
    if kind == "dask":
        # Each test gets its own executor on the one cluster of the session.
        options.setdefault("client", dask_session().client)
        options.setdefault("max_workers", 4)
    elif cls.kind != "auto":  # auto sizes each inner pool itself
        options.setdefault("max_workers", 2 if cls.crosses_processes else 4)
    return cls(**options)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The name of each backend in turn."""
    return str(request.param)


@pytest.fixture
def executor(kind: str) -> Iterator[BaseExecutor]:
    """An executor of each kind in turn, shut down after the test."""
    ex = make_executor(kind)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run every async test on asyncio and on trio."""
    return str(request.param)


# -- the Dask cluster of the session ------------------------------------------------

#: Runs the session's cluster in a process of its own, until stdin closes.
_CLUSTER_SCRIPT = """
import sys
from distributed import LocalCluster

cluster = LocalCluster(
    n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
    dashboard_address=":0", scheduler_kwargs={"dashboard": False},
)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()
cluster.close()
"""

#: Threads that ``distributed`` keeps for the life of the process, like the
#: forkserver: one offload pool and one name-resolving pool.
DASK_PROCESS_THREADS = ("Dask-Offload", "TCP-Executor")


class DaskSession:
    """A small cluster (2 workers, 1 thread each) and a client, for all tests.

    The cluster runs in a child process (its workers below it), so that worker
    restarts and the cluster's own threads stay out of this process; the leak
    guard knows its processes and the client's threads.
    """

    def __init__(self) -> None:
        tests = str(Path(__file__).parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (tests, env.get("PYTHONPATH")) if p
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CLUSTER_SCRIPT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        address = self.process.stdout.readline().strip()
        if not address:
            self.process.wait(60)
            raise RuntimeError("the session's Dask cluster did not start")
        import distributed

        before = set(threading.enumerate())
        self.client = distributed.Client(address, set_as_default=False)  # type: ignore[no-untyped-call]  # unannotated upstream
        self.threads = set(threading.enumerate()) - before

    def pids(self) -> set[int]:
        """The cluster's processes: its own and every worker's."""
        try:
            root = psutil.Process(self.process.pid)
            return {root.pid} | {p.pid for p in root.children(recursive=True)}
        except psutil.NoSuchProcess:
            return set()

    def close(self) -> None:
        """Close the client, then let the cluster close itself."""
        self.client.close()  # type: ignore[no-untyped-call]  # unannotated upstream
        assert self.process.stdin is not None
        self.process.stdin.close()
        if self.process.stdout is not None:
            self.process.stdout.close()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_dask_session: DaskSession | None = None


def dask_session() -> DaskSession:
    """The session's cluster, started on first use."""
    global _dask_session
    if _dask_session is None:
        _dask_session = DaskSession()
    return _dask_session


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Close the session's cluster, if a test started it."""
    global _dask_session
    if _dask_session is not None:
        _dask_session.close()
        _dask_session = None


def _infrastructure_threads() -> set[threading.Thread]:
    """Threads that live as long as the process or the test session, by design."""
    session = set() if _dask_session is None else _dask_session.threads
    return session | {
        t for t in threading.enumerate() if t.name.startswith(DASK_PROCESS_THREADS)
    }


def _infrastructure_pids() -> set[int]:
    """Long-lived helpers of multiprocessing that are not workers, and the
    session's Dask cluster."""
    pids = set() if _dask_session is None else _dask_session.pids()
    from multiprocessing import forkserver, resource_tracker

    from unirun._backends import _launch

    for server in (getattr(forkserver, "_forkserver", None), _launch._server):
        pid = getattr(server, "_forkserver_pid", None)
        if pid:
            pids.add(pid)
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    pid = getattr(tracker, "_pid", None)
    if pid:
        pids.add(pid)
    return pids


def run_python_file(script: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (a path, or ``"-c"`` then code) in a fresh interpreter,
    with ``args``; fail the test if it fails."""
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread or a child process running.

    Threads and processes get a bounded time to finish exiting (a shut-down pool's
    last thread may still be returning); anything alive after that is a leak.
    """
    threads_before = set(threading.enumerate())
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    yield
    deadline = time.monotonic() + 10
    leaked_threads = []
    for thread in (
        set(threading.enumerate()) - threads_before - _infrastructure_threads()
    ):
        if thread.name.startswith("Trio thread"):
            continue  # trio's thread cache: kept idle by design, not ours
        thread.join(max(0.0, deadline - time.monotonic()))
        # Trio names a cached thread after the job it runs, and by its own
        # name again once idle: one that was busy at the check is idle now.
        if thread.is_alive() and not thread.name.startswith("Trio thread"):
            leaked_threads.append(thread.name)
    multiprocessing.active_children()  # reap finished children
    infrastructure = _infrastructure_pids()
    leaked_pids = []
    for child in me.children(recursive=True):
        if child.pid in children_before or child.pid in infrastructure:
            continue
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except psutil.TimeoutExpired:
            leaked_pids.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    assert not leaked_threads, f"threads left running: {leaked_threads}"
    assert not leaked_pids, f"child processes left running: {leaked_pids}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A primitive a backend does not offer yet skips the test, saying which.

    Such a primitive (listed in the backend's ``lacks``; every backend offers
    every primitive today) raises :class:`NotImplementedError` with "is not
    available on the ... backend yet": the test runs up to there and is
    skipped, not passed.
    """
    outcome = yield
    excinfo = outcome.excinfo  # type: ignore[attr-defined]  # pluggy's Result
    if excinfo is not None and issubclass(excinfo[0], NotImplementedError):
        message = str(excinfo[1])
        if "not available on the" in message and "backend yet" in message:
            outcome.force_exception(pytest.skip.Exception(message))  # type: ignore[attr-defined]  # pluggy's Result


@pytest.fixture
def bar_class() -> type[FakeBar]:
    """A :class:`FakeBar` subclass whose instances are listed in ``instances``."""

    class Bar(FakeBar):
        instances: ClassVar[list[FakeBar]] = []

    return Bar
