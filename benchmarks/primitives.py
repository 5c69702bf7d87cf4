"""Time unirun's primitives against the stdlib's: ``python benchmarks/primitives.py``.

Options: ``--quick`` (a smoke run, a tenth of the work), ``--repeat N`` (timed
runs per row, default 7), ``--size X`` (multiply every row's amount of work),
``--out FILE.json`` (the raw numbers; default benchmarks/results/), ``--page
FILE.md`` (default docs/benchmarks-primitives.md, written by full runs only) and
``--no-page``.

Each group of rows is measured side by side: every contender is warmed up once,
then the timed runs are interleaved (the order rotating each round), so a load
spike on a shared machine hits every contender of the group alike. Each row
reports the median, min and max of its runs and the ratio of its median time to
the group's stdlib reference (below 1 unirun is faster). The garbage collector
is off during a timed run.

    lock        uncontended acquire()+release() and ``with lock:``, one thread
    queue       put() then get() of one item, one thread (and the async forms)
    transfer    a producer task in a worker process puts N items, the parent
                gets them: items per second, submission of the task included
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures as cf
import contextlib
import datetime
import gc
import json
import math
import multiprocessing
import os
import platform
import queue
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator
    from multiprocessing.managers import SyncManager
    from multiprocessing.queues import Queue as MPQueue
    from types import TracebackType

    from unirun._base import BaseExecutor

__all__ = [
    "Group",
    "Row",
    "measure_all",
    "run",
    "targets",
]

ROOT = Path(__file__).resolve().parent.parent
TIMES = "\u00d7"
DASH = "\u2013"
Family = Literal["unirun", "stdlib"]

# Sizes of a full run (``--size 1``): operations per timed run.
N_LOCK = 200_000
N_LOCK_MANAGER = 2_000
N_QUEUE = 50_000
N_QUEUE_PROCESS = 10_000
N_QUEUE_MANAGER = 1_000
N_ASYNC = 50_000
N_TRANSFER_SMALL = 20_000
N_TRANSFER_LARGE = 4_000
LARGE_ITEM = 10 * 1024  # bytes

# The targets.
THREAD_WITHIN = 1.5  # thread-backend primitives: at most 1.5x the stdlib's time
PROCESS_QUEUE_WITHIN = 1.0  # process-backend queue: no slower than mp.Queue
MANAGER_FACTOR = 20.0  # process-backend lock: 20x faster than a Manager lock


# -- what is timed ---------------------------------------------------------------------


class _Lock(Protocol):
    def acquire(self) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
        /,
    ) -> None: ...


class _Queue(Protocol):
    def put(self, item: Any, /) -> None: ...
    def get(self) -> Any: ...


def _timed(loop: Callable[[int], None]) -> Callable[[int], float]:
    """Time ``loop(n)`` with the garbage collector off."""

    def runner(n: int) -> float:
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            loop(n)
            return time.perf_counter() - start
        finally:
            gc.enable()

    return runner


def lock_acquire_release(lock: _Lock) -> Callable[[int], float]:
    """``n`` times ``lock.acquire(); lock.release()``, methods looked up once."""

    def loop(n: int) -> None:
        acquire, release = lock.acquire, lock.release
        for _ in range(n):
            acquire()
            release()

    return _timed(loop)


def lock_with(lock: _Lock) -> Callable[[int], float]:
    """``n`` times ``with lock: pass``."""

    def loop(n: int) -> None:
        for _ in range(n):
            with lock:
                pass

    return _timed(loop)


def queue_round_trip(q: _Queue) -> Callable[[int], float]:
    """``n`` times ``q.put(i); q.get()`` in this thread; checks every item."""

    def loop(n: int) -> None:
        put, get = q.put, q.get
        for i in range(n):
            put(i)
            if get() != i:
                raise AssertionError(f"queue round trip lost item {i}")

    return _timed(loop)


class _AsyncQueue(Protocol):
    async def async_put(self, item: Any, /) -> None: ...
    async def async_get(self) -> Any: ...


def async_queue_round_trip(
    make: Callable[[], _AsyncQueue | asyncio.Queue[int]],
) -> Callable[[int], float]:
    """``n`` times ``await put(i); await get()`` inside one ``asyncio.run``.

    The queue is made inside the loop (``asyncio.Queue`` binds to it); the
    loop's start and close are not timed.
    """

    async def main(n: int) -> float:
        q = make()
        put: Callable[[int], Awaitable[None]]
        get: Callable[[], Awaitable[Any]]
        if isinstance(q, asyncio.Queue):
            put, get = q.put, q.get
        else:
            put, get = q.async_put, q.async_get
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for i in range(n):
                await put(i)
                if await get() != i:
                    raise AssertionError(f"async round trip lost item {i}")
            return time.perf_counter() - start
        finally:
            gc.enable()

    return lambda n: asyncio.run(main(n))


def async_lock_with(
    make: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
) -> Callable[[int], float]:
    """``n`` times ``async with lock: pass`` inside one ``asyncio.run``."""

    async def main(n: int) -> float:
        lock = make()
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(n):
                async with lock:
                    pass
            return time.perf_counter() - start
        finally:
            gc.enable()

    return lambda n: asyncio.run(main(n))


def _payload(size: int) -> bytes:
    return b"x" * size


def produce(q: _Queue, n: int, size: int) -> int:
    """A task for a worker process: put ``n`` items (ints, or bytes of ``size``)."""
    if size:
        item = _payload(size)
        for _ in range(n):
            q.put(item)
    else:
        for i in range(n):
            q.put(i)
    return n


_installed: Any = None  # the multiprocessing.Queue of a ProcessPoolExecutor worker


def install_queue(q: Any) -> None:
    """ProcessPoolExecutor initializer: keep the queue it was started with."""
    global _installed
    _installed = q


def produce_installed(n: int, size: int) -> int:
    """:func:`produce` onto the queue :func:`install_queue` kept."""
    return produce(_installed, n, size)


def transfer(
    submit: Callable[[int, int], cf.Future[int]], q: _Queue, size: int
) -> Callable[[int], float]:
    """Submit a producer of ``n`` items to a warm worker; get them all here.

    Timed from the submission to the task's result, after the last item.
    """

    def wake_if_failed(future: cf.Future[int]) -> None:
        if future.exception() is not None:
            q.put(None)  # the producer failed: unblock the get() below

    def loop(n: int) -> None:
        future = submit(n, size)
        future.add_done_callback(wake_if_failed)
        get = q.get
        if size:
            for _ in range(n):
                item = get()
                if item is None or len(item) != size:
                    future.result(timeout=60)  # raises the producer's error, if any
                    raise AssertionError("an item arrived damaged")
        else:
            for i in range(n):
                if get() != i:
                    future.result(timeout=60)
                    raise AssertionError(f"item {i} arrived out of order")
        if future.result(timeout=60) != n:
            raise AssertionError("the producer put the wrong count")

    return _timed(loop)


# -- rows and groups -------------------------------------------------------------------


@dataclass
class Row:
    """One contender of a group: its timed runs."""

    label: str
    family: Family
    n: int
    times: list[float] = field(default_factory=list)

    @property
    def per_op(self) -> list[float]:
        """Seconds per operation (per item), one per timed run."""
        return [t / self.n for t in self.times]

    @property
    def median(self) -> float:
        """Median seconds per operation."""
        return statistics.median(self.per_op)


@dataclass
class Group:
    """Rows measured side by side; the first row is the stdlib reference."""

    key: str
    section: str
    title: str
    unit: Literal["op", "item"]
    rows: list[Row]

    @property
    def reference(self) -> Row:
        """The stdlib row the ratios divide by."""
        return self.rows[0]

    def ratio(self, row: Row) -> float:
        """``row``'s median time over the reference's (below 1: faster)."""
        return row.median / self.reference.median

    def row(self, label_start: str) -> Row:
        """The row whose label starts with ``label_start``."""
        return next(r for r in self.rows if r.label.startswith(label_start))

    def as_dict(self) -> dict[str, Any]:
        """The group as JSON: every run's time, medians and ratios."""
        return {
            "key": self.key,
            "section": self.section,
            "title": self.title,
            "unit": self.unit,
            "rows": [
                {
                    **asdict(r),
                    "per_op_s": r.per_op,
                    "median_s": r.median,
                    "min_s": min(r.per_op),
                    "max_s": max(r.per_op),
                    "ratio": self.ratio(r),
                }
                for r in self.rows
            ],
        }


