"""``executor.statistics()``: one frozen snapshot, the same record on every backend.

Every executor counts its tasks in a :class:`TaskCounters`, which its Futures
update as they change state (two short lock holds per task, never across the
backend). Workers are reported by the backend (:meth:`BaseExecutor._workers`)::

    Future._start / set_result / set_exception / cancel -> TaskCounters
    statistics() -> counters.snapshot() + backend's workers (+ auto's verdicts)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import TaskTimeoutError

if TYPE_CHECKING:
    from collections.abc import Mapping

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
        busy_s: seconds it spent running tasks.
        idle_s: seconds it spent waiting for one, since it started.
    """

    name: str
    busy_s: float
    idle_s: float


#: Workers alive, started, started to replace one lost, and each one's figures.
WorkerFigures = tuple[int, int, int, tuple[WorkerStatistics, ...]]


@dataclass(frozen=True, slots=True)
class Statistics:
    """A snapshot of what an executor has done; see :meth:`Executor.statistics`.

    The task counts add up: ``done + failed + cancelled + running + queued ==
    submitted``. A map's batch of items counts as one task.

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
    verdicts: Mapping[str, Any] = field(default_factory=dict)


class TaskCounters:
    """The task counts of one executor, updated by its Futures."""

    __slots__ = (
        "_cancelled_queued",
        "_cancelled_running",
        "_done",
        "_failed",
        "_finished_queued",
        "_lock",
        "_started",
        "_submitted",
        "_timed_out",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._submitted = self._started = self._done = self._failed = 0
        self._timed_out = self._cancelled_queued = self._cancelled_running = 0
        self._finished_queued = 0  # failed before they started (a broken pool)

    def submitted(self, count: int = 1) -> None:
        with self._lock:
            self._submitted += count

    def started(self) -> None:
        with self._lock:
            self._started += 1

    def finished(self, error: BaseException | None, *, running: bool) -> None:
        with self._lock:
            if not running:
                self._finished_queued += 1
            if error is None:
                self._done += 1
            else:
                self._failed += 1
                if isinstance(error, TaskTimeoutError):
                    self._timed_out += 1

    def cancelled(self, *, running: bool) -> None:
        with self._lock:
            if running:
                self._cancelled_running += 1
            else:
                self._cancelled_queued += 1

    def snapshot(
        self,
        workers: WorkerFigures = (0, 0, 0, ()),
        verdicts: Mapping[str, Any] | None = None,
    ) -> Statistics:
        """The counts now, with the backend's worker figures."""
        with self._lock:
            submitted, started = self._submitted, self._started
            done, failed, timed_out = self._done, self._failed, self._timed_out
            cancelled_queued = self._cancelled_queued
            cancelled_running = self._cancelled_running
            finished_queued = self._finished_queued
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
            verdicts=dict(verdicts or {}),
        )


class WorkerClock:
    """Busy and idle time of one worker, kept by whoever runs its tasks."""

    __slots__ = ("_began", "_busy", "name", "since")

    def __init__(self, name: str) -> None:
        self.name = name
        self.since = time.monotonic()
        self._busy = 0.0
        self._began: float | None = None

    def begin(self) -> None:
        """A task starts on this worker."""
        self._began = time.monotonic()

    def end(self) -> None:
        """The task ends."""
        began, self._began = self._began, None
        if began is not None:
            self._busy += time.monotonic() - began

    def read(self) -> WorkerStatistics:
        """Busy and idle seconds so far (a running task counts as busy)."""
        now = time.monotonic()
        began = self._began
        busy = self._busy + (now - began if began is not None else 0.0)
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
        verdicts=dict(verdicts or {}),
    )
