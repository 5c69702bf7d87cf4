"""A Dask primitive's wait interrupted by a signal handler's exception (Ctrl-C)
takes nothing: as with ``threading`` and ``queue``, the lock can be taken again
once released, and the next item put is there for the next get.

The wait runs on the scheduler; a signal handler that raises while the caller
waits for it leaves it running there, and what it then takes is given back.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from conftest import HAS_DASK, dask_session

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [
    pytest.mark.skipif(not HAS_DASK, reason="needs unirun[dask]"),
    pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals"),
]


@pytest.fixture
def ex() -> Iterator[unirun.DaskExecutor]:
    executor = unirun.DaskExecutor(client=dask_session().client)
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _waits_in_take(frame: Any) -> bool:
    """Whether the main thread is blocked in a take from the scheduler that
    waits (not one that only looks: ``take_now``)."""
    if frame is None or frame.f_code.co_name != "wait":
        return False
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_name)
        frame = frame.f_back
    return "take" in names and "take_now" not in names


@contextmanager
def interrupt_the_wait() -> Iterator[None]:
    """Raise KeyboardInterrupt in this (the main) thread from a signal handler,
    as Ctrl-C does, once it waits on the scheduler inside the block."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    main = threading.get_ident()
    previous = signal.signal(signal.SIGUSR1, handler)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if _waits_in_take(sys._current_frames().get(main)):
                signal.pthread_kill(main, signal.SIGUSR1)
                return
            time.sleep(0.001)  # polls the main thread's state, not the clock

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        stop.set()
        watcher.join()
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize("kind", ["Lock", "Semaphore"])
def test_an_interrupted_acquire_takes_nothing(
    ex: unirun.DaskExecutor, kind: str
) -> None:
    lock = getattr(ex, kind)()
    assert lock.acquire()
    with interrupt_the_wait():
        lock.acquire()
    lock.release()
    assert lock.acquire(timeout=30)


def test_an_interrupted_get_loses_no_item(ex: unirun.DaskExecutor) -> None:
    q: unirun.Queue[str] = ex.Queue()
    with interrupt_the_wait():
        q.get()
    q.put("item")
    assert q.get(timeout=30) == "item"
