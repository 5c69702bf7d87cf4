"""Auto against the fixed unirun backends on every workload of the suite, interleaved.

``benchmarks/run.py`` times its cells one after another, each for all its repeats,
so two cells it compares were timed up to minutes apart. On a shared machine whose
speed drifts within minutes (the same ``asyncio.gather`` cell has read 222 ms and
282 ms in two runs an hour apart), that drift lands in the ratio. Here auto and the
fixed backends of one workload are open at the same time and run in turn, round
after round (the order rotating), so every round meets them all in the same state
of the machine. Each row is auto's median against the best fixed backend's.

The workloads, sizes, sessions, warm-up and result checks are the suite's own.
Cells that map with ``chunksize=1`` are left out: one item per trip is never a
backend's best way through ``map``, and at 2 s a run it would dominate the time.
"""

from __future__ import annotations

import gc
import statistics
from typing import TYPE_CHECKING

from unirun._cpu import usable_cpus

from .contenders import CONTENDERS
from .jobs import Sizing
from .report import FIXED
from .suite import label_of, timed_run, warm_batch, warm_slice
from .workloads import WORKLOADS

if TYPE_CHECKING:
    from .jobs import Entry, Workload
    from .sessions import Chunk, Session

__all__ = ["auto_rows"]

AUTO = "unirun-auto"
#: auto's target against the best fixed backend (issue-level, see DESIGN.md).
TARGET = "≤ 1.1"


def _cells(workload: Workload) -> list[Entry]:
    keys = (AUTO, *FIXED)
    return [e for e in workload.entries if e.contender in keys and e.chunksize != 1]


def _workload_medians(
    workload: Workload, sizing: Sizing, repeat: int
) -> dict[tuple[str, str], float]:
    """Open every cell of ``workload`` at once, warm them, time them in turn."""
    medians: dict[tuple[str, str], float] = {}
    with workload.prepare(sizing) as job:
        opened: list[tuple[Entry, str, Chunk, Session]] = []
        try:
            for entry in _cells(workload):
                contender = CONTENDERS[entry.contender]
                if contender.missing() is not None:
                    continue
                label, chunk = label_of(entry, job)
                session = contender.open(job.workers, job.concurrency, chunk)
                opened.append((entry, label, chunk, session))
                session.run(entry.api, warm_batch(job), 1)
                warm_slice(session, entry, job, chunk)
            times: list[list[float]] = [[] for _ in opened]
            for round_ in range(repeat):
                shift = round_ % len(opened)
                for index in [*range(shift, len(opened)), *range(shift)]:
                    entry, _, chunk, session = opened[index]
                    # With every session's objects alive, a full collection
                    # costs more than a tiny workload's run: start each run
                    # without one due, so that none lands in a random run.
                    gc.collect()
                    times[index].append(timed_run(session, entry, job, chunk))
        finally:
            for *_, session in opened:
                session.close()
    for (entry, label, _, _), runs in zip(opened, times, strict=True):
        medians[entry.contender, label] = statistics.median(runs)
    return medians


def auto_rows(repeat: int) -> list[tuple[str, float, str, float, str]]:
    """One row per workload: auto's best cell against the best fixed backend's."""
    sizing = Sizing(scale=1.0, cores=usable_cpus())
    rows = []
    for workload in WORKLOADS:
        medians = _workload_medians(workload, sizing, repeat)
        autos = {k: v for k, v in medians.items() if k[0] == AUTO}
        fixed = {k: v for k, v in medians.items() if k[0] != AUTO}
        if not autos or not fixed:
            continue
        auto = min(autos.values())
        best = min(fixed, key=fixed.__getitem__)
        rows.append(
            (
                f"auto on `{workload.name}`, interleaved with the fixed backends",
                auto,
                f"best fixed: {best[1]}",
                fixed[best],
                TARGET,
            )
        )
    return rows
