"""The GIL test: a monitor thread runs a canary next to each probe.

The canary needs the GIL: it takes it for short stretches, letting go in between,
and reads the probe thread's CPU clock around each stretch. A probe whose CPU
clock runs on while the canary holds the GIL released it; one whose clock stands
still needs it. A probe that keeps the canary off the GIL for its whole run
(calls shorter than the 5 ms switch interval) holds it::

    monitor thread: [wait for a probe] [wake: wait for the GIL?]
                    [gap | stretch | gap | stretch ...] until the probe ends
                    -> Window (handed to the probe's end, or, for a long probe,
                       to the owner while it still runs)

The canary runs on another CPU than the probe's where the machine lends one
(:class:`_Aside`): sharing the probe's CPU, it would only take turns with it.

classify.free_share reads the window; the monitor only measures.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref
from typing import TYPE_CHECKING, Generic, TypeVar

from .profiling import Probe, Window

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Monitor"]

ProbeT = TypeVar("ProbeT", bound="Probe")

#: How long the canary holds the GIL in one stretch (seconds): short enough that
#: a probe coming back from C code barely waits for it.
STRETCH = 0.0002
#: How long the canary lets go of the GIL between stretches (seconds).
GAP = 0.00005
#: A wait for the GIL longer than this, after a gap, counts as the GIL being held
#: by another thread (a gap's sleep overshoots by the timer slack, ~60 µs).
BLOCKED_AFTER = 0.0005
#: The canary reads the probe's kernel state every this many stretches (~1 ms).
STATE_EVERY = 4
#: A runnable probe computed (rather than waited for a CPU) when its CPU clock
#: moved by at least this share of the time since the last state sample.
RAN_SHARE = 0.25
#: The longest the monitor watches one probe before handing in a window (s).
WINDOW_S = 0.05

_LOGGER = logging.getLogger("unirun")


class Monitor(Generic[ProbeT]):
    """A thread that runs the GIL canary next to each probe.

    ``on_window(probe, window)`` is called from the monitor thread when a probe
    still runs after :data:`WINDOW_S` (an early verdict is possible). Only a
    weak reference to it is kept: the monitor never keeps its owner alive. Its
    thread starts with the first probe and ends at :meth:`close`.
    """

    def __init__(self, on_window: Callable[[ProbeT, Window], None]) -> None:
        self._on_window = weakref.WeakMethod(on_window)
        self._queue: queue.SimpleQueue[ProbeT | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._current: ProbeT | None = None
        self._aside: _Aside | None = None
        self._ready = threading.Event()

    def watch(self, probe: ProbeT) -> None:
        """Watch ``probe`` and begin it (called in its thread, first thing)."""
        with self._lock:
            closed = self._closed
            if not closed and self._thread is None:
                # Started before the probe begins: not part of its time.
                self._thread = threading.Thread(
                    target=self._run, name=f"unirun-auto-monitor-{id(self):#x}"
                )
                self._thread.start()
                self._aside = _Aside.of(self._thread.native_id)
                # Until the thread waits for probes, it would take its first
                # look only once this probe lets go of the GIL: too late.
                self._ready.wait()
            aside = self._aside
        probe.ident = threading.get_ident()
        probe.tid = threading.get_native_id()
        if not closed:
            # Behind another probe the monitor comes too late to say anything.
            probe.watched = self._current is None
            if probe.watched and aside is not None:
                # Before waking it: the kernel tends to wake a thread on its
                # waker's CPU, where the monitor would wait for the probe.
                aside.keep_off(_this_cpu())
            probe.queued_at = time.perf_counter()
            self._queue.put(probe)
        probe.begin()

    def close(self, wait: bool = True) -> None:
        """Stop the thread (it finishes the window it is taking); join it if
        ``wait``."""
        with self._lock:
            closed, self._closed = self._closed, True
            thread = self._thread
        if thread is None:
            return
        if not closed:
            self._queue.put(None)
        # Even after a close without waiting: a later one that waits joins it.
        if wait and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        try:
            own = _Stat(threading.get_native_id())
        finally:
            self._ready.set()  # what follows runs before the watcher gets the GIL
        try:
            while True:
                idle_since, own_wait = time.perf_counter(), own.wait()
                probe = self._queue.get()
                if probe is None:
                    return
                # Reading it lets go of the GIL: a probe that holds the GIL
                # takes it back then, for a switch interval; _watch's clock
                # starts after.
                own_waited = own.wait() - own_wait
                self._current = probe
                try:
                    self._watch(
                        probe, max(idle_since, probe.queued_at), own, own_waited
                    )
                except Exception:  # a bug must not leave later probes unwatched
                    _LOGGER.exception("auto: GIL monitor")
                finally:
                    if self._aside is not None:  # moved for a window never taken
                        self._aside.restore()
                    self._current = None
                    probe.measured.set()
                    # Not kept while waiting for the next: it holds the call's
                    # callable and arguments (an object's bound method, say).
                    del probe
        finally:
            own.close()

    def _watch(self, probe: ProbeT, wanted: float, own: _Stat, own_wait: float) -> None:
        # From `wanted` to `woke` the monitor waited for the GIL, or for a CPU
        # (its own run-queue wait says how long), or was being woken up. The
        # probe is read first: a thread that forces a switch of the GIL can
        # take it away between any two steps, and that wait comes before woke.
        finished = probe.finished
        woke = time.perf_counter()
        waited = woke - wanted - own_wait
        blocked = waited if waited > BLOCKED_AFTER else 0.0
        if finished:
            probe.window = _ended(probe, wanted, blocked, own_wait)
            return
        window = _Canary(probe, own, self._aside).run(wanted, woke, blocked, own_wait)
        if window is None:
            return
        probe.window = window
        if not probe.finished:
            handler = self._on_window()
            if handler is None:  # the owner is gone
                return
            try:
                handler(probe, window)
            except Exception:  # never let a bug kill the monitor
                _LOGGER.exception("auto: window handler")


def _gil_wait(elapsed: float, own_cpu: float, own_queued: float) -> float:
    """The monitor's wait for the GIL in ``elapsed`` seconds in which it ran
    for ``own_cpu`` and waited for a CPU for ``own_queued``: what is left, if
    more than :data:`BLOCKED_AFTER`; else 0."""
    late = elapsed - own_cpu - own_queued
    return late if late > BLOCKED_AFTER else 0.0


def _ended(
    probe: Probe, wanted: float, blocked: float, own_wait: float
) -> Window | None:
    """The window of a probe that ended before the canary's first stretch:
    the monitor's waits until then (for the GIL: ``blocked``; for a CPU:
    ``own_wait``) are all it saw."""
    covered = probe.ended_at - wanted
    if covered <= 0:
        return None
    return Window(
        seconds=covered,
        probe_cpu=0.0,
        probe_wait=0.0,
        others_cpu=0.0,
        canary_wait=min(own_wait, covered),
        blocked_s=min(blocked, covered),
    )


class _Canary:
    """The stretches of one window: alternately hold the GIL and let go of it."""

    def __init__(self, probe: Probe, own: _Stat, aside: _Aside | None) -> None:
        self._probe = probe
        self._own = own
        self._aside = aside or _Aside()

    def run(
        self, wanted: float, started: float, blocked: float, own_wait: float
    ) -> Window | None:
        """The window from ``wanted``; ``blocked`` and ``own_wait`` count the
        waits for the GIL and for a CPU until ``started``."""
        probe, own = self._probe, self._own
        cpu, queued = time.thread_time(), own.wait()
        clock = _cpu_clock(probe.ident)
        if not probe.running():
            # Reading our run-queue wait let go of the GIL, and a probe that
            # holds it took it back and ran to its end. (Its thread may be gone:
            # its clock would be the caller's own, the kernel reading thread id
            # 0 as "this thread".)
            now, own_cpu, own_queued = (
                time.perf_counter(),
                time.thread_time(),
                own.wait(),
            )
            blocked += _gil_wait(now - started, own_cpu - cpu, own_queued - queued)
            return _ended(probe, wanted, blocked, own_wait + own_queued - queued)
        if clock is None:
            return None
        probe_stat = _Stat(probe.tid)
        states = _StateReader(probe.tid)
        aside = self._aside
        aside.keep_off(states.cpu())  # the probe may have moved since
        try:
            return self._stretches(
                clock,
                probe_stat,
                states,
                aside,
                wanted,
                blocked,
                own_wait,
                (started, cpu, queued),
            )
        except OSError:
            # The probe's thread is gone (its end stopped waiting for us and the
            # thread exited): so is its CPU clock, and with it the window.
            return None
        finally:
            aside.restore()
            probe_stat.close()
            states.close()

    def _stretches(
        self,
        clock: int,
        probe_stat: _Stat,
        states: _StateReader,
        aside: _Aside,
        wanted: float,
        blocked: float,
        own_wait: float,
        setup: tuple[float, float, float],
    ) -> Window:
        """Hold and let go of the GIL until the probe ends or the window is
        over. ``setup`` is (wall clock, CPU clock, run-queue wait) of the
        monitor when it began to set up the window."""
        probe, own = self._probe, self._own
        perf, cpu_of, thread_time = (
            time.perf_counter,
            time.clock_gettime,
            time.thread_time,
        )
        start_cpu, start_process = cpu_of(clock), time.process_time()
        start_own, start_own_wait = thread_time(), own.wait()
        start_wait = probe_stat.wait()
        # Reading our clock, opening the files and reading them (just above)
        # let go of the GIL: a probe that holds it took it back then, until
        # its switch interval ran out. Measured after the last of those reads.
        began, began_cpu, began_queued = setup
        blocked += _gil_wait(
            perf() - began, start_own - began_cpu, start_own_wait - began_queued
        )
        limit = wanted + WINDOW_S
        held = free = 0.0
        running = waiting = cycles = 0
        sampled_at, sampled_cpu = perf(), start_cpu
        while probe.running():
            # The gap: let go of the GIL; a wait to get it back beyond the
            # sleep's overshoot (and our own run-queue wait) was another
            # thread holding it.
            before, queued = perf(), own.wait()
            time.sleep(GAP)
            late = perf() - before - GAP - (own.wait() - queued)
            if late > BLOCKED_AFTER:
                blocked += late
            cycles += 1
            if cycles % STATE_EVERY == 0:
                state = states.read()
                now, spent = perf(), cpu_of(clock)
                # Runnable is computing, or waiting for a CPU (a call whose
                # sleep ended on a loaded machine): only the first moves its
                # clock. Such a wait tells nothing, like a futex sleep.
                if state == "run":
                    running += spent - sampled_cpu >= RAN_SHARE * (now - sampled_at)
                waiting += state == "io"
                sampled_at, sampled_cpu = now, spent
                aside.keep_off(states.last_cpu)  # the probe may have moved
            if not probe.running():
                break
            # The stretch: hold the GIL (pure Python) and see whether the probe's
            # CPU clock moves meanwhile.
            t0, p0, c0 = perf(), cpu_of(clock), thread_time()
            until = t0 + STRETCH
            while perf() < until:
                pass
            t1, p1, c1 = perf(), cpu_of(clock), thread_time()
            span = t1 - t0
            # It counts when the canary really had a CPU and the GIL throughout
            # (its own CPU kept up with the clock). Whether the probe had a CPU
            # the kernel tells only later: its waits are taken off afterwards.
            if c1 - c0 >= 0.8 * span:
                held += span
                free += min(p1 - p0, span)
            if t1 >= limit:
                break
        probe_cpu = max(0.0, cpu_of(clock) - start_cpu)
        return Window(
            seconds=max(perf() - wanted, 1e-9),
            probe_cpu=probe_cpu,
            probe_wait=max(0.0, probe_stat.wait() - start_wait),
            others_cpu=max(0.0, time.process_time() - start_process - probe_cpu),
            canary_cpu=max(0.0, thread_time() - start_own),
            canary_wait=own_wait + max(0.0, own.wait() - start_own_wait),
            held_s=held,
            free_s=free,
            blocked_s=blocked,
            running=running,
            io_waiting=waiting,
        )


class _Stat:
    """A thread's run-queue wait (``schedstat``), read without reopening."""

    def __init__(self, tid: int) -> None:
        try:
            self._fd = os.open(f"/proc/self/task/{tid}/schedstat", os.O_RDONLY)
        except OSError:
            self._fd = -1

    def wait(self) -> float:
        """Seconds the thread waited on the run queue so far; 0 if unknown."""
        if self._fd < 0:
            return 0.0
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _StateReader:
    """Reads a thread's kernel state: "run", "io", "lock" or "" (unknown), and
    the CPU it last ran on (``last_cpu``, ``None`` if unknown)."""

    def __init__(self, tid: int) -> None:
        self._stat = self._wchan = -1
        self.last_cpu: int | None = None
        try:
            self._stat = os.open(f"/proc/self/task/{tid}/stat", os.O_RDONLY)
            self._wchan = os.open(f"/proc/self/task/{tid}/wchan", os.O_RDONLY)
        except OSError:
            self.close()

    def cpu(self) -> int | None:
        """The CPU the thread last ran on, read now; ``None`` if unknown."""
        self.read()
        return self.last_cpu

    def read(self) -> str:
        if self._stat < 0:
            return ""
        try:
            stat = os.pread(self._stat, 512, 0)
            self.last_cpu = _cpu_field(stat)
            if stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"R":
                return "run"
            wchan = os.pread(self._wchan, 128, 0)
        except (OSError, ValueError, IndexError):
            return ""
        if not wchan or wchan == b"0":
            return ""  # the kernel hides wait channels here
        return "lock" if b"futex" in wchan else "io"

    def close(self) -> None:
        for fd in (self._stat, self._wchan):
            if fd >= 0:
                os.close(fd)
        self._stat = self._wchan = -1


