"""The GIL canary when the probe's thread goes away under it."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from unirun._auto import canary
from unirun._auto.profiling import Probe

pytestmark = pytest.mark.skipif(
    not hasattr(time, "pthread_getcpuclockid") or not sys.platform.startswith("linux"),
    reason="the canary reads another thread's CPU clock (POSIX) and /proc (Linux)",
)


class _VanishingProbe(Probe):
    """A probe that never ends, whose thread exits at the first look."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()
        self._leave = threading.Event()
        self._thread = threading.Thread(target=self._body)
        self._thread.start()
        self.ready.wait()

    def _body(self) -> None:
        self.ident = threading.get_ident()
        self.begin()
        self.ready.set()
        self._leave.wait()

    def running(self) -> bool:
        if not self._leave.is_set():
            self._leave.set()
            self._thread.join()
            # join() returns once Python is done with the thread; the kernel's
            # thread (and its CPU clock) goes a moment later.
            deadline = time.monotonic() + 30
            while os.path.exists(f"/proc/self/task/{self.tid}"):
                assert time.monotonic() < deadline, "the thread never exited"
                time.sleep(0.001)
        return True


def test_a_probe_thread_that_exits_mid_window_gives_no_window() -> None:
    # A probe whose end stopped waiting for the monitor (a loaded machine) lets
    # its worker thread exit, at shutdown say, while the canary still watches:
    # the window is dropped, and the monitor thread does not die of it.
    probe = _VanishingProbe()
    own = canary._Stat(threading.get_native_id())
    try:
        window = canary._Canary(probe, own).run(time.perf_counter(), 0.0, 0.0)
    finally:
        own.close()
    assert window is None


def test_a_live_probe_gives_a_window() -> None:
    # The control: the same path with a thread that stays gives a window.
    done = threading.Event()
    probe = Probe()
    ready = threading.Event()

    def body() -> None:
        probe.ident = threading.get_ident()
        probe.begin()
        ready.set()
        done.wait()

    thread = threading.Thread(target=body)
    thread.start()
    ready.wait()
    own = canary._Stat(threading.get_native_id())
    try:
        window = canary._Canary(probe, own).run(time.perf_counter(), 0.0, 0.0)
    finally:
        own.close()
        done.set()
        thread.join()
    assert window is not None
    assert window.seconds >= canary.WINDOW_S
