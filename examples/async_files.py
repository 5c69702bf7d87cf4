"""Read and write many files from async code without blocking the event loop.

Disk I/O has no true async API on most systems: ``anyio.Path`` (and aiofiles)
run each call on a worker thread and let the event loop await it, so an async
program can keep serving while files are read. The coroutines below run on any
backend: on ``coroutine`` they share one loop; on threads and processes each
runs on a loop inside its worker.

    python examples/async_files.py [thread|process|coroutine|auto]
    pip install aiofiles   # optional: adds the aiofiles version
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Literal, cast

import anyio

import unirun

Kind = Literal["thread", "process", "coroutine", "auto"]
FILES = 50

try:
    import aiofiles
except ImportError:  # optional: the anyio.Path version needs nothing extra
    aiofiles = None


async def write_note(folder: str, n: int) -> int:
    path = anyio.Path(folder) / f"note{n:02}.txt"
    return await path.write_text(f"note {n}\n" * (n + 1))


async def count_lines(path: str) -> int:
    text = await anyio.Path(path).read_text()
    return text.count("\n")


async def count_lines_aiofiles(path: str) -> int:
    assert aiofiles is not None
    async with aiofiles.open(path) as file:
        return sum([1 async for _ in file])


def main(kind: Kind) -> None:
    with tempfile.TemporaryDirectory() as folder, unirun.executor(kind) as ex:
        written = ex.gather(*(ex.submit(write_note, folder, n) for n in range(FILES)))
        print(f"wrote {FILES} files, {sum(written.result())} characters")
        paths = sorted(str(path) for path in Path(folder).iterdir())
        lines = sum(ex.map(count_lines, paths))
        print(f"anyio.Path: {lines} lines")
        if aiofiles is not None:
            print(f"aiofiles:   {sum(ex.map(count_lines_aiofiles, paths))} lines")


if __name__ == "__main__":
    main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "coroutine"))
