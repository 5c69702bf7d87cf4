"""Coroutines on any backend: one, a gather of five, tasks created first.

The article's asyncio snippets, written once against an executor. ``submit`` is
``asyncio.create_task``: the task starts at once and its Future is awaitable;
``ex.gather`` is ``asyncio.gather`` and also works from plain code
(``.result()``). On threads and processes an ``async def`` runs on an event
loop inside the worker.

    python examples/coroutines.py [thread|process|coroutine|auto]
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Literal, cast

import unirun

Kind = Literal["thread", "process", "coroutine", "auto"]
NAP = 0.1  # the article sleeps 1 s; a tenth keeps the example quick


async def hello() -> str:
    await asyncio.sleep(NAP)
    return f"hello, then world {NAP} s later"


async def double_later(n: int) -> int:
    await asyncio.sleep(NAP)
    return n * 2


async def from_async_code(kind: Kind) -> None:
    # Inside async code, ``async with``: coroutine tasks run on this loop.
    async with unirun.executor(kind) as ex:
        tasks = [ex.submit(double_later, n) for n in range(5)]  # started now
        print(f"tasks created first, then gathered: {await ex.gather(*tasks)}")


def main(kind: Kind) -> None:
    with unirun.executor(kind) as ex:
        print(ex.submit(hello).result())
        start = time.perf_counter()
        doubled = ex.gather(*(ex.submit(double_later, n) for n in range(5))).result()
        # Five naps overlap on the coroutine backend; elsewhere at most
        # max_workers of them run at once.
        print(f"gathered {doubled} in {time.perf_counter() - start:.2f} s")
    asyncio.run(from_async_code(kind))


if __name__ == "__main__":
    main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "thread"))
