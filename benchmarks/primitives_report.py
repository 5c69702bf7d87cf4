"""The primitives benchmark's targets and its page: tables, a reading, the context.

The targets are the issues' (#4, #12); :func:`markdown` writes
docs/benchmarks-primitives.md from the measured groups.
"""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.primitives_timed import Group

__all__ = ["Target", "load", "machine", "markdown", "table", "targets"]

TIMES = "\u00d7"
DASH = "\u2013"

# The issues' targets.
THREAD_WITHIN = 1.5  # thread-backend primitives: at most 1.5x the stdlib's time
PROCESS_QUEUE_WITHIN = 1.0  # process-backend queue: no slower than mp.Queue
MANAGER_FACTOR = 20.0  # process-backend lock: 20x faster than a Manager lock
DICT_FACTOR = 10.0  # process-backend dict: 10x faster than a Manager dict


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
    for key, label in (
        ("dict-process", "process Dict set+get, one thread,"),
        ("dict-writers", "process Dict filled by worker processes"),
    ):
        g = by_key[key]
        factor = g.row("Manager").median / g.row("unirun").median
        out.append(
            Target(
                f"{label} at least {DICT_FACTOR:g}{TIMES} faster than a Manager dict",
                f"{factor:.0f}{TIMES} faster",
                factor >= DICT_FACTOR,
            )
        )
    counter = by_key["counter"]
    total, runs = counter.rows[1].n, len(counter.rows[1].times)
    out.append(
        Target(
            "locked increments across processes exact",
            f"{total:,} of {total:,} in each of {runs} timed runs",
            True,  # a lost update fails the run itself
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


def load() -> list[float] | None:
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
        "load_before": load(),
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
    d, w = by_key["dict-process"], by_key["dict-writers"]
    parts.append(
        "The process-backend Dict takes no round trip to a server process: "
        f"a set+get costs {_ratio(d.ratio(d.rows[1]))} of a Manager dict's time "
        f"in one thread, and worker processes filling one dict store "
        f"{_rate(1 / w.rows[1].median)} items against {_rate(1 / w.rows[0].median)}."
    )
    c = by_key["counter"]
    parts.append(
        f"Locked increments across processes cost {_ratio(c.ratio(c.rows[1]))} "
        "of a multiprocessing.Value's time: a Dict write and a Lock per "
        "increment, against a word in shared memory, and every total was exact."
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
        "dict": "Dict",
        "counter": "Locked increments across processes",
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
        if section == "dict":
            lines += [
                "In one thread: `d[k] = v` then `d[k]` over 64 keys. Across "
                "processes: every worker of a warm pool fills its share of one "
                "fresh dict, as the `Manager().dict()` example does, and the "
                "parent reads it back; timed until the parent has checked it.",
                "",
            ]
        if section == "counter":
            lines += [
                "Each increment reads the counter, adds one and writes it back "
                "under the lock; a run whose total is off by one fails.",
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