class _Aside:
    """Keeps the canary's thread off the probe's CPU.

    A canary that shares the probe's CPU takes turns with it: the probe's clock
    stands still in the stretches whether or not it needs the GIL, and a probe
    that holds the GIL keeps the canary waiting for the CPU rather than for the
    GIL, so the test cannot tell (a GIL-free numpy call read so one time in two
    on two CPUs, the kernel having woken the monitor on the probe's CPU).
    :meth:`keep_off` narrows the thread's affinity to the CPUs it may use but
    the probe's, from either thread; :meth:`restore` gives them back. Nothing
    changes where no other CPU is allowed, or off Linux.
    """

    def __init__(self, tid: int = 0, home: set[int] | None = None) -> None:
        self._tid = tid  # 0: the calling thread
        self._home = home if home is not None else _affinity(tid)
        self._off: int | None = None

    @classmethod
    def of(cls, tid: int | None) -> _Aside | None:
        """The aside of the thread ``tid``, with the affinity it has now."""
        if tid is None:
            return None
        return cls(tid, _affinity(tid))

    def keep_off(self, cpu: int | None) -> None:
        """Run the thread anywhere it may but on ``cpu`` (the probe's)."""
        home = self._home
        if cpu is None or cpu == self._off or not home or cpu not in home:
            return
        elsewhere = home - {cpu}
        try:
            if elsewhere:
                os.sched_setaffinity(self._tid, elsewhere)
                self._off = cpu
        except OSError:  # a cpuset that changed under us: stay where it is
            pass

    def restore(self) -> None:
        """Give the thread back the affinity it had."""
        if self._off is None or not self._home:
            return
        self._off = None
        try:
            os.sched_setaffinity(self._tid, self._home)
        except OSError:  # the CPUs it had are gone: keep what it has
            _LOGGER.debug("auto: the GIL monitor could not restore its affinity")


def _affinity(tid: int) -> set[int]:
    """The CPUs thread ``tid`` may run on; empty where that cannot be changed."""
    if not hasattr(os, "sched_setaffinity"):
        return set()
    try:
        return os.sched_getaffinity(tid)
    except OSError:
        return set()


def _this_cpu() -> int | None:
    """The CPU the calling thread runs on (``None`` where unknown)."""
    try:
        with open("/proc/thread-self/stat", "rb") as stat:
            return _cpu_field(stat.read())
    except OSError:
        return None


def _cpu_field(stat: bytes) -> int | None:
    """The CPU a thread last ran on, from its ``stat`` (field 39, "processor")."""
    try:
        return int(stat[stat.rindex(b")") + 2 :].split()[36])
    except (ValueError, IndexError):
        return None


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
