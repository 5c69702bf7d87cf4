"""Module-level workloads for the auto-selection tests (importable by workers)."""

from __future__ import annotations

import hashlib
import time

import anyio

_BLOB = b"x" * (1 << 24)


def spin(cpu_s: float) -> float:
    """Pure-Python CPU work holding the GIL until this thread used ``cpu_s``."""
    start = time.thread_time()
    n = 0
    while time.thread_time() - start < cpu_s:
        n += 1
    return cpu_s


def spin_or_not(cpu_s: float) -> float:
    """Like :func:`spin`; a separate function so that its verdict starts empty."""
    return spin(cpu_s)


def nap(seconds: float) -> float:
    """Block without using the CPU."""
    time.sleep(seconds)
    return seconds


def hash_blob(rounds: int) -> int:
    """SHA-256 over a 16 MiB buffer: CPU work that releases the GIL."""
    for _ in range(rounds):
        hashlib.sha256(_BLOB).digest()
    return rounds


async def async_nap(seconds: float) -> float:
    """Wait on the event loop."""
    await anyio.sleep(seconds)
    return seconds


async def blocks_loop(seconds: float) -> float:
    """A coroutine that blocks its event loop (a sync sleep between awaits)."""
    await anyio.sleep(0)
    time.sleep(seconds)
    return seconds


def plus_one(x: int) -> int:
    """A task far too small for any hand-off."""
    return x + 1
