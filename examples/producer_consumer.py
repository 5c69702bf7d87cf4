"""Producer and consumer over a bounded queue, written once, run on every backend.

The producer is a plain function using the stdlib-style ``put``; the consumer
is a coroutine using ``async_get``. Both run as tasks of the same executor,
whatever its kind: threads, processes or coroutines.
"""

from __future__ import annotations

from typing import Any, Literal

import unirun

KINDS: tuple[Literal["thread", "process", "coroutine", "auto"], ...] = (
    "thread",
    "process",
    "coroutine",
    "auto",
)


def produce(q: unirun.Queue[Any], n: int) -> None:
    """Put the squares of ``0..n-1``, then ``None`` to say "no more"."""
    for i in range(n):
        q.put(i * i)  # waits while the queue is full
    q.put(None)


async def consume(q: unirun.Queue[Any]) -> tuple[int, int]:
    """Sum what arrives until ``None``; return (items, total)."""
    count = total = 0
    while (item := await q.async_get()) is not None:
        count += 1
        total += item
    return count, total


def run(ex: unirun.Executor, n: int = 1000) -> tuple[int, int]:
    """Connect a producer and a consumer task through a queue of 16 slots."""
    q = ex.Queue(maxsize=16)
    consumer = ex.submit(consume, q)
    producer = ex.submit(produce, q, n)
    producer.result()
    count_and_total: tuple[int, int] = consumer.result()
    return count_and_total


if __name__ == "__main__":
    expected = sum(i * i for i in range(1000))
    for kind in KINDS:
        with unirun.executor(kind) as ex:
            count, total = run(ex)
        verdict = "ok" if (count, total) == (1000, expected) else "WRONG"
        print(f"{kind:>9}: {count} items, sum of squares {total} ({verdict})")
