"""A producer and a consumer over a queue with ``task_done``/``join``.

Three of the article's snippets are this program: over ``queue.Queue`` with
threads, over ``multiprocessing.Queue`` with processes and over
``asyncio.Queue`` with coroutines. ``ex.Queue()`` is one queue for all three: it
has ``queue.Queue``'s methods and ``async_`` twins that never block a loop.

    python examples/task_queue.py [thread|process|coroutine|auto]
"""

from __future__ import annotations

import sys
from typing import Literal, cast

import unirun

Kind = Literal["thread", "process", "coroutine", "auto"]


async def produce(q: unirun.Queue[int | None], n: int) -> int:
    """Put 0..n-1, then the ``None`` sentinel that tells the consumer to stop."""
    for item in range(n):
        await q.async_put(item)
    await q.async_put(None)
    return n


def consume(q: unirun.Queue[int | None]) -> list[int]:
    """Get until the sentinel, marking each item done; return what arrived."""
    seen = []
    while True:
        item = q.get()
        q.task_done()
        if item is None:
            return seen
        seen.append(item)


def main(kind: Kind) -> None:
    with unirun.executor(kind) as ex:
        q: unirun.Queue[int | None] = ex.Queue()
        # The same two functions, whatever runs them: a coroutine producer and a
        # plain-function consumer, connected by one queue. The producer goes
        # first, so even a pool of one worker finishes (the queue is unbounded).
        producer = ex.submit(produce, q, 10)
        consumer = ex.submit(consume, q)
        q.join()  # returns once every item (the sentinel too) was task_done()
        print(f"producer put {producer.result()} items; all were handled")
        print(f"consumer got {consumer.result()}")


if __name__ == "__main__":
    main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "thread"))
