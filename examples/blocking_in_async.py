"""Call blocking code from async code without freezing the event loop.

The article's first mix: ``await loop.run_in_executor(None, blocking_sleep)``.
With an executor it is ``await ex.submit(blocking_sleep, ...)`` on any backend:
the blocking call runs on a worker while the loop goes on serving others, as
the heartbeat below shows.

    python examples/blocking_in_async.py [thread|process|coroutine|auto]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Literal, cast

import unirun

Kind = Literal["thread", "process", "coroutine", "auto"]


def blocking_sleep(seconds: float) -> str:
    """A blocking call: an old client library, a file lock, ``time.sleep``."""
    time.sleep(seconds)
    return f"slept {seconds} s"


async def heartbeat(beats: list[float]) -> None:
    while True:
        beats.append(time.perf_counter())
        await asyncio.sleep(0.01)


async def main(kind: Kind) -> None:
    beats: list[float] = []
    pulse = asyncio.create_task(heartbeat(beats))
    async with unirun.executor(kind) as ex:
        before = len(beats)
        print(await ex.submit(blocking_sleep, 0.3))
        during = len(beats) - before
    pulse.cancel()
    # Calling blocking_sleep(0.3) directly here would have stopped the heartbeat
    # for the whole 0.3 s; on a worker the loop kept beating every 10 ms or so.
    print(f"the event loop stayed free: {during} heartbeats meanwhile")


if __name__ == "__main__":
    asyncio.run(main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "thread")))
