"""Measurements of one probe call: wall time, the worker's own CPU, and the GIL.

A probe is a real call of the user's function on a worker thread. It records, from
its first to its last instruction, the wall time, its thread's CPU time, how long
its thread waited for a CPU on the OS run queue (Linux ``schedstat``), and the CPU
the rest of the process used meanwhile; the monitor (canary.py) adds a
:class:`Window` of what it saw about the GIL::

    probe thread:   watch() -- begin() -- fn(*args) -- end()  -> ProbeSample
                                                        ^ waits for the Window
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass

__all__ = [
    "Probe",
    "ProbeSample",
    "Window",
    "free_threaded",
]

#: The longest a probe's end waits for the monitor to finish its window (s).
END_WAIT = 0.005


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
    """What the monitor saw while a probe ran.

    Attributes:
        seconds: how long the monitor watched (from when it wanted the GIL).
        probe_cpu: CPU time the probe's thread used in the window.
        probe_wait: time the probe's thread waited on the OS run queue.
        others_cpu: CPU of every other thread of the process (the canary too).
        canary_cpu: CPU of the canary.
        canary_wait: time the canary waited on the OS run queue.
        held_s: time the canary held the GIL in stretches that count (it had a
            CPU throughout).
        free_s: the probe's CPU time during those stretches: it ran without the
            GIL.
        blocked_s: time the canary waited for the GIL (not for a CPU) while the
            probe ran.
        running: state samples in which the probe was runnable and its CPU
            clock moved since the sample before: it computed.
        io_waiting: state samples in which it slept on I/O or a timer.
    """

    seconds: float
    probe_cpu: float
    probe_wait: float
    others_cpu: float
    canary_cpu: float = 0.0
    canary_wait: float = 0.0
    held_s: float = 0.0
    free_s: float = 0.0
    blocked_s: float = 0.0
    running: int = 0
    io_waiting: int = 0

    @property
    def run_share(self) -> float | None:
        """Share of the state samples in which the probe computed.

        Each sample reads the probe thread's kernel state right after the canary
        took the GIL back: runnable ("R") with its CPU clock moving means
        computing without the GIL; asleep anywhere but on a futex means waiting
        for I/O or a timer. Futex sleeps (a lock, or waiting for the GIL) and
        runnable with a still clock (waiting for a CPU, as a call whose sleep
        ended does on a loaded machine) say neither and are left out. ``None``
        with fewer than 3 telling samples.
        """
        told = self.running + self.io_waiting
        return self.running / told if told >= 3 else None


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """The measurements of one probe call.

    Attributes:
        wall_s: wall time of the call.
        cpu_s: CPU time of the probe's own thread (``time.thread_time``).
        wait_s: time its thread waited on the OS run queue (0 where unknown).
        others_cpu_s: CPU used by the rest of the process during the call.
        window: the monitor's window, when it had one.
        returned_awaitable: the call returned a coroutine (an awaitable of
            another kind is a plain value, returned as is).
        imported: modules were imported meanwhile (``sys.modules`` grew): the
            first call of a function that imports lazily, say. The import held
            the GIL, so the figures say more about it than about the call.
    """

    wall_s: float
    cpu_s: float
    wait_s: float
    others_cpu_s: float
    window: Window | None
    returned_awaitable: bool = False
    imported: bool = False


class Probe:
    """One probe call in progress; :meth:`begin` and :meth:`end` run in its thread."""

    def __init__(self) -> None:
        self.ident = 0
        self.tid = 0
        self.finished = False
        self.queued_at = 0.0
        self.ended_at = 0.0
        self.window: Window | None = None
        self.sample: ProbeSample | None = None
        #: The monitor will take a window of it (it was idle when asked).
        self.watched = False
        #: Set by the monitor once it is done with it.
        self.measured = threading.Event()
        self._start: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
        self._modules = 0

    def begin(self) -> None:
        """Start measuring (in the probe's thread, right before the call)."""
        self.tid = threading.get_native_id()
        stat = _schedstat(self.tid)
        wait = stat[1] if stat is not None else 0.0
        self._modules = len(sys.modules)
        self._start = (
            time.perf_counter(),
            time.thread_time(),
            time.process_time(),
            wait,
        )

    def end(self, returned_awaitable: bool = False) -> ProbeSample:
        """Stop measuring; let the monitor finish its window, if it watches."""
        now, cpu = time.perf_counter(), time.thread_time()
        process = time.process_time()
        stat = _schedstat(self.tid)
        self.ended_at = now
        self.finished = True
        if self.watched:
            # Blocking here lets go of the GIL: a monitor still waiting for it
            # comes in now and says how long the probe kept it out.
            self.measured.wait(END_WAIT)
        start_wall, start_cpu, start_process, start_wait = self._start
        own = max(0.0, cpu - start_cpu)
        self.sample = ProbeSample(
            wall_s=max(now - start_wall, 1e-9),
            cpu_s=own,
            wait_s=max(0.0, stat[1] - start_wait) if stat is not None else 0.0,
            others_cpu_s=max(0.0, process - start_process - own),
            window=self.window,
            returned_awaitable=returned_awaitable,
            imported=self.imported(),
        )
        return self.sample

    def imported(self) -> bool:
        """Whether modules were imported since :meth:`begin` (from any thread)."""
        return len(sys.modules) > self._modules

    def running(self) -> bool:
        """Whether the call has not ended yet (read from any thread)."""
        return not self.finished


def free_threaded() -> bool:
    """Whether this interpreter runs Python threads in parallel (no GIL)."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)  # Python 3.13+
    return is_gil_enabled is not None and not is_gil_enabled()
