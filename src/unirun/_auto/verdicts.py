"""The verdict cache: one entry per callable, its probes, and when to revise it.

admit(fn, args) --entry has a verdict--> the entry (the caller routes the call)
       | a probe is running ----------> a held Future (routed at the verdict)
       | no verdict, or a stale one --> a probe: the call itself, on a worker
                                        thread, watched by the monitor
probe done (or the monitor's early window) -> classify -> verdict cached
                                           -> held calls handed on
revisions: an inline call far too long, a thread call far heavier, a process
           (or cluster) call back within a few no-op round trips -> stale:
           probe again

Nothing runs twice: a held call runs once, where the verdict sends it. Until
every probe has ended and its held calls were handed on, the cache is *busy*;
the executor closes its pools only once it is idle.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .._checks import describe
from .._follow import chain
from .._future import Future
from .._transfer import call_travels, outcome_travels
from .cache import cached, lookup, owner_ref, target_of
from .canary import Monitor
from .classify import BUSY_MIN, Facts, Need, busy_share, classify, free_share
from .profiling import Probe, ProbeSample

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._options import TaskOptions
    from .classify import Verdict
    from .pools import Pools
    from .profiling import Window

__all__ = ["Entry", "Held", "Verdicts"]

_LOGGER = logging.getLogger("unirun")

#: How many more probes a CPU-bound callable gets when the GIL test could not
#: tell (no free CPU during the probe, or too short a call).
RECHECKS = 2


@dataclasses.dataclass(slots=True, eq=False)
class Held:
    """A call that arrived while its callable was being probed; ``on_early``
    is told once it was handed on (see :meth:`Verdicts.admit`)."""

    outer: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: TaskOptions
    on_early: Callable[[], object] | None = None


def _routes_while_probing(verdict: Verdict | None) -> bool:
    """Whether calls go on by ``verdict`` while a probe revises it.

    A call is held behind a probe so that it runs where the verdict will send
    it. A stale thread verdict (most often "CPU-bound, the GIL test could not
    tell", measured again) already sends calls where they run in parallel and
    never block the caller; holding them would run a cold map one call at a
    time, a probe after another. A first reading of compute-and-wait is the
    exception: calls wait for the second reading, so that none computes beside
    it.
    """
    return (
        verdict is not None
        and verdict.backend == "thread"
        and not _first_of_two(verdict)
    )


def _first_of_two(verdict: Verdict) -> bool:
    """Whether ``verdict`` is a first reading of compute-and-wait (rule 3),
    which a second probe confirms or not before processes take the calls."""
    return verdict.provisional and verdict.busy < BUSY_MIN


class Entry:
    """What is known about one callable (``target``, kept weakly: see cache.py)."""

    __slots__ = (
        *("held", "owner", "probe", "rechecks", "samples", "slow", "stale"),
        *("transfer", "verdict"),
    )

    def __init__(self, target: object) -> None:
        self.owner = owner_ref(target)
        self.verdict: Verdict | None = None
        self.probe: CallProbe | None = None  # the undecided probe in flight
        self.held: list[Held] = []
        self.stale = False
        self.slow = False  # its last short call ran too long (see Lane._drain)
        self.rechecks = 0
        self.samples = 0
        self.transfer: tuple[bool, str, float] | None = None


class CallProbe(Probe):
    """A probe and the call it measures; ``confirms``: it started while the verdict
    was a first reading of compute-and-wait (its own early window changes nothing)."""

    def __init__(
        self,
        entry: Entry,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        super().__init__()
        self.entry = entry
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.confirms = entry.verdict is not None and _first_of_two(entry.verdict)
        self.outcome: object = None  # what the call returned or raised
        #: Told when a verdict lets the held calls go before the probe ends.
        self.on_early: list[Callable[[], object]] = []


class Verdicts:
    """The per-callable verdicts of one executor, and the probes that make them.

    ``hand_on(held)`` routes calls that waited for a verdict (called without
    any lock held). Thread-safe.
    """

    def __init__(self, pools: Pools, hand_on: Callable[[list[Held]], None]) -> None:
        self._pools = pools
        self._hand_on = hand_on
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._entries: dict[int, Entry] = {}  # by the target's id: cache.py
        # Probes in flight plus held calls being handed on.
        self._busy = 0
        self._on_idle: Callable[[], None] | None = None
        self._monitor: Monitor[CallProbe] = Monitor(self._on_window)

    # -- lookups -------------------------------------------------------------------

    def explain(self, fn: Callable[..., Any]) -> Verdict | None:
        """The verdict for ``fn``, or ``None`` if it has none yet."""
        with self._lock:
            entry = lookup(self._entries, target_of(fn))
            return None if entry is None else entry.verdict

    def settled(self, fn: Callable[..., Any]) -> bool:
        """Whether ``fn`` has a verdict that no probe is about to replace."""
        with self._lock:
            entry = lookup(self._entries, target_of(fn))
            return (
                entry is not None
                and entry.verdict is not None
                and entry.probe is None
                and not entry.stale
            )

    def transferable(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> bool:
        """Whether calls of ``fn`` like ``fn(*args)`` pickle (checked once)."""
        with self._lock:
            entry = lookup(self._entries, target_of(fn))
        if entry is None:
            return call_travels(fn, args, {})[0]
        if entry.transfer is None:
            entry.transfer = call_travels(fn, args, {})
        return entry.transfer[0]

    # -- admitting a call ----------------------------------------------------------

    def admit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        on_early: Callable[[], object] | None = None,
    ) -> Entry | Future[Any]:
        """Return ``fn``'s entry if its verdict applies, or the call's Future:
        held behind a running probe, or the probe itself. ``on_early`` is
        called (without the lock) once calls no longer wait for this one: at
        once when its verdict applies, when a held call is handed on, when a
        probe's first window lets held calls go; never at a probe's end."""
        target = target_of(fn)
        with self._lock:
            entry = cached(self._entries, target, Entry)
            running = entry.probe
            if running is not None and not _routes_while_probing(entry.verdict):
                outer: Future[Any] = Future()
                outer._in_line = True  # wait() hears of its cancel at once
                entry.held.append(Held(outer, fn, args, kwargs, options, on_early))
                return outer
            probe: CallProbe | None = None
            if running is None and (entry.verdict is None or entry.stale):
                probe = entry.probe = CallProbe(entry, fn, args, kwargs)
                entry.stale = False
                self._busy += 1
                if on_early is not None:
                    probe.on_early.append(on_early)
        if probe is not None:
            return self._start(probe, options)
        # Its verdict applies (while a probe revises it: threads run it meanwhile).
        if on_early is not None:
            on_early()
        return entry

    def _start(self, probe: CallProbe, options: TaskOptions) -> Future[Any]:
        """Run ``probe``'s call on a worker thread, measured."""
        monitor, fn = self._monitor, probe.fn

        def probed(*args: Any, **kwargs: Any) -> Any:
            monitor.watch(probe)
            result: Any = None
            try:
                result = probe.outcome = fn(*args, **kwargs)
            except BaseException as exc:
                probe.outcome = exc
                raise
            finally:
                # Only a coroutine is run (the thread backend runs this one): an
                # awaitable of another kind is a value like any other, as in
                # the stdlib, and goes back as is on every route.
                self._decide(probe, probe.end(type(result) is CoroutineType))
                probe.outcome = None
            return result

        try:
            future = self._pools.thread()._submit(
                probed, probe.args, probe.kwargs, options
            )
        except BaseException:
            self._release(probe)
            raise
        # A probe that never ran (cancelled, or timed out before it started)
        # measured nothing: the calls held behind it probe again.
        future.add_done_callback(lambda _: self._release(probe))
        return future

    # -- deciding ------------------------------------------------------------------

    def _on_window(self, probe: CallProbe, window: Window) -> None:
        """Decide early, from the monitor's window, while a long probe still runs.

        Not while the call imports: the window then measured the import.
        """
        if probe.imported():
            return  # the probe's end decides, as it does for an import
        sample = ProbeSample(
            wall_s=window.seconds,
            cpu_s=window.probe_cpu,
            wait_s=window.probe_wait,
            others_cpu_s=window.others_cpu,
            window=window,
        )
        self._decide(probe, sample, early=True)

    def _facts(self, probe: CallProbe, sample: ProbeSample) -> Facts:
        entry = probe.entry
        transfer, why, transfer_s = entry.transfer or (None, "", 0.0)
        return Facts(
            wall_s=sample.wall_s,
            cpu_s=sample.cpu_s,
            busy=busy_share(sample),
            free_share=free_share(sample),
            imported=sample.imported,
            returned_awaitable=sample.returned_awaitable,
            transferable=transfer,
            transfer_error=why,
            transfer_s=transfer_s,
            samples=entry.samples + 1,
            recheck=entry.rechecks < RECHECKS,
            first_reading=not probe.confirms,
        )

    def _classify(self, probe: CallProbe, sample: ProbeSample, early: bool) -> Verdict:
        entry = probe.entry
        for _ in range(len(Need) + 1):
            costs = self._pools.costs()
            if early and costs.cluster_s is None:
                # The probe still runs, maybe holding the GIL: a trip timed now
                # would take 2-5x longer. The probe's end times it instead.
                costs = dataclasses.replace(costs, cluster=False)
            result = classify(self._facts(probe, sample), costs)
            if result is Need.TRANSFER:
                entry.transfer = call_travels(probe.fn, probe.args, probe.kwargs)
            elif result is Need.PROCESS_COST:
                self._pools.process_cost()
            elif result is Need.CLUSTER_COST:
                self._pools.cluster_cost()
            else:
                assert not isinstance(result, Need)
                return result
        raise AssertionError("classify asked for what it was given")

    def _stays(self, probe: CallProbe, verdict: Verdict) -> bool:
        """Whether the probe's result (or exception) would not come back from a
        process as itself: then its calls stay in this process."""
        if verdict.backend not in ("process", "dask"):
            return False
        travels, why = outcome_travels(probe.outcome)
        if not travels:
            probe.entry.transfer = (False, why, 0.0)
        return not travels

    def _decide(
        self, probe: CallProbe, sample: ProbeSample, early: bool = False
    ) -> None:
        entry = probe.entry
        try:
            verdict: Verdict | None = self._classify(probe, sample, early)
            if not early and verdict is not None and self._stays(probe, verdict):
                verdict = self._classify(probe, sample, early)
        except Exception:
            _LOGGER.exception("auto: could not classify a probe")
            verdict = None
        with self._lock:
            if not early:
                entry.samples += 1
            if verdict is None or (
                early and (entry.probe is not probe or _first_of_two(verdict))
            ):
                # The probe's end releases the held calls; an early window
                # that comes after its probe ended says nothing new.
                return
            # One reading of compute-and-wait, to be confirmed by a second.
            confirm = not early and _first_of_two(verdict)
            # CPU-bound, and the GIL test could not tell (the machine lent no
            # second CPU), or the call imported modules (what it measured was
            # mostly the import): measure again on a later call, a few times
            # at most.
            recheck = (
                not early
                and not confirm
                and entry.rechecks < RECHECKS
                and (
                    verdict.provisional
                    or sample.imported
                    or (
                        verdict.backend in ("thread", "process")
                        and verdict.busy >= BUSY_MIN
                        and verdict.releases_gil is None
                    )
                )
            )
            if recheck:
                entry.rechecks += 1
            again = confirm or recheck
            if again:
                entry.stale = True
            entry.verdict = dataclasses.replace(
                verdict,
                samples=max(1, entry.samples),
                provisional=verdict.provisional if early else again,
            )
            follow: tuple[CallProbe, Held] | None = None
            # A call held behind this probe (the first not cancelled) is the
            # next probe; the rest stay held, behind it, for its reading.
            index = None
            if again and _first_of_two(entry.verdict) and entry.probe is probe:
                index = next(
                    (i for i, c in enumerate(entry.held) if not c.outer.cancelled()),
                    None,
                )
            if index is not None:
                call = entry.held.pop(index)
                entry.probe = CallProbe(entry, call.fn, call.args, call.kwargs)
                if call.on_early is not None:  # a probe now: told as one
                    entry.probe.on_early.append(call.on_early)
                entry.stale = False
                self._busy += 1
                follow = (entry.probe, call)
                held: list[Held] | None = []  # this probe's hold passes on
            else:
                held = self._settle(probe)
        if follow is not None:
            self._probe_held(*follow)
        self._finish(held)
        if early and held is not None:
            for told in probe.on_early:  # once: _settle ends the hold once
                told()

    def _probe_held(self, probe: CallProbe, call: Held) -> None:
        """Run a held ``call`` as ``probe`` (its Future follows the probe's)."""
        try:
            inner = self._start(probe, call.options)
        except BaseException as exc:  # _start released the probe's hold
            call.outer._set_exception_if_pending(exc)
            return
        chain(call.outer, inner)

    def _release(self, probe: CallProbe) -> None:
        """Let calls held behind a probe go on, once it is over either way.

        One that never began (cancelled, or out of time first) read nothing: its
        verdict is still to be revised. One out of time mid-run reads at its end.
        """
        with self._lock:
            entry = probe.entry
            if entry.probe is probe and entry.verdict is not None and not probe.tid:
                entry.stale = True
            held = self._settle(probe)
        self._finish(held)

    def _settle(self, probe: CallProbe) -> list[Held] | None:
        """End ``probe``'s hold (lock held): its held calls, once per probe."""
        entry = probe.entry
        if entry.probe is not probe:
            return None
        entry.probe = None
        held, entry.held = entry.held, []
        return held

    def _finish(self, held: list[Held] | None) -> None:
        """Hand on the calls a settled probe held; then it no longer keeps the
        cache busy."""
        if held is None:
            return
        try:
            if held:
                self._hand_on(held)
                for call in held:
                    if call.on_early is not None:
                        call.on_early()
        finally:
            with self._lock:
                self._busy -= 1
                on_idle = self._on_idle if self._busy == 0 else None
                if self._busy == 0:
                    self._on_idle = None
                    self._idle.notify_all()
            if on_idle is not None:
                # In a thread of its own: the caller may hold locks (a map's,
                # a pool's) that closing the pools would need.
                threading.Thread(
                    target=on_idle, name=f"AutoExecutor-close-{id(self):#x}"
                ).start()

    # -- closing -------------------------------------------------------------------

    def reserve(self) -> None:
        """Stay busy until :meth:`unreserve`: more work will be routed."""
        with self._lock:
            self._busy += 1

    def unreserve(self) -> None:
        """End a :meth:`reserve`."""
        self._finish([])

    def held_calls(self) -> list[Held]:
        """The calls held behind probes now (for statistics)."""
        with self._lock:
            return [call for entry in self._entries.values() for call in entry.held]

    def verdicts(self) -> dict[str, Verdict]:
        """Every verdict, by the callable's name (for statistics)."""
        with self._lock:
            kept = [(entry.owner(), entry.verdict) for entry in self._entries.values()]
        return {
            describe(target): verdict
            for target, verdict in kept
            if verdict is not None and callable(target)  # None: gone, left out
        }

    def cancel_held(self) -> None:
        """Cancel every call held behind a probe."""
        with self._lock:
            held = [call for entry in self._entries.values() for call in entry.held]
        for call in held:
            call.outer.cancel()

    def wait_idle(self) -> None:
        """Block until every probe ended and its held calls were handed on."""
        with self._lock:
            while self._busy:
                self._idle.wait()

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once idle: now, or in a new thread once it is."""
        with self._lock:
            if self._busy:
                self._on_idle = callback
                return
        callback()

    def close(self, wait: bool) -> None:
        """Stop the monitor (no probe starts after this)."""
        self._monitor.close(wait)
