"""What a benchmark run left behind: threads and child processes still alive."""

from __future__ import annotations

import multiprocessing
import threading
import time

__all__ = ["leftovers"]


def leftovers(grace_s: float = 3.0) -> dict[str, list[str]]:
    """Return the threads and child processes still alive (none should be).

    Waits up to ``grace_s`` for those that are already on their way out.
    """
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
