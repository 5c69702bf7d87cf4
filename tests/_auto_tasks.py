"""Module-level workloads for the auto-selection tests (importable by workers)."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
import zlib

import anyio

_BLOB = b"x" * (1 << 24)
_EIGHT_MIB = _BLOB[: 8 << 20]
# Compressible but not trivially: ~1 MB that zlib takes a few ms over.
_TEXT = (
    b"the quick brown fox jumps over the lazy dog " * 20
    + random.Random(0).randbytes(200)
) * 1000


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


def spin_carrying(cpu_s: float, payload: object = None) -> float:
    """Like :func:`spin`, with an argument to carry (one that may not pickle)."""
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


def sha256_8mib() -> int:
    """SHA-256 of 8 MiB: a few ms of CPU work with the GIL released."""
    return len(hashlib.sha256(_EIGHT_MIB).digest())


def compress() -> int:
    """zlib over ~1 MB: a few ms of CPU work with the GIL released."""
    return len(zlib.compress(_TEXT))


def numpy_elementwise() -> float:
    """numpy ufuncs over 400k floats: a few ms with the GIL released."""
    import numpy as np

    values = np.linspace(0.0, 1.0, 400_000)
    return float((np.exp(values) * np.sqrt(values))[-1])


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


def wait_for_event(
    started: threading.Event, release: threading.Event, value: int
) -> int:
    """Set ``started``, wait until ``release`` is set (threads only), return
    ``value``."""
    started.set()
    if not release.wait(60):
        raise TimeoutError("the test never set the event")
    return value


async def loop_thread() -> int:
    """Return the identity of the thread whose event loop runs this coroutine."""
    await anyio.sleep(0)
    return threading.get_ident()


def spin_in(cpu_s: float) -> tuple[float, int]:
    """Like :func:`spin`; also return the process id of where it ran."""
    return spin(cpu_s), os.getpid()


def pid_carrying(payload: object) -> int:
    """Return the process id of where it ran; ``payload`` may not pickle."""
    return os.getpid()


def nap_in(seconds: float) -> int:
    """Sleep ``seconds``; return the process id of where it ran."""
    time.sleep(seconds)
    return os.getpid()


def log_start(log: str, value: int) -> int:
    """Append ``value`` to the file ``log`` as the call starts (any process);
    return it."""
    with open(log, "a") as file:
        file.write(f"{value}\n")
    return value


async def async_log_start(log: str, value: int) -> int:
    """:func:`log_start`, as a coroutine."""
    await anyio.sleep(0)
    return log_start(log, value)
