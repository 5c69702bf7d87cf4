"""``executor.statistics()``: one frozen snapshot, the same record on every backend.

Every executor counts its tasks in a :class:`TaskCounters`, which its Futures
update as they change state (one lock-free C call per event, never a lock held
across the backend). Workers are reported by the backend
(:meth:`BaseExecutor._workers`)::

    Future._start / set_result / set_exception / cancel -> TaskCounters
    statistics() -> counters.snapshot() + backend's workers (+ auto's verdicts)
"""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._call import ChunkResult
from ._errors import TaskTimeoutError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Statistics",
    "TaskCounters",
    "WorkerClock",
    "WorkerFigures",
    "WorkerStatistics",
    "combine",
]


@dataclass(frozen=True, slots=True)
class WorkerStatistics:
    """One worker (a thread, a process, an event loop) of an executor.

    Attributes:
        name: the worker's name (thread name, ``process <pid>``, ``event loop``).
        busy_s: seconds it spent running tasks. An event loop counts as busy
            while any of its tasks runs or waits, until the loop's turn after
            the last one ends.
        idle_s: seconds it spent waiting for one, since it started.
    """

    name: str
    busy_s: float
    idle_s: float


#: Workers alive, started, started to replace one lost, and each one's figures.
WorkerFigures = tuple[int, int, int, tuple[WorkerStatistics, ...]]


