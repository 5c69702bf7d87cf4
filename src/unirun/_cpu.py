"""How many CPUs this process may really use: affinity and cgroup CPU quota."""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = [
    "cgroup_cpu_limit",
    "default_thread_workers",
    "stdlib_cpu_count",
    "usable_cpus",
]


def stdlib_cpu_count() -> int:
    """The CPU count this Python's ``concurrent.futures`` sizes its pools with.

    ``os.process_cpu_count()`` on 3.13+ (the affinity mask), ``os.cpu_count()``
    before: drop-in defaults follow the running version exactly.
    """
    process_cpu_count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    count = process_cpu_count() if process_cpu_count else os.cpu_count()
    return count or 1


def default_thread_workers() -> int:
    """The stdlib's default thread count: ``min(32, CPUs + 4)``."""
    return min(32, stdlib_cpu_count() + 4)


def _affinity_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return stdlib_cpu_count()


def _quota(quota: float, period: float) -> float | None:
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """Return the cgroup CPU quota of this process in CPUs, or ``None`` if unlimited.

    Reads cgroup v2 ``cpu.max`` and cgroup v1 ``cpu.cfs_quota_us`` /
    ``cpu.cfs_period_us``, in this process's own cgroup when it is visible and at
    the mount root otherwise. Never raises: an unreadable file means no limit.
    """
    candidates: list[Path] = []
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "" or "cpu" in controllers.split(","):
                sub = root / path.lstrip("/")
                candidates += [sub, root / "cpu" / path.lstrip("/")]
    except (OSError, ValueError):
        pass
    candidates += [root, root / "cpu"]
    for directory in candidates:
        try:
            fields = (directory / "cpu.max").read_text().split()
        except OSError:
            pass
        else:
            if not fields or fields[0] == "max":
                return None
            try:
                return _quota(float(fields[0]), float(fields[1]))
            except (IndexError, ValueError):
                return None
        try:
            quota = float((directory / "cpu.cfs_quota_us").read_text())
            period = float((directory / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return _quota(quota, period)
    return None


def usable_cpus() -> int:
    """Return how many CPUs this process may really keep busy, at least 1.

    This is the smaller of the CPUs in the affinity mask and the cgroup CPU quota
    (rounded up), unlike :func:`os.cpu_count`, which counts the whole machine.
    """
    count = _affinity_cpus()
    limit = cgroup_cpu_limit()
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return max(1, count)
