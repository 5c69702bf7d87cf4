"""``python -m unirun demo``: the same workloads on every backend, side by side.

Each cell runs one workload on one backend twice, checks the results, and reports
the better wall time; the fastest backend of each row is marked, and so is the
backend the auto column chose.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import random
import socket
import socketserver
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from ._auto.classify import BUSY_MIN
from ._backends import load_backend

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ._auto.classify import Verdict
    from ._base import BaseExecutor

__all__ = ["WORKLOADS", "run_demo"]

KINDS = ("thread", "process", "coroutine", "auto")
#: The delay of the local server's replies (seconds).
SERVER_DELAY = 0.02
_server_port = 0


def count_primes(limit: int) -> int:
    """Pure-Python CPU work that holds the GIL."""
    return sum(
        1 for n in range(2, limit) if all(n % d for d in range(2, int(n**0.5) + 1))
    )


def hash_blob(rounds: int) -> str:
    """CPU work that releases the GIL (hashlib on a large buffer)."""
    data = b"x" * (1 << 20)
    digest = b""
    for _ in range(rounds):
        digest = hashlib.sha256(data + digest).digest()
    return digest.hex()


@functools.cache
def _buffer(size: int) -> bytes:
    return b"x" * size


def hash_8mib(seed: int) -> str:
    """A short GIL-releasing call: SHA-256 of 8 MiB (about 8 ms)."""
    digest = hashlib.sha256(_buffer(8 << 20))
    digest.update(bytes([seed % 256]))
    return digest.hexdigest()


@functools.cache
def _text(seed: int) -> bytes:
    line = b"the quick brown fox jumps over the lazy dog " * 20
    return (line + random.Random(seed).randbytes(200)) * 1000


def compress(seed: int) -> int:
    """A short GIL-releasing call: zlib over ~1 MB of text (a few ms)."""
    return len(zlib.compress(_text(seed % 4)))


def elementwise(seed: int) -> float:
    """A short GIL-releasing call: numpy ufuncs over 400k floats (about 5 ms)."""
    import numpy as np

    values = np.linspace(seed, seed + 1.0, 400_000)
    return float((np.exp(values) * np.sqrt(values)).sum())


def _has_numpy() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def blocking_io(delay: float) -> float:
    """A call that waits without using the CPU."""
    time.sleep(delay)
    return delay


async def async_io(delay: float) -> float:
    """A coroutine that waits without using the CPU."""
    await anyio.sleep(delay)
    return delay


def fetch(port: int) -> int:
    """Blocking socket I/O: ask the local server for a reply that comes late."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"ping\n")
        return len(conn.recv(64))


def mixed(limit: int) -> int:
    """Some pure-Python CPU work, then a blocking wait: a request handler's shape."""
    found = count_primes(limit)
    time.sleep(0.01)
    return found


