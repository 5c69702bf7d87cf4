"""A periodic task that stops when asked, on any backend.

The article re-arms ``threading.Timer(1, itself)`` from inside the function: it
cannot be stopped cleanly and only works in one process. Here one task loops on
``stop.wait(interval)``, which sleeps for the interval *or* returns ``True`` as
soon as another task or the caller sets ``stop``; each tick goes to a queue.

    python examples/periodic_task.py [thread|process|coroutine|auto]
"""

from __future__ import annotations

import sys
import time
from typing import Literal, cast

import unirun

Kind = Literal["thread", "process", "coroutine", "auto"]


def every(interval: float, stop: unirun.Event, ticks: unirun.Queue[float]) -> int:
    """Put the time on ``ticks`` every ``interval`` seconds until ``stop`` is set."""
    count = 0
    while not stop.wait(interval):  # True once stop is set: no sleep to sit out
        count += 1
        ticks.put(time.time())
    return count


def main(kind: Kind) -> None:
    with unirun.executor(kind) as ex:
        stop, ticks = ex.Event(), ex.Queue()
        start = time.time()
        task = ex.submit(every, 0.05, stop, ticks)
        for _ in range(3):
            print(f"tick {ticks.get(timeout=30) - start:.2f} s after submit")
        stop.set()  # the task leaves its loop at once, even mid-interval
        print(f"stopped after {task.result()} ticks")


if __name__ == "__main__":
    main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "thread"))
