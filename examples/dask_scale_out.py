"""Scale out: the same tasks and primitives on a Dask cluster (``unirun[dask]``).

``DaskExecutor()`` starts an embedded ``LocalCluster`` (worker processes, one per
usable CPU) and closes it at the end of the ``with`` block;
``DaskExecutor(address="tcp://scheduler:8786")`` joins a running cluster instead
and leaves it running.
"""

from __future__ import annotations

import unirun


def work(x: int) -> int:
    return x * x


async def fetch(x: int) -> int:
    return x + 1


def consume(q: unirun.Queue[int | None]) -> int:
    total = 0
    while (item := q.get()) is not None:
        total += item
    return total


def main() -> None:
    with unirun.DaskExecutor() as ex:
        print("submit:", ex.submit(work, 3).result())
        print("async def:", ex.submit(fetch, 41).result())
        # 20,000 tiny items go out in a few dozen batches, in order.
        print("map:", sum(ex.map(work, range(20_000), chunksize=None)))
        # A queue held by the scheduler, shared by the caller and a task.
        q = ex.Queue(maxsize=10)
        total = ex.submit(consume, q)
        for i in range(100):
            q.put(i)
        q.put(None)
        print("queue:", total.result())
        try:
            ex.options(timeout=0.1).submit(fetch_slowly).result()
        except unirun.TaskTimeoutError:
            print("time-out: the task was cancelled on its worker")


async def fetch_slowly() -> None:
    import asyncio

    await asyncio.sleep(3600)


if __name__ == "__main__":  # worker processes import this module: guard the work
    main()
