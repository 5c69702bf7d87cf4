"""Shared fixtures: the executor of every kind, and a guard against leaks."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import TYPE_CHECKING

import psutil
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from unirun._base import BaseExecutor

#: Every backend the conformance suite runs on; a new backend adds itself here.
KINDS = ("thread", "process", "coroutine", "auto")

#: Conformance tests that cannot hold on a kind, and why (skipped, not weakened).
SKIPS: dict[str, dict[str, str]] = {
    "auto": {
        "test_submit_remote_traceback_is_cause": (
            "auto crosses processes only for tasks routed there; a failing tiny "
            "task runs in this process, with a local traceback"
        ),
    },
}


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

    cls = load_backend(kind)
    if cls.kind != "auto":  # auto sizes each inner pool itself
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


def _infrastructure_pids() -> set[int]:
    """Long-lived helpers of multiprocessing (and unirun's fork server)."""
    pids = set()
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
    for thread in set(threading.enumerate()) - threads_before:
        if thread.name.startswith("Trio thread"):
            continue  # trio's thread cache: kept idle by design, not ours
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
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
