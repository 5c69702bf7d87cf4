"""Run the same tasks on every unirun backend and print what each returned.

python examples/every_backend.py
"""

from __future__ import annotations

import time

import anyio

import unirun


def count_primes(limit: int) -> int:
    """Pure-Python CPU work."""
    return sum(
        1 for n in range(2, limit) if all(n % d for d in range(2, int(n**0.5) + 1))
    )


async def fetch(delay: float) -> str:
    """Stand-in for an async network call."""
    await anyio.sleep(delay)
    return f"waited {delay}s"


def main() -> None:
    for kind in ("thread", "process", "coroutine"):
        start = time.perf_counter()
        with unirun.executor(kind) as ex:
            primes = list(ex.map(count_primes, [10_000, 20_000, 30_000]))
            replies = ex.gather(*(ex.submit(fetch, 0.1) for _ in range(3))).result()
            try:
                ex.options(timeout=0.05).submit(fetch, 1).result()
            except unirun.TaskTimeoutError:
                timed_out = "timed out as asked"
        elapsed = time.perf_counter() - start
        print(
            f"{kind:>9}: primes={primes} replies={replies} {timed_out} ({elapsed:.2f}s)"
        )


if __name__ == "__main__":
    main()
