"""Send CPU work from async code to processes, the right way.

The article's second mix passes a ``multiprocessing.Pool`` to
``loop.run_in_executor``, which fails: a Pool is not a
``concurrent.futures.Executor`` (it has no ``submit``). Every unirun executor
is one, so ``run_in_executor`` takes it; ``await ex.submit(...)`` is shorter.
CPU-bound Python belongs on ``process`` (or ``auto``, which sends it there);
the other kinds run it too, just without the speed-up.

    python examples/cpu_in_async.py [thread|process|coroutine|auto]
"""

from __future__ import annotations

import asyncio
import sys
from typing import Literal, cast

import unirun

Kind = Literal["thread", "process", "coroutine", "auto"]


def cpu_work(n: int) -> int:
    """Pure-Python arithmetic: holds the GIL the whole time."""
    return sum(i * i for i in range(n * 50_000))


async def main(kind: Kind) -> None:
    loop = asyncio.get_running_loop()
    async with unirun.executor(kind) as ex:
        # What the article meant: any concurrent.futures.Executor works here.
        print(f"run_in_executor: {await loop.run_in_executor(ex, cpu_work, 5)}")
        # The same, shorter, and with the executor's own options (time-out...).
        print(f"submit:          {await ex.submit(cpu_work, 5)}")
        results = await ex.gather(*(ex.submit(cpu_work, n) for n in range(1, 5)))
        print(f"gather:          {results}")


if __name__ == "__main__":
    asyncio.run(main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "thread")))
