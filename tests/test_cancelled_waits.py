"""``wait()`` and ``as_completed()`` hear of a queued task's cancellation at once.

CPython's pools tell them only when a worker takes the cancelled task, so after
``shutdown(cancel_futures=True)`` a ``wait()`` with no time-out never returns
(gh-87893). Every unirun backend tells them as the task is cancelled.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from _tasks import signal_then_wait, square
from gates import Gate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

WAITS: dict[str, Callable[[list[cf.Future[Any]]], set[cf.Future[Any]]]] = {
    "cf.wait": lambda fs: cf.wait(fs, timeout=10)[0],
    "unirun.wait": lambda fs: unirun.wait(fs, timeout=10).done,
    "cf.as_completed": lambda fs: set(cf.as_completed(fs, timeout=10)),
    "unirun.as_completed": lambda fs: set(unirun.as_completed(fs, timeout=10)),
}


@pytest.fixture(params=["thread", "process", "auto"])
def held(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[unirun.Executor, cf.Future[Any]]]:
    """A one-worker executor whose worker is busy, and a task queued behind it."""
    make = {
        "thread": unirun.ThreadExecutor,
        "process": unirun.ProcessExecutor,
        "auto": unirun.AutoExecutor,  # its calls wait in line at its gate
    }
    gate = Gate(tmp_path)
    with make[request.param](max_workers=1) as ex:
        ex.submit(signal_then_wait, gate.started, gate.release, None)
        gate.wait_started()
        try:
            yield ex, ex.submit(square, 3)
        finally:
            gate.open()


@pytest.mark.parametrize("wait", list(WAITS))
def test_a_task_cancelled_in_line_is_done_for_a_wait_begun_after(
    held: tuple[Any, cf.Future[Any]], wait: str
) -> None:
    _, queued = held
    assert queued.cancel()
    assert WAITS[wait]([queued]) == {queued}


@pytest.mark.parametrize("wait", list(WAITS))
def test_a_wait_hears_of_a_shutdown_that_cancels_the_tasks_in_line(
    held: tuple[Any, cf.Future[Any]], wait: str
) -> None:
    ex, queued = held
    seen: list[set[cf.Future[Any]]] = []
    waiter = threading.Thread(target=lambda: seen.append(WAITS[wait]([queued])))
    waiter.start()
    while not queued._waiters:  # the wait is in line once its waiter is there
        waiter.join(0.001)
    ex.shutdown(wait=False, cancel_futures=True)
    waiter.join(60)
    assert seen == [{queued}]


def test_a_task_cancelled_in_line_still_reads_as_the_stdlib_s_to_a_pool(
    held: tuple[Any, cf.Future[Any]],
) -> None:
    # Code that drives futures as a pool does: a cancelled one is not run.
    _, queued = held
    assert queued.cancel()
    assert queued.cancelled()
    assert queued.set_running_or_notify_cancel() is False
    with pytest.raises(cf.CancelledError):
        queued.result(0)
