"""A counter in a file, incremented by many tasks under one lock, on every backend.

Read-modify-write of shared state loses updates unless a lock makes it atomic;
``ex.Lock()`` does that for threads, coroutines and processes alike.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import unirun

KINDS: tuple[Literal["thread", "process", "coroutine", "auto"], ...] = (
    "thread",
    "process",
    "coroutine",
    "auto",
)


def increment(lock: unirun.Lock, counter: str, times: int) -> None:
    """Add one to the number in ``counter``, ``times`` times, holding ``lock``."""
    path = Path(counter)
    for _ in range(times):
        with lock:
            path.write_text(str(int(path.read_text()) + 1))


def run(ex: unirun.Executor, tasks: int = 8, times: int = 50) -> int:
    """Run ``tasks`` incrementing tasks at once; return the final count."""
    lock = ex.Lock()
    with tempfile.TemporaryDirectory() as directory:
        counter = Path(directory) / "counter"
        counter.write_text("0")
        futures = [
            ex.submit(increment, lock, str(counter), times) for _ in range(tasks)
        ]
        unirun.wait(futures)
        for future in futures:
            future.result()  # re-raise any failure
        return int(counter.read_text())


if __name__ == "__main__":
    for kind in KINDS:
        with unirun.executor(kind) as ex:
            count = run(ex)
        verdict = "ok" if count == 8 * 50 else "LOST UPDATES"
        print(f"{kind:>9}: counter = {count} of {8 * 50} ({verdict})")
