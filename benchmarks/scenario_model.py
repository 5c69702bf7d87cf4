"""What a scenario is: its contenders (who runs it, on what) and their timings."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import unirun
from unirun._cpu import usable_cpus

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Run one scenario once on an open executor; return its results.
Run = Callable[[], list[Any]]

CORES = usable_cpus()
IO_WORKERS = 32  # threads for the I/O scenarios, as benchmarks/run.py uses


#: What a contender runs on its open executor (``None`` for the serial loop).
Work = Callable[[Any], list[Any]]


@dataclass(frozen=True)
class Contender:
    """One way to run a scenario: a label, the kind it runs on, how to open it."""

    label: str
    kind: str  # "thread", "process", "coroutine", "auto" or "serial"
    open: Callable[[], contextlib.AbstractContextManager[Run]]


@contextlib.contextmanager
def open_on(kind: str, work: Work, options: dict[str, Any]) -> Iterator[Run]:
    with unirun.executor(kind, **options) as ex:  # type: ignore[arg-type]
        yield lambda: work(ex)


def on(label: str, kind: str, work: Work, **options: Any) -> Contender:
    """``work`` on an executor of ``kind``, opened once for all its runs."""
    return Contender(label, kind, lambda: open_on(kind, work, options))


def serially(label: str, work: Work) -> Contender:
    return Contender(
        label, "serial", lambda: contextlib.nullcontext(lambda: work(None))
    )


def mapping(fn: Callable[..., Any], items: list[tuple[Any, ...]], **kw: Any) -> Work:
    """``ex.map`` over ``items`` (argument tuples); the builtin map when serial."""
    columns = list(zip(*items, strict=True))
    return lambda ex: list((ex.map(fn, *columns, **kw)) if ex else map(fn, *columns))


def gathering(fn: Callable[..., Any], items: list[tuple[Any, ...]]) -> Work:
    """One ``submit`` per item, then ``gather``; ``asyncio.gather`` when serial."""

    async def all_at_once() -> list[Any]:
        return list(await asyncio.gather(*(fn(*args) for args in items)))

    def work(ex: unirun.Executor | None) -> list[Any]:
        if ex is None:
            return asyncio.run(all_at_once())
        return list(ex.gather(*(ex.submit(fn, *args) for args in items)).result())

    return work


def on_every_kind(work: Work, *, io: bool = False, note: str = "") -> list[Contender]:
    """``work`` on each kind; for I/O, thread pools get 32 workers."""
    threads = {"max_workers": IO_WORKERS} if io else {}
    label = f" ({IO_WORKERS} workers)" if io else ""
    return [
        on(f"thread{label}{note}", "thread", work, **threads),
        on(f"process{note}", "process", work),
        on(f"coroutine{note}", "coroutine", work),
        on(f"auto{note}", "auto", work),
    ]


@dataclass
class Cell:
    """One contender's timings on one scenario."""

    label: str
    kind: str
    times: list[float] = field(default_factory=list)
    status: str = "ok"

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")


@dataclass
class Scenario:
    """One of the article's scenarios, with its advice and its right answer."""

    key: str
    title: str
    bound: str
    advice: str
    expected: list[Any]
    contenders: list[Contender]
    note: str = ""
    cells: list[Cell] = field(default_factory=list)

    def best(self) -> Cell:
        """The fastest cell, the serial loop included: no concurrency can win."""
        ok = [c for c in self.cells if c.status == "ok"]
        return min(ok, key=lambda c: c.median)
