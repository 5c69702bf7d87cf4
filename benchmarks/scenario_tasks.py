"""What the scenarios of ``benchmarks/scenarios.py`` run, importable by workers."""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    import unirun


def fetch_blocking(port: int, n: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{n}", timeout=30) as reply:
        return int(reply.read())


async def fetch_async(port: int, n: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /{n} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
    reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(reply.rsplit(b"\r\n\r\n", 1)[1])


def cpu_part(n: int) -> int:
    return sum(i * i for i in range(n))


async def handle_inline(i: int, cpu: int) -> int:
    """A request handler doing everything itself: await, compute, block."""
    await asyncio.sleep(0.01)  # the database, asynchronously
    cpu_part(cpu)  # rendering, in pure Python
    time.sleep(0.005)  # noqa: ASYNC251  # a blocking client library: the point
    return i


async def handle_offloaded(
    i: int, cpu: int, processes: unirun.Executor, threads: unirun.Executor
) -> int:
    """The same handler, handing CPU work to processes and blocking to threads."""
    await asyncio.sleep(0.01)
    await processes.submit(cpu_part, cpu)
    await threads.submit(time.sleep, 0.005)
    return i


def count_words(path: str) -> tuple[int, int]:
    words = Path(path).read_text().split()
    counts = Counter(word.strip(".,").lower() for word in words)
    return len(words), len(counts)


def train(seed: int, steps: int) -> float:
    import numpy as np  # imported here: numpy is optional (the examples extra)

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1_000, 32))
    y = np.tanh(x @ rng.standard_normal((32, 1)))
    w1, w2 = rng.standard_normal((32, 64)) * 0.1, rng.standard_normal((64, 1)) * 0.1
    for _ in range(steps):
        hidden = np.maximum(x @ w1, 0.0)
        error = hidden @ w2 - y
        w2 -= 0.05 * hidden.T @ error / len(x)
        w1 -= 0.05 * x.T @ ((error @ w2.T) * (hidden > 0)) / len(x)
    return float(np.mean((np.maximum(x @ w1, 0.0) @ w2 - y) ** 2))


def file_round_trip(folder: str, n: int) -> int:
    path = Path(folder) / f"f{n}.txt"
    path.write_text(str(n) * 4096)
    return len(path.read_text())


async def file_round_trip_async(folder: str, n: int) -> int:
    path = anyio.Path(folder) / f"f{n}.txt"
    await path.write_text(str(n) * 4096)
    return len(await path.read_text())


def noop() -> None:
    return None


BLAS_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def one_blas_thread() -> None:
    """Worker initializer: one BLAS thread, set before numpy loads its BLAS."""
    for name in BLAS_VARIABLES:
        os.environ[name] = "1"