class FrozenMapping(Mapping[str, Any]):
    """A read-only, hashable mapping: a frozen snapshot's ``verdicts``."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items = dict(items or {})

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return repr(self._items)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenMapping, (self._items,))


@dataclass(frozen=True, slots=True)
class Statistics:
    """A snapshot of what an executor has done; see :meth:`Executor.statistics`.

    The task counts add up: ``done + failed + cancelled + running + queued ==
    submitted``. A map's batch of items counts as one task: failed if one of
    its items raised.

    Attributes:
        submitted: tasks accepted by ``submit`` (and ``map``, ``gather``).
        queued: accepted, not started.
        running: started, not finished.
        done: finished with a result.
        failed: finished with an exception (time-outs included).
        cancelled: cancelled, before or while running.
        timed_out: failed by passing their ``options(timeout=...)``.
        workers_alive: workers running now.
        workers_started: workers started so far.
        workers_replaced: workers started to replace one that died or was
            killed (a crash, a time-out).
        workers: each live worker's busy and idle time.
        verdicts: for :class:`unirun.AutoExecutor`, each callable's verdict by
            name; empty elsewhere.
    """

    submitted: int
    queued: int
    running: int
    done: int
    failed: int
    cancelled: int
    timed_out: int
    workers_alive: int
    workers_started: int
    workers_replaced: int
    workers: tuple[WorkerStatistics, ...] = ()
    verdicts: Mapping[str, Any] = field(default_factory=FrozenMapping)


#: The events a :class:`TaskCounters` counts, in the order :meth:`snapshot` reads
#: them: an event is read before every event that must have come before it.
_EVENTS = (
    "done",
    "failed",
    "timed_out",
    "cancelled_running",
    "finished_queued",
    "cancelled_queued",
    "started",
    "unsubmitted",
    "submitted",
)


def ticker() -> Callable[[], int]:
    """A counter whose every call returns the next number: 0, 1, 2...

    ``next()`` of a C counter, atomic under the GIL; in a free-threaded build the
    calls take a lock.
    """
    counter = itertools.count()
    if getattr(sys, "_is_gil_enabled", lambda: True)():
        return counter.__next__
    lock = threading.Lock()

    def tick() -> int:
        with lock:
            return next(counter)

    return tick


def _tick(counter: itertools.count[int]) -> Callable[[], object]:
    """Count one event: ``next()`` of a C counter, atomic under the GIL."""
    if getattr(sys, "_is_gil_enabled", lambda: True)():
        return counter.__next__
    lock = threading.Lock()  # a free-threaded build: no atomic next()

    def tick() -> None:
        with lock:
            next(counter)

    return tick


class TaskCounters:
    """The task counts of one executor, updated by its Futures.

    Each event is a C counter bumped without a lock (one call per event, the
    cheapest thing a Future can do as it changes state). A snapshot reads the
    counters one by one, each before those of the events that must precede it
    (a task's end before its start, its start before its submission), so the
    figures it derives are never negative and always add up to ``submitted``.

    Attributes ``submitted``, ``unsubmitted`` (a submission rolled back),
    ``started``, ``done`` (a running task's result), ``cancelled_running`` and
    ``cancelled_queued`` are the counting calls; :meth:`finished` and
    :meth:`returned` cover the rest.
    """

    __slots__ = ("_counters", *_EVENTS)

    submitted: Callable[[], object]
    unsubmitted: Callable[[], object]
    started: Callable[[], object]
    done: Callable[[], object]
    failed: Callable[[], object]
    timed_out: Callable[[], object]
    finished_queued: Callable[[], object]
    cancelled_running: Callable[[], object]
    cancelled_queued: Callable[[], object]

    def __init__(self) -> None:
        self._counters = tuple(itertools.count() for _ in _EVENTS)
        for name, counter in zip(_EVENTS, self._counters, strict=True):
            setattr(self, name, _tick(counter))

    def finished(self, error: BaseException | None, *, running: bool) -> None:
        """A task ended with ``error`` (or a result, if None)."""
        if not running:
            self.finished_queued()  # before its outcome: see snapshot()
        if error is None:
            self.done()
        else:
            if isinstance(error, TaskTimeoutError):
                self.timed_out()
            self.failed()

    def returned(self, result: object, *, running: bool) -> None:
        """A task ended with ``result``: one of a map's batches
        (:class:`~unirun._call.ChunkResult`) that stopped at an item's error
        failed, as that item would have on its own, a worker's crash included."""
        error = result.error if type(result) is ChunkResult else None
        if running and error is None:
            self.done()
        else:
            self.finished(error, running=running)

    def cancelled(self, *, running: bool) -> None:
        """A task was cancelled, before it started or while it ran."""
        if running:
            self.cancelled_running()
        else:
            self.cancelled_queued()

    def _read(self) -> dict[str, int]:
        # repr(itertools.count(n)) is "count(n)": the value without a next().
        return {
            name: int(repr(counter)[6:-1])
            for name, counter in zip(_EVENTS, self._counters, strict=True)
        }

    def snapshot(
        self,
        workers: WorkerFigures = (0, 0, 0, ()),
        verdicts: Mapping[str, Any] | None = None,
    ) -> Statistics:
        """The counts now, with the backend's worker figures."""
        counts = self._read()
        submitted = counts["submitted"] - counts["unsubmitted"]
        started, done, failed = counts["started"], counts["done"], counts["failed"]
        timed_out, finished_queued = counts["timed_out"], counts["finished_queued"]
        cancelled_queued = counts["cancelled_queued"]
        cancelled_running = counts["cancelled_running"]
        finished_running = done + failed - finished_queued
        alive, started_workers, replaced, per_worker = workers
        return Statistics(
            submitted=submitted,
            queued=submitted - started - cancelled_queued - finished_queued,
            running=started - finished_running - cancelled_running,
            done=done,
            failed=failed,
            cancelled=cancelled_queued + cancelled_running,
            timed_out=timed_out,
            workers_alive=alive,
            workers_started=started_workers,
            workers_replaced=replaced,
            workers=per_worker,
            verdicts=FrozenMapping(verdicts),
        )


class WorkerClock:
    """Busy and idle time of one worker, kept by whoever runs its tasks.

    ``began`` (the ``time.monotonic()`` a task started, or None between tasks)
    and ``busy`` (seconds of the tasks that ended) are all its state: a hot
    path may update them in place, as :meth:`begin` and :meth:`end` do.
    """

    __slots__ = ("began", "busy", "name", "since")

    def __init__(self, name: str) -> None:
        self.name = name
        self.since = time.monotonic()
        self.busy = 0.0
        self.began: float | None = None

    def begin(self) -> None:
        """A task starts on this worker."""
        self.began = time.monotonic()

    def end(self) -> None:
        """The task ends."""
        began, self.began = self.began, None
        if began is not None:
            self.busy += time.monotonic() - began

    def read(self) -> WorkerStatistics:
        """Busy and idle seconds so far (a running task counts as busy)."""
        now = time.monotonic()
        began = self.began
        busy = self.busy + (now - began if began is not None else 0.0)
        return WorkerStatistics(self.name, busy, max(0.0, now - self.since - busy))


def combine(
    parts: list[Statistics],
    verdicts: Mapping[str, Any] | None = None,
    internal: int = 0,
) -> Statistics:
    """One record for an executor made of others.

    Args:
        parts: the inner executors' records (and the outer one's own).
        verdicts: the outer executor's verdicts.
        internal: finished tasks the outer executor ran for itself (to time its
            inner executors), left out.
    """
    return Statistics(
        submitted=sum(p.submitted for p in parts) - internal,
        queued=sum(p.queued for p in parts),
        running=sum(p.running for p in parts),
        done=sum(p.done for p in parts) - internal,
        failed=sum(p.failed for p in parts),
        cancelled=sum(p.cancelled for p in parts),
        timed_out=sum(p.timed_out for p in parts),
        workers_alive=sum(p.workers_alive for p in parts),
        workers_started=sum(p.workers_started for p in parts),
        workers_replaced=sum(p.workers_replaced for p in parts),
        workers=tuple(w for p in parts for w in p.workers),
        verdicts=FrozenMapping(verdicts),
    )
