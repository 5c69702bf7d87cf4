"""Tasks write into one shared dictionary; the caller reads it: on any backend.

The article's ``multiprocessing.Manager().dict()`` snippet: five processes each
store ``n**2``, then the parent prints the dict. ``ex.Dict()`` is that mapping
for every backend, and each of its operations is atomic.

    python examples/shared_dict.py [thread|process|coroutine|auto]
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal, cast

import unirun

if TYPE_CHECKING:
    from collections.abc import MutableMapping

Kind = Literal["thread", "process", "coroutine", "auto"]


def record(squares: MutableMapping[int, int], n: int) -> None:
    squares[n] = n**2


def main(kind: Kind) -> None:
    with unirun.executor(kind) as ex:
        squares = ex.Dict()
        unirun.wait([ex.submit(record, squares, n) for n in range(5)])
        print(dict(sorted(squares.items())))


if __name__ == "__main__":
    main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "thread"))
