"""The shapes of a workload: its sizing, its rows (entries) and its prepared job.

A :class:`Job` also knows how to verify a run: the results must equal the
expected values, and a sleep-bound run may not finish faster than its sleeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from .sessions import Api, Batch

__all__ = ["Entry", "Job", "Sizing", "Workload", "scaled"]


@dataclass(frozen=True)
class Sizing:
    """How big to make the workloads: ``scale`` multiplies the work of each."""

    scale: float
    cores: int


@dataclass(frozen=True)
class Entry:
    """One row of a workload's table: a contender and how it is driven.

    ``chunksize`` is for the map API: an int, ``None`` (the library chooses),
    ``"auto"`` (joblib) or ``"tuned"`` (the job's hand-picked size).
    """

    contender: str
    api: Api = "submit"
    chunksize: int | Literal["auto", "tuned"] | None = None
    note: str = ""


@dataclass(frozen=True)
class Job:
    """A prepared workload: the batch, its expected results and its bounds.

    Attributes:
        workers: size of thread and process pools.
        concurrency: bound for coroutine-style contenders (``None``: none).
        floor_s: no honest run is faster (its sleeps alone take this long).
        ideal_s: the best time possible, where it is known up front.
        ideal_speedup: the ideal speed-up over the serial loop (CPU work).
        tuned_chunksize: the chunk size "tuned" entries use.
        per_task: report time per task (overhead-dominated workloads).
        params: the sizes, shown in the report.
    """

    batch: Batch
    expected: list[Any]
    workers: int
    concurrency: int | None
    floor_s: float = 0.0
    ideal_s: float | None = None
    ideal_speedup: float | None = None
    ideal_from_serial: Callable[[float], float] | None = None
    tuned_chunksize: int = 1
    per_task: bool = False
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def tasks(self) -> int:
        """How many tasks one run executes."""
        return len(self.batch.items)

    def ideal(self, serial_s: float | None) -> float | None:
        """Return the ideal time, given the serial loop's median if it ran."""
        if self.ideal_s is not None:
            return self.ideal_s
        if self.ideal_from_serial is not None and serial_s is not None:
            return self.ideal_from_serial(serial_s)
        return None

    def check(self, results: object, elapsed: float) -> str | None:
        """Return why a run is not to be trusted, or ``None`` if it verified."""
        if not isinstance(results, list):
            return f"returned {type(results).__name__}, not a list of results"
        if len(results) != len(self.expected):
            return f"returned {len(results)} results for {len(self.expected)} tasks"
        for index, (got, want) in enumerate(zip(results, self.expected, strict=True)):
            if got != want:
                return f"task {index} returned {got!r}, expected {want!r}"
        if elapsed < self.floor_s:
            return (
                f"finished in {elapsed:.3f} s, under the {self.floor_s:.3f} s its "
                "sleeps take: work was skipped"
            )
        return None


@dataclass(frozen=True)
class Workload:
    """A named benchmark: how to prepare its job and who runs it."""

    name: str
    title: str
    description: str
    prepare: Callable[[Sizing], AbstractContextManager[Job]]
    entries: tuple[Entry, ...]
    notes: tuple[str, ...] = ()


def scaled(base: float, sizing: Sizing, minimum: int, multiple: int = 1) -> int:
    """Return ``base * scale`` rounded up to ``multiple``, at least ``minimum``."""
    count = max(minimum, math.ceil(base * sizing.scale))
    return math.ceil(count / multiple) * multiple