class _Slow(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()
        time.sleep(SERVER_DELAY)
        self.wfile.write(b"pong\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


@contextlib.contextmanager
def _local_server() -> Iterator[int]:
    global _server_port
    with _Server(("127.0.0.1", 0), _Slow) as server:
        thread = threading.Thread(target=server.serve_forever, name="demo-server")
        thread.start()
        _server_port = server.server_address[1]
        try:
            yield _server_port
        finally:
            server.shutdown()
            thread.join()


def tiny(x: int) -> int:
    """A task too small to be worth sending anywhere."""
    return x + 1


# name -> (function, arguments per task)
WORKLOADS: dict[str, tuple[Callable[..., Any], Callable[[float], list[Any]]]] = {
    "pure-Python CPU": (count_primes, lambda s: [max(100, int(20_000 * s))] * 8),
    "GIL-releasing CPU": (hash_blob, lambda s: [max(1, int(20 * s))] * 8),
    "short GIL-free: hashlib": (hash_8mib, lambda s: list(range(max(4, int(16 * s))))),
    "short GIL-free: zlib": (compress, lambda s: list(range(max(4, int(16 * s))))),
    "blocking I/O sleep": (blocking_io, lambda s: [0.05] * max(2, int(40 * s))),
    "blocking I/O socket": (fetch, lambda s: [_server_port] * max(2, int(40 * s))),
    "async I/O": (async_io, lambda s: [0.05] * max(2, int(200 * s))),
    "tiny tasks": (tiny, lambda s: list(range(max(10, int(2_000 * s))))),
    "mixed CPU + wait": (mixed, lambda s: [max(100, int(5_000 * s))] * 16),
}
if _has_numpy():
    WORKLOADS["short GIL-free: numpy"] = (
        elementwise,
        lambda s: list(range(max(4, int(16 * s)))),
    )


def _run_cell(
    executor: BaseExecutor, fn: Callable[..., Any], items: list[Any]
) -> float:
    expected = None
    start = time.perf_counter()
    results = list(executor.map(fn, items, chunksize=None))
    elapsed = time.perf_counter() - start
    if fn is tiny:
        expected = [x + 1 for x in items]
    elif fn in (blocking_io, async_io):
        expected = items
    elif fn is fetch:
        expected = [5] * len(items)
    if expected is not None and results != expected:
        raise AssertionError(f"{fn.__name__} returned wrong results")
    if len(results) != len(items):
        raise AssertionError(f"{fn.__name__} lost results")
    return elapsed


def _chose(verdict: Verdict) -> str:
    """The auto column: the backend, and what the GIL test said if it ran."""
    if verdict.busy < BUSY_MIN or verdict.backend in ("coroutine", "inline"):
        return verdict.backend
    gil = {True: "GIL released", False: "GIL held", None: "GIL: could not tell"}
    return f"{verdict.backend} ({gil[verdict.releases_gil]})"


def _print_statistics(executors: dict[str, BaseExecutor], out: TextIO) -> None:
    """What each executor did in the demo: its :meth:`statistics` in a table."""
    print("\nstatistics() of each executor after the demo:", file=out)
    print(
        f"{'kind':<11}{'submitted':>10}{'done':>8}{'failed':>8}{'cancelled':>10}"
        f"{'workers':>9}{'started':>9}{'replaced':>9}{'busy s':>9}{'idle s':>9}",
        file=out,
    )
    for kind, executor in executors.items():
        stats = executor.statistics()
        busy = sum(w.busy_s for w in stats.workers)
        idle = sum(w.idle_s for w in stats.workers)
        print(
            f"{kind:<11}{stats.submitted:>10}{stats.done:>8}{stats.failed:>8}"
            f"{stats.cancelled:>10}{stats.workers_alive:>9}{stats.workers_started:>9}"
            f"{stats.workers_replaced:>9}{busy:>9.2f}{idle:>9.2f}",
            file=out,
        )


def run_demo(
    scale: float = 1.0, out: TextIO | None = None, *, stats: bool = False
) -> int:
    """Run every workload on every backend and print a table of wall times.

    With ``stats``, also print each executor's :meth:`statistics` at the end.
    """
    import sys

    from ._auto import AutoExecutor

    out = out or sys.stdout
    header = f"{'workload':<24}" + "".join(f"{kind:>13}" for kind in KINDS)
    print(header + "  auto chose", file=out)
    print("-" * (len(header) + 12), file=out)
    executors = {kind: load_backend(kind)() for kind in KINDS}
    try:
        with _local_server():
            for kind, executor in executors.items():  # start workers before timing
                if kind != "auto":
                    executor.submit(tiny, 0).result()
            for name, (fn, make_items) in WORKLOADS.items():
                items = make_items(scale)
                # Best of two runs: warm pools everywhere, and auto's verdict
                # from the first run cached for the second, as in a real program.
                times = {
                    kind: min(_run_cell(executor, fn, items) for _ in range(2))
                    for kind, executor in executors.items()
                }
                best = min(times.values())
                cells = "".join(
                    f"{t:>11.3f}s{'*' if t == best else ' '}" for t in times.values()
                )
                auto = executors["auto"]
                assert isinstance(auto, AutoExecutor)
                verdict = auto.explain(fn)
                chose = "?" if verdict is None else _chose(verdict)
                print(f"{name:<24}{cells}  {chose}", file=out)
        if stats:
            _print_statistics(executors, out)
    finally:
        for executor in executors.values():
            executor.shutdown()
    print("\n* fastest backend for the workload (best of two runs each)", file=out)
    print(
        "auto chose: the backend auto measured and picked, and for CPU-bound "
        "work what its GIL test saw; `python -m unirun profile module:function` "
        "explains one of your own.",
        file=out,
    )
    return 0
