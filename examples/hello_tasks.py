"""Start tasks, wait for them, read what they returned: on any backend.

The article's first threading snippet starts five ``threading.Thread`` objects
that print their number and joins them; its first multiprocessing snippet starts
one ``Process(target=work, args=(5,))``. With an executor both are ``submit``:
the task's result comes back through its Future, whatever ran it.

    python examples/hello_tasks.py [thread|process|coroutine|auto]
"""

from __future__ import annotations

import os
import sys
from typing import Literal, cast

import unirun

Kind = Literal["thread", "process", "coroutine", "auto"]


def hello(number: int) -> str:
    """What each of the article's threads printed, returned instead."""
    return f"task {number} ran in process {os.getpid()}"


def work(n: int) -> int:
    """The article's ``Process(target=work, args=(5,))``."""
    return sum(i * i for i in range(n))


def main(kind: Kind) -> None:
    with unirun.executor(kind) as ex:
        # Five tasks at once; ``wait`` is the ``join()`` of all five.
        futures = [ex.submit(hello, number) for number in range(5)]
        unirun.wait(futures)
        for future in futures:
            # Printed here, in order: a process worker's own print() would reach
            # the terminal in whatever order the workers got to it.
            print(future.result())
        # One task with an argument; ``result()`` waits for it and re-raises
        # its exception if it failed, which ``Process.join()`` never does.
        print(f"work(5) = {ex.submit(work, 5).result()}")


if __name__ == "__main__":
    main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "thread"))
