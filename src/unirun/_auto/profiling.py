"""Measurements of one probe call: wall time, the worker's own CPU, and the GIL.

A probe is a real call of the user's function on a worker thread. It records, from
its first to its last instruction, the wall time, its thread's CPU time, how long
its thread waited for a CPU on the OS run queue (Linux ``schedstat``), and the CPU
the rest of the process used meanwhile. A :class:`Monitor` thread watches probes
that last longer than a moment and spins a *canary* next to them: a pure-Python
loop that needs the GIL. If the probe and the canary both ran flat out, the probe
released the GIL; if they took turns, it holds it::

    probe thread:   begin() ------- fn(*args) -------- end()  -> ProbeSample
    monitor thread:       [wait START_DELAY][canary spin, sampling both] -> Window
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Monitor",
    "Probe",
    "ProbeSample",
    "Window",
    "free_threaded",
]

#: How long a probe runs before the monitor starts its canary (seconds).
START_DELAY = 0.0005
#: How long the monitor samples a probe's kernel state, and how often (seconds).
STATES_S = 0.01
STATE_EVERY = 0.001
#: The longest the monitor watches one probe, canary included (seconds).
CANARY_S = 0.05
#: The canary phase is inconclusive about the GIL when the probe and the canary
#: together waited this share of it for a CPU (other processes held ours).
SATURATED = 0.25
#: The canary compares the two CPU clocks over slices this long (seconds).
SLICE = 0.002
#: A canary window shorter than this says too little to be used (seconds).
MIN_WINDOW = 0.001


def _schedstat(tid: int) -> tuple[float, float] | None:
    """Return (seconds on a CPU, seconds waiting on the run queue) of a thread."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat", "rb") as file:
            fields = file.read().split()
        return int(fields[0]) / 1e9, int(fields[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True, slots=True)
class Window:
    """What the monitor saw while its canary spun next to a running probe.

    Attributes:
        seconds: the length of the window.
        probe_cpu: CPU time the probe's thread used in the window.
        probe_wait: time the probe's thread waited for a CPU (run queue), not the GIL.
        canary_cpu: CPU time of the canary.
        others_cpu: CPU of every other thread of the process (the canary included).
    """

    seconds: float
    probe_cpu: float
    probe_wait: float
    canary_cpu: float
    others_cpu: float
    best_overlap: float = 0.0
    saturated: bool = False
    running: int = 0
    io_waiting: int = 0

    @property
    def run_share(self) -> float | None:
        """Share of the state samples in which the probe ran or wanted to run.

        Each sample reads the probe thread's kernel state right after the canary
        let go of the GIL: runnable ("R") means computing or waiting for the GIL
        or a CPU; asleep anywhere but on a futex means waiting for I/O or a timer.
        Futex sleeps (a lock, or the GIL still held by another thread) say
        neither and are left out. ``None`` with fewer than 3 telling samples.
        """
        told = self.running + self.io_waiting
        return self.running / told if told >= 3 else None

    @property
    def overlap(self) -> float:
        """How many of the two threads ran at once, on average.

        Holding the GIL, the probe and the canary take turns, so their CPU times
        add up to at most the window: near 1 (less next to other busy threads).
        Releasing it, both run at once: up to 2 with two free CPUs.
        """
        whole = (self.probe_cpu + self.canary_cpu) / self.seconds
        return max(whole, self.best_overlap)


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """The measurements of one probe call.

    Attributes:
        wall_s: wall time of the call.
        cpu_s: CPU time of the probe's own thread (``time.thread_time``).
        wait_s: time its thread waited on the OS run queue (0 where unknown).
        others_cpu_s: CPU used by the rest of the process during the call.
        window: the canary's window, when the monitor had one.
        returned_awaitable: the call returned an awaitable.
    """

    wall_s: float
    cpu_s: float
    wait_s: float
    others_cpu_s: float
    window: Window | None
    returned_awaitable: bool = False


class Probe:
    """One probe call in progress; :meth:`begin` and :meth:`end` run in its thread."""

    def __init__(self) -> None:
        self.ident = 0
        self.tid = 0
        self.finished = False
        self.window: Window | None = None
        self._sampling = threading.Lock()  # held by the monitor while it samples
        self._start: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        self.sample: ProbeSample | None = None
        #: What the executor needs to act on this probe (set by its owner).
        self.context: Any = None

    def begin(self) -> None:
        """Start measuring (first thing in the worker thread)."""
        stat = _schedstat(threading.get_native_id())
        wait = stat[1] if stat is not None else 0.0
        self._start = (
            time.perf_counter(),
            time.thread_time(),
            time.process_time(),
            wait,
        )

    def end(self, returned_awaitable: bool = False) -> ProbeSample:
        """Stop measuring; wait for the monitor's window, if one is being taken."""
        now, cpu = time.perf_counter(), time.thread_time()
        process = time.process_time()
        stat = _schedstat(self.tid)
        self.finished = True
        start_wall, start_cpu, start_process, start_wait = self._start
        with self._sampling:  # the canary stops at once when it sees `finished`
            window = self.window
        own = max(0.0, cpu - start_cpu)
        self.sample = ProbeSample(
            wall_s=max(now - start_wall, 1e-9),
            cpu_s=own,
            wait_s=max(0.0, stat[1] - start_wait) if stat is not None else 0.0,
            others_cpu_s=max(0.0, process - start_process - own),
            window=window,
            returned_awaitable=returned_awaitable,
        )
        return self.sample

    def elapsed(self) -> float:
        """Seconds since :meth:`begin`."""
        return time.perf_counter() - self._start[0]


class Monitor:
    """A thread that spins a GIL canary next to each probe that lasts a while.

    ``on_window(probe, window)`` is called from the monitor thread when a window
    was measured while the probe was still running (an early verdict is possible).
    """

    def __init__(self, on_window: Callable[[Probe, Window], None]) -> None:
        self._on_window = on_window
        self._queue: queue.SimpleQueue[Probe | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def watch(self, probe: Probe) -> None:
        """Watch ``probe`` (called in its thread, right before ``probe.begin()``)."""
        probe.ident = threading.get_ident()
        probe.tid = threading.get_native_id()
        with self._lock:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"unirun-auto-monitor-{id(self):#x}"
                )
                self._thread.start()
        self._queue.put(probe)

    def close(self) -> None:
        """Stop the thread (it finishes the window it is taking) and join it."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            if thread is not threading.current_thread():
                thread.join()

    def _run(self) -> None:
        while (probe := self._queue.get()) is not None:
            time.sleep(START_DELAY)
            if probe.finished:
                continue
            window = self._measure(probe)
            if window is not None and not probe.finished:
                try:
                    self._on_window(probe, window)
                except Exception:  # never let a bug kill the monitor
                    import logging

                    logging.getLogger("unirun").exception("auto: window handler")

    @staticmethod
    def _measure(probe: Probe) -> Window | None:
        clock = _cpu_clock(probe.ident)
        if clock is None:
            return None
        with probe._sampling:
            if probe.finished:
                return None
            # Reading schedstat is file I/O, which lets other threads take the
            # GIL: do it outside the timed stretch, which reads only clocks.
            probe_wait0 = _run_delay(probe.tid)
            start = time.perf_counter()
            p0, c0, t0 = (
                time.clock_gettime(clock),
                time.thread_time(),
                time.process_time(),
            )
            limit = start + CANARY_S
            # Phase 1: sample the probe's kernel state while the monitor mostly
            # sleeps, so that the monitor itself does not keep the probe from
            # the GIL.
            states = _StateReader(probe.tid)
            running = waiting = 0
            until = start + STATES_S
            while not probe.finished and time.perf_counter() < until:
                time.sleep(STATE_EVERY)
                state = states.read()
                running += state == "run"
                waiting += state == "io"
            states.close()
            # Phase 2: the canary, pure Python, needs the GIL for every step. It
            # compares both CPU clocks every SLICE: the best slice is the overlap
            # (other processes may take our CPUs for part of the window; holding
            # the GIL, no slice can exceed 1).
            own_tid = threading.get_native_id()
            waited0 = _run_delay(probe.tid) + _run_delay(own_tid)
            last = (time.perf_counter(), time.clock_gettime(clock), time.thread_time())
            canary_start = last[0]
            best = 0.0
            while not probe.finished:
                now = time.perf_counter()
                if now - last[0] >= SLICE:
                    pc, cc = time.clock_gettime(clock), time.thread_time()
                    overlap = ((pc - last[1]) + (cc - last[2])) / (now - last[0])
                    best = max(best, overlap)
                    last = (now, pc, cc)
                    if now >= limit:
                        break
            p1, c1, t1 = (
                time.clock_gettime(clock),
                time.thread_time(),
                time.process_time(),
            )
            seconds = time.perf_counter() - start
            probe_wait1 = _run_delay(probe.tid)
            canary_s = time.perf_counter() - canary_start
            # Time the two threads waited for a CPU on the OS run queue: other
            # processes held our CPUs, so an overlap may have had no chance.
            waited = probe_wait1 + _run_delay(own_tid) - waited0
            if seconds < MIN_WINDOW:
                return None
            probe_cpu = max(0.0, p1 - p0)
            window = Window(
                seconds=seconds,
                probe_cpu=probe_cpu,
                probe_wait=max(0.0, probe_wait1 - probe_wait0),
                canary_cpu=max(0.0, c1 - c0),
                others_cpu=max(0.0, (t1 - t0) - probe_cpu),
                best_overlap=best,
                saturated=canary_s > 0 and waited >= SATURATED * canary_s,
                running=running,
                io_waiting=waiting,
            )
            probe.window = window
            return window


class _StateReader:
    """Reads a thread's kernel state: "run", "io", "lock" or "" (unknown)."""

    def __init__(self, tid: int) -> None:
        self._stat = self._wchan = -1
        try:
            self._stat = os.open(f"/proc/self/task/{tid}/stat", os.O_RDONLY)
            self._wchan = os.open(f"/proc/self/task/{tid}/wchan", os.O_RDONLY)
        except OSError:
            self.close()

    def read(self) -> str:
        if self._stat < 0:
            return ""
        try:
            stat = os.pread(self._stat, 512, 0)
            state = stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3]
            if state == b"R":
                return "run"
            wchan = os.pread(self._wchan, 128, 0)
        except (OSError, ValueError):
            return ""
        if not wchan or wchan == b"0":
            return ""  # the kernel hides wait channels here
        return "lock" if b"futex" in wchan else "io"

    def close(self) -> None:
        for fd in (self._stat, self._wchan):
            if fd >= 0:
                os.close(fd)
        self._stat = self._wchan = -1


def _cpu_clock(ident: int) -> int | None:
    """The CPU-time clock of another thread, exact even while it runs."""
    getclock = getattr(time, "pthread_getcpuclockid", None)
    if getclock is None:
        return None
    try:
        clock: int = getclock(ident)
        time.clock_gettime(clock)
    except (OSError, ValueError, OverflowError):
        return None
    return clock


def _run_delay(tid: int) -> float:
    """Seconds thread ``tid`` waited on the OS run queue; 0 if unknown."""
    stat = _schedstat(tid)
    return stat[1] if stat is not None else 0.0


def free_threaded() -> bool:
    """Whether this interpreter runs Python threads in parallel (no GIL)."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)  # Python 3.13+
    return is_gil_enabled is not None and not is_gil_enabled()
