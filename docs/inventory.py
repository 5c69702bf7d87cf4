"""Write ``python-objects.inv``: the Python docs' names these docs link to.

Sphinx resolves ``concurrent.futures.Future`` and the like through an
intersphinx inventory. The full one lives on docs.python.org; builds here must
not need the network, so this script writes a small one with just the names
the pages and docstrings use, pointing at docs.python.org, and reads it back
with ``sphinx.util.inventory`` to check it. Add a name here when a page needs
it, then run ``python docs/inventory.py``.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

from sphinx.util.inventory import InventoryFile

BASE = "https://docs.python.org/3"
OUT = Path(__file__).with_name("python-objects.inv")

#: page (under library/) -> {role: [names]}; each name is its own anchor.
NAMES: dict[str, dict[str, list[str]]] = {
    "concurrent.futures": {
        "module": ["concurrent.futures"],
        "class": [
            "concurrent.futures.Executor",
            "concurrent.futures.ThreadPoolExecutor",
            "concurrent.futures.ProcessPoolExecutor",
            "concurrent.futures.Future",
        ],
        "method": [
            "concurrent.futures.Executor.submit",
            "concurrent.futures.Executor.map",
            "concurrent.futures.Executor.shutdown",
            "concurrent.futures.Future.result",
            "concurrent.futures.Future.exception",
            "concurrent.futures.Future.cancel",
            "concurrent.futures.Future.done",
            "concurrent.futures.Future.add_done_callback",
            "concurrent.futures.ProcessPoolExecutor.terminate_workers",
            "concurrent.futures.ProcessPoolExecutor.kill_workers",
        ],
        "function": ["concurrent.futures.wait", "concurrent.futures.as_completed"],
        "data": [
            "concurrent.futures.FIRST_COMPLETED",
            "concurrent.futures.FIRST_EXCEPTION",
            "concurrent.futures.ALL_COMPLETED",
        ],
        "exception": [
            "concurrent.futures.CancelledError",
            "concurrent.futures.TimeoutError",
            "concurrent.futures.BrokenExecutor",
            "concurrent.futures.InvalidStateError",
            "concurrent.futures.thread.BrokenThreadPool",
            "concurrent.futures.process.BrokenProcessPool",
        ],
    },
    "asyncio-task": {
        "function": [
            "asyncio.gather",
            "asyncio.create_task",
            "asyncio.sleep",
            "asyncio.to_thread",
            "asyncio.wait_for",
            "asyncio.timeout",
            "asyncio.run_coroutine_threadsafe",
        ],
        "class": ["asyncio.Task", "asyncio.TaskGroup"],
    },
    "asyncio-runner": {"function": ["asyncio.run"]},
    "asyncio-future": {"function": ["asyncio.wrap_future"]},
    "asyncio-eventloop": {"method": ["asyncio.loop.run_in_executor"]},
    "asyncio-queue": {"class": ["asyncio.Queue"]},
    "asyncio-sync": {
        "class": ["asyncio.Lock", "asyncio.Event", "asyncio.Semaphore"],
    },
    "asyncio-exceptions": {"exception": ["asyncio.CancelledError"]},
    "asyncio": {"module": ["asyncio"]},
    "threading": {
        "module": ["threading"],
        "class": [
            "threading.Thread",
            "threading.Lock",
            "threading.RLock",
            "threading.Condition",
            "threading.Semaphore",
            "threading.BoundedSemaphore",
            "threading.Event",
            "threading.Barrier",
            "threading.Timer",
        ],
        "method": [
            "threading.Lock.acquire",
            "threading.Lock.release",
            "threading.Semaphore.acquire",
            "threading.Event.wait",
        ],
        "exception": ["threading.BrokenBarrierError"],
    },
    "queue": {
        "module": ["queue"],
        "class": ["queue.Queue"],
        "method": [
            "queue.Queue.get",
            "queue.Queue.put",
            "queue.Queue.task_done",
            "queue.Queue.join",
            "queue.Queue.shutdown",
        ],
        "exception": ["queue.Empty", "queue.Full", "queue.ShutDown"],
    },
    "multiprocessing": {
        "module": ["multiprocessing"],
        "class": [
            "multiprocessing.Process",
            "multiprocessing.Queue",
            "multiprocessing.pool.Pool",
        ],
        "method": ["multiprocessing.pool.Pool.map"],
        "function": ["multiprocessing.Manager"],
    },
    "pickle": {"exception": ["pickle.PicklingError"]},
    "os": {"function": ["os.cpu_count", "os.sched_getaffinity"]},
    "time": {"function": ["time.thread_time", "time.perf_counter"]},
    "typing": {"class": ["typing.Protocol"]},
    "collections.abc": {"class": ["collections.abc.MutableMapping"]},
    "exceptions": {
        "exception": [
            "BaseException",
            "Exception",
            "ExceptionGroup",
            "KeyboardInterrupt",
            "OSError",
            "RuntimeError",
            "SystemExit",
            "TimeoutError",
            "TypeError",
            "ValueError",
        ],
    },
}


def lines() -> list[str]:
    """One inventory line per name: ``name domain:role priority uri dispname``."""
    out = []
    for page, roles in NAMES.items():
        for role, names in roles.items():
            for name in names:
                anchor = f"module-{name}" if role == "module" else "$"
                out.append(f"{name} py:{role} 1 library/{page}.html#{anchor} -")
    return sorted(out)


def write() -> None:
    header = (
        "# Sphinx inventory version 2\n"
        "# Project: Python\n"
        "# Version: 3\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = zlib.compress(("\n".join(lines()) + "\n").encode())
    OUT.write_bytes(header.encode() + body)


def check() -> int:
    """Read the file back as Sphinx will; return how many names it holds."""
    with OUT.open("rb") as stream:
        inventory = InventoryFile.load(io.BytesIO(stream.read()), BASE, _join)
    return sum(len(names) for names in inventory.values())


def _join(base: str, uri: str) -> str:
    return f"{base}/{uri}"


if __name__ == "__main__":
    write()
    print(f"wrote {OUT.name}: {check()} names")
