"""Square ten numbers on a pool: three of the article's snippets in one.

``ThreadPoolExecutor(max_workers=5).map``, ``multiprocessing.Pool(4).map`` and
``ProcessPoolExecutor(max_workers=4).map`` are the same call on different
models. With unirun it is one line, and the model is the kind string.

    python examples/pool_map.py [thread|process|coroutine|auto]
"""

from __future__ import annotations

import sys
from typing import Literal, cast

import unirun

Kind = Literal["thread", "process", "coroutine", "auto"]


def square(n: int) -> int:
    return n**2


def main(kind: Kind) -> None:
    # The main guard below matters for processes: it keeps the pool from being
    # created again if a worker ever imports this script.
    with unirun.executor(kind) as ex:
        print(list(ex.map(square, range(10))))
        # ``chunksize=None`` lets the backend batch tiny items: on processes it
        # sends many per trip instead of paying one round trip per number.
        print(sum(ex.map(square, range(10_000), chunksize=None)))


if __name__ == "__main__":
    main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "thread"))
