"""At most three requests in flight at once, however many tasks run, on every backend.

Each "request" is a coroutine that holds the semaphore with ``async with`` while
it waits; a queue logs when each one enters and leaves, and the log shows the cap.
"""

from __future__ import annotations

from typing import Any, Literal

import anyio

import unirun

KINDS: tuple[Literal["thread", "process", "coroutine", "auto"], ...] = (
    "thread",
    "process",
    "coroutine",
    "auto",
)
LIMIT = 3


async def request(sem: unirun.Semaphore, log: unirun.Queue[Any], i: int) -> int:
    """Hold one unit of ``sem`` for a short wait, logging entry and exit."""
    async with sem:
        await log.async_put(+1)
        await anyio.sleep(0.02)  # the "network"
        await log.async_put(-1)
    return i


def run(ex: unirun.Executor, requests: int = 12) -> int:
    """Fire ``requests`` tasks at once; return the most that were ever inside."""
    sem = ex.Semaphore(LIMIT)
    log = ex.Queue()
    results = ex.gather(*(ex.submit(request, sem, log, i) for i in range(requests)))
    assert results.result() == list(range(requests))
    inside = most = 0
    while not log.empty():
        inside += log.get_nowait()
        most = max(most, inside)
    return most


def make(kind: Literal["thread", "process", "coroutine", "auto"]) -> unirun.Executor:
    """An executor of ``kind`` that could run eight requests at once."""
    if kind == "coroutine":
        return unirun.executor(kind)
    return unirun.executor(kind, max_workers=8)


if __name__ == "__main__":
    for kind in KINDS:
        with make(kind) as ex:
            most = run(ex)
        verdict = "ok" if most <= LIMIT else "TOO MANY"
        print(f"{kind:>9}: at most {most} requests at once, limit {LIMIT} ({verdict})")
