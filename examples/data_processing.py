"""Process a folder of files in parallel: word counts and a CSV aggregation.

Data processing is the article's case for multiprocessing: parsing and counting
in pure Python holds the GIL, so only processes run it in parallel. Each file is
one item of ``map``; ``chunksize=None`` lets the backend choose how many files
travel to a worker at once (many small files: large batches; few big ones:
one at a time), so the same line is fast for both.

    python examples/data_processing.py [thread|process|coroutine|auto]
"""

from __future__ import annotations

import csv
import random
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import unirun

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

Kind = Literal["thread", "process", "coroutine", "auto"]
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")
REGIONS = ("north", "south", "east", "west")


def make_data(folder: Path) -> tuple[list[Path], list[Path]]:
    """Write 300 text files and 12 monthly CSV files with a fixed seed."""
    rng = random.Random(0)
    texts, sheets = [], []
    for i in range(300):
        path = folder / f"doc{i:03}.txt"
        path.write_text(" ".join(rng.choices(WORDS, k=2_000)))
        texts.append(path)
    for month in range(1, 13):
        path = folder / f"sales-{month:02}.csv"
        with path.open("w", newline="") as file:
            out = csv.writer(file)
            out.writerow(["region", "amount"])
            for _ in range(5_000):
                out.writerow([rng.choice(REGIONS), rng.randint(1, 500)])
        sheets.append(path)
    return texts, sheets


def count_words(path: Path) -> Counter[str]:
    return Counter(path.read_text().split())


def total_by_region(path: Path) -> dict[str, int]:
    totals = dict.fromkeys(REGIONS, 0)
    with path.open(newline="") as file:
        for row in csv.DictReader(file):
            totals[row["region"]] += int(row["amount"])
    return totals


def analyse(
    map_files: Callable[..., Iterable[Any]], texts: list[Path], sheets: list[Path]
) -> str:
    """Count words and total the sales with ``map_files`` (a ``map``)."""
    words: Counter[str] = Counter()
    for counts in map_files(count_words, texts):
        words.update(counts)  # results arrive in input order
    regions: Counter[str] = Counter()
    for totals in map_files(total_by_region, sheets):
        regions.update(totals)
    top = ", ".join(f"{word} {n}" for word, n in words.most_common(3))
    return f"top words: {top}\nsales by region: {dict(sorted(regions.items()))}"


def main(kind: Kind) -> None:
    with tempfile.TemporaryDirectory() as folder:
        texts, sheets = make_data(Path(folder))
        start = time.perf_counter()
        with unirun.executor(kind) as ex:
            report = analyse(partial(ex.map, chunksize=None), texts, sheets)
        elapsed = time.perf_counter() - start
        print(report)
        print(f"same as a serial loop: {report == analyse(map, texts, sheets)}")
        print(f"{kind}: {elapsed:.2f} s, pool start-up included")


if __name__ == "__main__":
    main(cast("Kind", sys.argv[1] if len(sys.argv) > 1 else "process"))
