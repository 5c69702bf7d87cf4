"""The tasks the benchmarks time: module-level functions, so every peer can pickle them.

Each task returns a value its workload can check, so a contender that skips the
work, or runs it twice, is caught rather than timed. Light imports only: this
module is loaded by every worker process of every pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import random
import time
import zlib

__all__ = [
    "compress",
    "echo",
    "echo_async",
    "elementwise",
    "fetch",
    "fetch_async",
    "hash_rounds",
    "mixed",
    "sleep_echo",
    "sleep_echo_async",
    "square",
    "sum_squares",
    "sum_squares_expected",
    "warm_up",
    "warm_up_async",
]


def echo(value: int) -> int:
    """Return ``value``: the no-op whose round trip is the per-task overhead."""
    return value


async def echo_async(value: int) -> int:
    """Return ``value`` from a coroutine: the async no-op."""
    return value


def square(value: int) -> int:
    """Return ``value * value``: the tiny item of the map workload."""
    return value * value


def sum_squares(start: int, count: int) -> int:
    """Return the sum of ``i * i`` for ``count`` integers from ``start``.

    A pure-Python loop: it holds the GIL the whole time, so only processes (or a
    free-threaded build) run several at once.
    """
    total = 0
    for i in range(start, start + count):
        total += i * i
    return total


def sum_squares_expected(start: int, count: int) -> int:
    """Return what :func:`sum_squares` returns, in closed form (to verify it)."""

    def up_to(n: int) -> int:  # sum of i * i for 0 <= i < n
        return (n - 1) * n * (2 * n - 1) // 6

    return up_to(start + count) - up_to(start)


def hash_rounds(seed: int, block: int, rounds: int) -> str:
    """Return the SHA-256 of ``rounds`` copies of a ``block``-byte buffer.

    hashlib releases the GIL while it hashes more than 2 KiB, so threads run
    this in parallel. The buffer is built here, not shipped: a process pool pays
    for the hashing, not for pickling megabytes.
    """
    buffer = bytes([seed % 256]) * block
    digest = hashlib.sha256()
    for _ in range(rounds):
        digest.update(buffer)
    return digest.hexdigest()


def compress(seed: int, copies: int) -> int:
    """Return the length of ``copies`` lines of text compressed by zlib.

    zlib releases the GIL while it compresses: a few ms of GIL-free work for
    ~1 MB. The text is built here, a line per seed, so that a process pool pays
    for the compression rather than for pickling a megabyte.
    """
    line = b"the quick brown fox jumps over the lazy dog " * 20
    text = (line + random.Random(seed).randbytes(200)) * copies
    return len(zlib.compress(text))


def elementwise(seed: int, count: int) -> float:
    """Return a checksum of numpy ufuncs over ``count`` floats (numpy required).

    numpy's ufunc loops release the GIL: ~5 ms of GIL-free work for 400k floats.
    """
    import numpy as np

    values = np.linspace(seed, seed + 1.0, count)
    return round(float((np.exp(values) * np.sqrt(values)).sum()), 3)


def sleep_echo(value: int, delay: float) -> int:
    """Block for ``delay`` seconds (blocking I/O stand-in), then return ``value``."""
    time.sleep(delay)
    return value


async def sleep_echo_async(value: int, delay: float) -> int:
    """Await ``delay`` seconds of asyncio sleep, then return ``value``."""
    await asyncio.sleep(delay)
    return value


def fetch(port: int, value: int) -> int:
    """GET ``/value`` from the local delay server and return the body as an int."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", f"/{value}")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET /{value} answered {response.status}")
    finally:
        connection.close()
    return int(body)


async def fetch_async(port: int, value: int) -> int:
    """Like :func:`fetch`, with asyncio streams: the GET never blocks the loop."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = f"GET /{value} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        writer.write(request.encode("ascii"))
        await writer.drain()
        response = await reader.read()  # HTTP/1.0: the server closes when done
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")):
        raise RuntimeError(f"GET /{value} answered {head[:40]!r}")
    return int(body)


def mixed(start: int, count: int, delay: float) -> int:
    """Compute like :func:`sum_squares`, then block ``delay`` seconds (a request
    handler's parse-then-wait shape); return the sum."""
    total = sum_squares(start, count)
    time.sleep(delay)
    return total


def warm_up(delay: float) -> int:
    """Sleep ``delay`` seconds and return the worker's pid (starts every worker)."""
    time.sleep(delay)
    return os.getpid()


async def warm_up_async(delay: float) -> int:
    """Async twin of :func:`warm_up`."""
    await asyncio.sleep(delay)
    return os.getpid()
