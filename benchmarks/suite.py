"""Run the workloads: every cell is started, warmed, timed, verified and closed.

    for each workload: prepare its job (start the HTTP server if it has one)
        for each entry: open the contender's pool  -+ start-up (reported apart)
                        warm-up round + job slice  -+
                        R timed runs, each verified against the expected results
                        close the pool (always)

A missing optional peer makes its cells "skipped"; an exception or a wrong result
makes the cell "failed" and the suite goes on.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from . import tasks
from .contenders import CONTENDERS
from .sessions import Batch

if TYPE_CHECKING:
    from .contenders import Family, Model
    from .jobs import Entry, Job, Sizing, Workload
    from .sessions import Api, Chunk, Session

__all__ = [
    "Cell",
    "WorkloadResult",
    "label_of",
    "run_workload",
    "timed_run",
    "warm_batch",
    "warm_slice",
]

Status = Literal["ok", "skipped", "failed"]
WARM_DELAY = 0.01


@dataclass
class Cell:
    """The outcome of one contender on one workload."""

    workload: str
    label: str
    contender: str
    family: Family
    model: Model
    api: Api
    status: Status
    note: str = ""
    times: list[float] = field(default_factory=list)
    startup_s: float | None = None
    shutdown_s: float | None = None
    verified: bool = False

    @property
    def median(self) -> float:
        """Median of the timed runs, in seconds."""
        return statistics.median(self.times)

    def as_dict(self) -> dict[str, Any]:
        """Return the cell as JSON-ready data (with its summary statistics)."""
        data: dict[str, Any] = dict(vars(self))
        if self.times:
            data.update(
                median_s=self.median, min_s=min(self.times), max_s=max(self.times)
            )
        return data


@dataclass
class WorkloadResult:
    """Every cell of one workload, with the job's sizes and bounds."""

    workload: Workload
    job: Job
    cells: list[Cell]

    @property
    def serial_s(self) -> float | None:
        """The serial loop's median, if it ran."""
        for cell in self.cells:
            if cell.family == "baseline" and cell.status == "ok":
                return cell.median
        return None

    @property
    def ideal_s(self) -> float | None:
        """The ideal time, known up front or derived from the serial loop."""
        return self.job.ideal(self.serial_s)

    @property
    def best(self) -> Cell | None:
        """The fastest verified cell that is not the serial baseline."""
        ok = [c for c in self.cells if c.status == "ok" and c.family != "baseline"]
        return min(ok, key=lambda c: c.median, default=None)

    def as_dict(self) -> dict[str, Any]:
        """Return the workload's results as JSON-ready data."""
        return {
            "name": self.workload.name,
            "title": self.workload.title,
            "description": self.workload.description,
            "notes": list(self.workload.notes),
            "params": self.job.params,
            "tasks": self.job.tasks,
            "workers": self.job.workers,
            "concurrency": self.job.concurrency,
            "ideal_s": self.ideal_s,
            "ideal_speedup": self.job.ideal_speedup,
            "serial_s": self.serial_s,
            "cells": [cell.as_dict() for cell in self.cells],
        }


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def label_of(entry: Entry, job: Job) -> tuple[str, Chunk]:
    """Return the row label and the chunk size the entry runs with."""
    label = CONTENDERS[entry.contender].label
    chunk: Chunk = (
        job.tuned_chunksize if entry.chunksize == "tuned" else entry.chunksize
    )
    note = entry.note
    if entry.chunksize == "tuned":
        note = f"chunksize={chunk} (tuned)"
    return (f"{label}, {note}" if note else label), chunk


def warm_batch(job: Job) -> Batch:
    """Short sleeps, two per worker: every worker of the pool starts."""
    count = 2 * max(job.workers, job.concurrency or 0, 2)
    return Batch(tasks.warm_up, tasks.warm_up_async, [(WARM_DELAY,)] * count)


def warm_slice(session: Session, entry: Entry, job: Job, chunk: Chunk) -> None:
    """Run one untimed slice of the real job: imports and caches in the workers.

    Raises:
        ValueError: the slice returned wrong results.
    """
    size = min(job.tasks, job.workers)
    warm = Batch(job.batch.fn, job.batch.afn, job.batch.items[:size])
    if session.run(entry.api, warm, chunk) != job.expected[:size]:
        raise ValueError("not verified: the warm-up slice returned wrong results")


def timed_run(session: Session, entry: Entry, job: Job, chunk: Chunk) -> float:
    """Run the job once and return its time; raise ``ValueError`` on a wrong result."""
    start = time.perf_counter()
    results = session.run(entry.api, job.batch, chunk)
    elapsed = time.perf_counter() - start
    problem = job.check(results, elapsed)
    if problem is not None:
        raise ValueError(f"not verified: {problem}")
    return elapsed


def _time_runs(
    session: Session, entry: Entry, chunk: Chunk, job: Job, repeats: int
) -> list[float]:
    """Run the job ``repeats`` times; raise ``ValueError`` on a wrong result."""
    times = []
    for _ in range(repeats):
        # Before each run: a full collection over the suite's whole heap (the
        # jobs' inputs, earlier cells' garbage) is not the contender's to time.
        gc.collect()
        times.append(timed_run(session, entry, job, chunk))
    return times


def run_cell(workload: str, entry: Entry, job: Job, repeats: int) -> Cell:
    """Open, warm, time and close one contender on ``job``; never raises."""
    contender = CONTENDERS[entry.contender]
    label, chunk = label_of(entry, job)
    cell = Cell(
        workload,
        label,
        contender.key,
        contender.family,
        contender.model,
        entry.api,
        "ok",
    )
    missing = contender.missing()
    if missing is not None:
        cell.status, cell.note = "skipped", f"{missing} is not installed"
        _log(f"  {label}: skipped ({cell.note})")
        return cell
    session: Session | None = None
    start = time.perf_counter()
    try:
        session = contender.open(job.workers, job.concurrency, chunk)
        if contender.family != "baseline":
            session.run(entry.api, warm_batch(job), 1)
            cell.startup_s = time.perf_counter() - start
        warm_slice(session, entry, job, chunk)
        cell.times = _time_runs(session, entry, chunk, job, repeats)
        cell.verified = True
    except Exception as exc:
        cell.status, cell.note = "failed", f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        if session is not None:
            closing = time.perf_counter()
            try:
                session.close()
                cell.shutdown_s = time.perf_counter() - closing
            except Exception as exc:
                cell.status, cell.verified = "failed", False
                cell.note = f"close() raised {type(exc).__name__}: {exc}"
                traceback.print_exc()
    wall = time.perf_counter() - start
    if cell.status == "ok":
        _log(
            f"  {label}: median {cell.median:.4f} s of {len(cell.times)} ({wall:.1f} s)"
        )
    else:
        _log(f"  {label}: FAILED ({cell.note})")
    return cell


def run_workload(workload: Workload, sizing: Sizing, repeats: int) -> WorkloadResult:
    """Prepare ``workload`` and run every one of its entries."""
    _log(f"[{workload.name}] {workload.title}")
    with workload.prepare(sizing) as job:
        cells = [run_cell(workload.name, e, job, repeats) for e in workload.entries]
    return WorkloadResult(workload, job, cells)