def measure(group: Group, runners: list[Callable[[int], float]], repeat: int) -> Group:
    """Warm every runner up, then interleave ``repeat`` timed runs of each."""
    for row, runner in zip(group.rows, runners, strict=True):
        runner(max(1, row.n // 10))
        runner(max(1, row.n // 10))
    order = list(range(len(runners)))
    for round_ in range(repeat):
        shift = round_ % len(order)
        for index in order[shift:] + order[:shift]:
            row = group.rows[index]
            elapsed = runners[index](row.n)
            if not (elapsed > 0 and math.isfinite(elapsed)):
                raise AssertionError(f"{row.label}: timed {elapsed!r}")
            row.times.append(elapsed)
    return group


def _n(full: int, scale: float) -> int:
    return max(1, round(full * scale))


def _warm(executor: BaseExecutor | cf.Executor) -> None:
    """Start every worker of a pool (one here) before anything is timed."""
    executor.submit(int, 0).result(timeout=60)


def _lock_groups(
    stack: contextlib.ExitStack, manager: SyncManager, scale: float, repeat: int
) -> Iterator[Group]:
    import unirun

    thread_ex = stack.enter_context(unirun.ThreadExecutor(max_workers=1))
    process_ex = stack.enter_context(unirun.ProcessExecutor(max_workers=1))
    n, n_manager = _n(N_LOCK, scale), _n(N_LOCK_MANAGER, scale)
    for how, make_runner in (
        ("acquire()+release()", lock_acquire_release),
        ("with lock:", lock_with),
    ):
        key = "acquire-release" if how.startswith("acq") else "with"
        threads = Group(
            f"lock-thread-{key}",
            "lock",
            f"Lock, uncontended `{how}`: thread backend",
            "op",
            [
                Row("threading.Lock", "stdlib", n),
                Row("unirun thread Lock", "unirun", n),
            ],
        )
        yield measure(
            threads,
            [make_runner(threading.Lock()), make_runner(thread_ex.Lock())],
            repeat,
        )
        processes = Group(
            f"lock-process-{key}",
            "lock",
            f"Lock, uncontended `{how}`: process backend",
            "op",
            [
                Row("multiprocessing.Lock", "stdlib", n),
                Row("unirun process Lock", "unirun", n),
                Row("Manager().Lock", "stdlib", n_manager),
            ],
        )
        yield measure(
            processes,
            [
                make_runner(multiprocessing.Lock()),
                make_runner(process_ex.Lock()),
                make_runner(manager.Lock()),
            ],
            repeat,
        )


def _queue_groups(
    stack: contextlib.ExitStack, manager: SyncManager, scale: float, repeat: int
) -> Iterator[Group]:
    import unirun

    thread_ex = stack.enter_context(unirun.ThreadExecutor(max_workers=1))
    coroutine_ex = stack.enter_context(unirun.CoroutineExecutor())
    process_ex = stack.enter_context(unirun.ProcessExecutor(max_workers=1))
    n = _n(N_QUEUE, scale)
    yield measure(
        Group(
            "queue-thread",
            "queue",
            "Queue, `put(x)` then `get()` in one thread: thread backend",
            "op",
            [Row("queue.Queue", "stdlib", n), Row("unirun thread Queue", "unirun", n)],
        ),
        [queue_round_trip(queue.Queue()), queue_round_trip(thread_ex.Queue())],
        repeat,
    )
    n, n_manager = _n(N_QUEUE_PROCESS, scale), _n(N_QUEUE_MANAGER, scale)
    mp_queue: MPQueue[int] = multiprocessing.Queue()
    stack.callback(mp_queue.join_thread)  # its feeder thread must end
    stack.callback(mp_queue.close)
    yield measure(
        Group(
            "queue-process",
            "queue",
            "Queue, `put(x)` then `get()` in one thread: process backend",
            "op",
            [
                Row("multiprocessing.Queue", "stdlib", n),
                Row("unirun process Queue", "unirun", n),
                Row("Manager().Queue", "stdlib", n_manager),
            ],
        ),
        [
            queue_round_trip(mp_queue),
            queue_round_trip(process_ex.Queue()),
            queue_round_trip(manager.Queue()),
        ],
        repeat,
    )
    n = _n(N_ASYNC, scale)
    yield measure(
        Group(
            "queue-async",
            "queue",
            "Queue, `await async_put(x)` then `await async_get()`: coroutine backend",
            "op",
            [
                Row("asyncio.Queue (put/get)", "stdlib", n),
                Row("unirun coroutine Queue", "unirun", n),
            ],
        ),
        [
            async_queue_round_trip(asyncio.Queue),
            async_queue_round_trip(coroutine_ex.Queue),
        ],
        repeat,
    )
    yield measure(
        Group(
            "lock-async",
            "lock",
            "Lock, uncontended `async with lock:`: coroutine backend",
            "op",
            [
                Row("asyncio.Lock", "stdlib", n),
                Row("unirun coroutine Lock", "unirun", n),
            ],
        ),
        [async_lock_with(asyncio.Lock), async_lock_with(coroutine_ex.Lock)],
        repeat,
    )


def _transfer_groups(
    stack: contextlib.ExitStack, scale: float, repeat: int
) -> Iterator[Group]:
    import unirun
    from unirun._backends.process import default_context

    context = default_context()  # forkserver on Linux: both pools start alike
    unirun_ex = stack.enter_context(unirun.ProcessExecutor(max_workers=1))
    unirun_queue = unirun_ex.Queue()
    mp_queue: MPQueue[Any] = context.Queue()
    stack.callback(mp_queue.join_thread)
    stack.callback(mp_queue.close)
    pool = stack.enter_context(
        cf.ProcessPoolExecutor(
            1, mp_context=context, initializer=install_queue, initargs=(mp_queue,)
        )
    )
    _warm(unirun_ex)
    _warm(pool)

    def submit_unirun(n: int, size: int) -> cf.Future[int]:
        return unirun_ex.submit(produce, unirun_queue, n, size)

    def submit_pool(n: int, size: int) -> cf.Future[int]:
        return pool.submit(produce_installed, n, size)

    for size, full in ((0, N_TRANSFER_SMALL), (LARGE_ITEM, N_TRANSFER_LARGE)):
        n = _n(full, scale)
        what = "small items (ints)" if not size else f"{size // 1024} KB items"
        yield measure(
            Group(
                f"transfer-{'small' if not size else 'large'}",
                "transfer",
                f"Worker process puts N {what}, the parent gets them",
                "item",
                [
                    Row("multiprocessing.Queue (ProcessPoolExecutor)", "stdlib", n),
                    Row("unirun process Queue (ProcessExecutor)", "unirun", n),
                ],
            ),
            [
                transfer(submit_pool, mp_queue, size),
                transfer(submit_unirun, unirun_queue, size),
            ],
            repeat,
        )


def measure_all(scale: float = 1.0, repeat: int = 7) -> list[Group]:
    """Measure every group; every pool, Manager and queue is closed on return."""
    groups: list[Group] = []
    with contextlib.ExitStack() as stack:
        manager = stack.enter_context(multiprocessing.Manager())
        groups += _lock_groups(stack, manager, scale, repeat)
        groups += _queue_groups(stack, manager, scale, repeat)
        groups += _transfer_groups(stack, scale, repeat)
        gc.collect()  # drop Manager proxies while their Manager still runs
    return groups


# -- targets ---------------------------------------------------------------------------


@dataclass
class Target:
    """One of the issue's targets and whether this run met it."""

    name: str
    measured: str
    met: bool


def targets(groups: list[Group]) -> list[Target]:
    """Check the issue's targets against the medians."""
    by_key = {g.key: g for g in groups}
    out = []
    for key, label in (
        ("lock-thread-acquire-release", "thread Lock acquire()+release()"),
        ("lock-thread-with", "thread Lock `with`"),
        ("queue-thread", "thread Queue put+get"),
    ):
        g = by_key[key]
        ratio = g.ratio(g.rows[1])
        out.append(
            Target(
                f"{label} within {THREAD_WITHIN:g}{TIMES} of the stdlib's time",
                f"{ratio:.2f}{TIMES}",
                ratio <= THREAD_WITHIN,
            )
        )
    for key, label in (
        ("queue-process", "process Queue put+get, one thread"),
        ("transfer-small", "process Queue cross-process, small items"),
        ("transfer-large", "process Queue cross-process, 10 KB items"),
    ):
        g = by_key[key]
        ratio = g.ratio(g.rows[1])
        out.append(
            Target(
                f"{label} at least as fast as multiprocessing.Queue",
                f"{ratio:.2f}{TIMES} its time",
                ratio <= PROCESS_QUEUE_WITHIN,
            )
        )
    for key, label in (
        ("lock-process-acquire-release", "process Lock acquire()+release()"),
        ("lock-process-with", "process Lock `with`"),
    ):
        g = by_key[key]
        factor = g.row("Manager").median / g.row("unirun").median
        out.append(
            Target(
                f"{label} at least {MANAGER_FACTOR:g}{TIMES} faster than a "
                "Manager lock",
                f"{factor:.0f}{TIMES} faster",
                factor >= MANAGER_FACTOR,
            )
        )
    return out


# -- the report ------------------------------------------------------------------------


def _seconds(seconds: float) -> str:
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= factor or unit == "ns":
            value = seconds / factor
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def _rate(per_second: float) -> str:
    if per_second >= 1e6:
        return f"{per_second / 1e6:.3g} M/s"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.3g} k/s"
    return f"{per_second:.3g} /s"


def _ratio(value: float) -> str:
    return f"{value:.2f}{TIMES}" if value < 10 else f"{value:.0f}{TIMES}"


def table(group: Group) -> list[str]:
    """The group as a markdown table."""
    lines = [f"**{group.title}**", ""]
    if group.unit == "op":
        lines += [
            f"| contender | per op (median) | min {DASH} max | {TIMES} ref time | "
            "ops per run |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for r in group.rows:
            label = f"**{r.label}**" if r.family == "unirun" else r.label
            lines.append(
                f"| {label} | {_seconds(r.median)} | {_seconds(min(r.per_op))} "
                f"{DASH} {_seconds(max(r.per_op))} | {_ratio(group.ratio(r))} "
                f"| {r.n:,} |"
            )
    else:
        lines += [
            f"| contender | items/s (median) | min {DASH} max | per item | "
            f"{TIMES} ref time | items per run |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in group.rows:
            label = f"**{r.label}**" if r.family == "unirun" else r.label
            lines.append(
                f"| {label} | {_rate(1 / r.median)} | {_rate(1 / max(r.per_op))} "
                f"{DASH} {_rate(1 / min(r.per_op))} | {_seconds(r.median)} "
                f"| {_ratio(group.ratio(r))} | {r.n:,} |"
            )
    return [*lines, ""]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine() -> dict[str, Any]:
    """Where and when the run happens."""
    import unirun

    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True),
        "unirun": getattr(unirun, "__version__", "source"),
        "load_before": _load(),
    }


def _reading(groups: list[Group], checks: list[Target]) -> str:
    """One paragraph on what the numbers say, misses first."""
    by_key = {g.key: g for g in groups}
    missed = [t for t in checks if not t.met]
    parts = []
    if missed:
        parts.append(
            f"{len(missed)} of {len(checks)} targets missed: "
            + "; ".join(f"{t.name} ({t.measured})" for t in missed)
            + "."
        )
    else:
        parts.append(f"All {len(checks)} targets met.")
    lock_misses = [t for t in missed if "thread Lock" in t.name]
    if lock_misses:
        parts.append(
            "The thread-backend Lock's acquire() is threading's own C method, "
            "but its release(), __enter__ and __exit__ are Python methods that "
            "also check for event-loop waiters (a Python-level __bool__ call), "
            "so an uncontended acquire+release costs about two Python calls more "
            "than threading.Lock's; a contended or blocking use hides that."
        )
    q = by_key["queue-thread"]
    parts.append(
        f"The thread-backend Queue is a queue.Queue subclass and costs "
        f"{_ratio(q.ratio(q.rows[1]))} of its time per put+get."
    )
    a = by_key["queue-async"]
    parts.append(
        f"Its async face costs {_ratio(a.ratio(a.rows[1]))} of asyncio.Queue's "
        "time (no target: it also wakes waiters in other threads and loops)."
    )
    p = by_key["queue-process"]
    parts.append(
        f"The process-backend Queue needs no feeder thread: one put+get in one "
        f"thread costs {_ratio(p.ratio(p.rows[1]))} of multiprocessing.Queue's "
        f"time and {_ratio(p.ratio(p.rows[1]) / p.ratio(p.rows[2]))} of a "
        "Manager queue's."
    )
    s, big = by_key["transfer-small"], by_key["transfer-large"]
    parts.append(
        f"Across processes it moves small items at "
        f"{_rate(1 / s.rows[1].median)} against {_rate(1 / s.rows[0].median)} and "
        f"10 KB items at {_rate(1 / big.rows[1].median)} against "
        f"{_rate(1 / big.rows[0].median)}."
    )
    lock = by_key["lock-process-acquire-release"]
    parts.append(
        f"The process-backend Lock is one named OS semaphore: "
        f"{_ratio(lock.ratio(lock.rows[1]))} of multiprocessing.Lock's time "
        "(a Python wrapper around the same SemLock) and far from a Manager "
        "lock's round trips to a server process."
    )
    parts.append(
        "The machine is shared: compare rows within a group (measured "
        "interleaved), and mind the min/max spread."
    )
    return " ".join(parts)


def markdown(groups: list[Group], checks: list[Target], meta: dict[str, Any]) -> str:
    """The page: context, tables, targets, how to reproduce, a reading."""
    sections = {
        "lock": "Uncontended locks (one thread, nothing waiting)",
        "queue": "Queue round trip in one thread",
        "transfer": "Cross-process queue throughput",
    }
    lines = [
        "# Benchmarks: primitives",
        "",
        f"Generated by `{meta['command']}` on {meta['date']}: {meta['nproc']} CPUs "
        f"({meta['cpu']}), {meta['python']} on {meta['platform']}. Load average "
        f"(1, 5, 15 min) before the run: {meta['load_before']}, after: "
        f"{meta['load_after']}; the machine is shared with other work.",
        "",
        f"Each row: median of {meta['repeat']} timed runs after two warm-up runs, "
        f"min {DASH} max beside it; the runs of a group's rows are interleaved. "
        f"**{TIMES} ref time** divides a row's median time per operation by the "
        "group's first row, the stdlib reference: below 1 unirun is faster. "
        "The garbage collector is off during a timed run. unirun rows in bold.",
        "",
    ]
    for section, heading in sections.items():
        lines += [f"## {heading}", ""]
        if section == "transfer":
            lines += [
                "A producer task in an already started worker process "
                "(one worker, forkserver, for both pools) puts N items; the "
                "parent gets and checks them. Timed from the submission to the "
                "task's result. multiprocessing.Queue reaches the worker as a "
                "ProcessPoolExecutor initializer argument; unirun's queue as "
                "a task argument.",
                "",
            ]
        for group in groups:
            if group.section == section:
                lines += table(group)
    lines += ["## Targets", ""]
    lines += [
        f"- {'met' if t.met else '**missed**'}: {t.name}: {t.measured}" for t in checks
    ]
    lines += [
        "",
        "## Reading",
        "",
        _reading(groups, checks),
        "",
        "## Reproduce",
        "",
        "```sh",
        "python benchmarks/primitives.py           # about a minute; rewrites this"
        " page",
        "python benchmarks/primitives.py --quick   # smoke run, a few seconds",
        "python benchmarks/primitives.py --repeat 9 --out /tmp/primitives.json",
        "```",
        "",
    ]
    if meta["leftovers"]["threads"] or meta["leftovers"]["processes"]:
        lines += [
            f"Still alive after the run (should be none): {meta['leftovers']}.",
            "",
        ]
    return "\n".join(lines)


def _leftovers(grace_s: float = 3.0) -> dict[str, list[str]]:
    """Threads and child processes still alive (none should be)."""
    deadline = time.monotonic() + grace_s
    while True:
        threads = [
            t.name
            for t in threading.enumerate()
            if t is not threading.main_thread() and t.is_alive()
        ]
        children = [p.name for p in multiprocessing.active_children()]
        if (not threads and not children) or time.monotonic() > deadline:
            return {"threads": threads, "processes": children}
        time.sleep(0.05)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/primitives.py",
        description="Time unirun's queues and locks side by side with the stdlib's.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: --size 0.1 unless given"
    )
    parser.add_argument(
        "--repeat", type=int, default=None, metavar="N", help="timed runs per row (7)"
    )
    parser.add_argument(
        "--size", type=float, default=None, metavar="X", help="scale every row's work"
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="FILE.json", help="raw numbers here"
    )
    parser.add_argument(
        "--page",
        type=Path,
        default=None,
        metavar="FILE.md",
        help="write the page here (default: docs/benchmarks-primitives.md, full "
        "runs only)",
    )
    parser.add_argument("--no-page", action="store_true", help="write no page")
    args = parser.parse_args(argv)
    if args.size is None:
        args.size = 0.1 if args.quick else 1.0
    if args.repeat is None:
        args.repeat = 5 if args.quick else 7
    if args.size <= 0 or args.repeat < 1:
        parser.error("--size must be > 0 and --repeat >= 1")
    return args


def run(argv: list[str] | None = None) -> int:
    """Measure, print the tables and targets, write the JSON and the page."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    meta = machine()
    meta["command"] = " ".join(["python benchmarks/primitives.py", *argv])
    meta["repeat"] = args.repeat
    meta["size"] = args.size
    started = time.perf_counter()
    groups = measure_all(args.size, args.repeat)
    meta["elapsed_s"] = round(time.perf_counter() - started, 1)
    meta["leftovers"] = _leftovers()
    meta["load_after"] = _load()
    checks = targets(groups)
    page = markdown(groups, checks, meta)
    print(page)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or ROOT / "benchmarks" / "results" / f"primitives-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "meta": meta,
        "groups": [g.as_dict() for g in groups],
        "targets": [asdict(t) for t in checks],
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    written = [str(out)]
    full = not args.quick and args.size == 1.0
    if not args.no_page and (args.page is not None or full):
        page_path: Path = args.page or ROOT / "docs" / "benchmarks-primitives.md"
        page_path.write_text(page)
        written.append(str(page_path))
    print(f"wrote {' and '.join(written)} in {meta['elapsed_s']} s", file=sys.stderr)
    return 1 if meta["leftovers"]["threads"] or meta["leftovers"]["processes"] else 0


def _main() -> int:
    # As in run.py: run as a script, sys.path[0] is benchmarks/ itself; put the
    # repository root there so this module imports as benchmarks.primitives in
    # this process and in every worker (which must import produce()).
    root = str(ROOT)
    here = Path(__file__).resolve().parent
    if sys.path and Path(sys.path[0]).resolve() == here:
        sys.path[0] = root
    elif root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks.primitives import run as run_

    return run_()


if __name__ == "__main__":
    raise SystemExit(_main())
