"""Time unirun's primitives against the stdlib's: ``python benchmarks/primitives.py``.

Options: ``--quick`` (a smoke run, a tenth of the work), ``--repeat N`` (timed
runs per row, default 7), ``--size X`` (multiply every row's amount of work),
``--out FILE.json`` (the raw numbers; default benchmarks/results/), ``--page
FILE.md`` (default docs/benchmarks-primitives.md, written by full runs only) and
``--no-page``.

Each group of rows is measured side by side: every contender is warmed up once,
then the timed runs are interleaved (the order rotating each round), so a load
spike on a shared machine hits every contender of the group alike. Each row
reports the median, min and max of its runs and the ratio of its median time to
the group's stdlib reference (below 1 unirun is faster). The garbage collector
is off during a timed run.

    lock        uncontended acquire()+release() and ``with lock:``, one thread
    queue       put() then get() of one item, one thread (and the async forms)
    transfer    a producer task in a worker process puts N items, the parent
                gets them: items per second, submission of the task included
    dict        d[k] = v then d[k] in one thread; five worker processes filling
                one dict that the parent then reads (the Manager().dict() example)
    counter     eight tasks in four worker processes make 80,000 read-modify-write
                increments of one counter under a lock; the total must be exact
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import datetime
import gc
import json
import multiprocessing
import queue
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__" and Path(sys.path[0]).resolve() == ROOT / "benchmarks":
    # Run as a script, sys.path[0] is benchmarks/ itself: put the repository root
    # there instead, so `benchmarks` imports as a package here and in every
    # worker (which must import the functions it runs by name).
    sys.path[0] = str(ROOT)

from benchmarks.leftovers import leftovers  # noqa: E402
from benchmarks.primitives_cli import parse_args  # noqa: E402
from benchmarks.primitives_report import load, machine, markdown, targets  # noqa: E402
from benchmarks.primitives_timed import (  # noqa: E402
    Group,
    Row,
    async_lock_with,
    async_queue_round_trip,
    count_with_lock,
    count_with_value,
    dict_round_trip,
    fill,
    increments,
    install_queue,
    install_value,
    lock_acquire_release,
    lock_with,
    many_writers,
    measure,
    produce,
    produce_installed,
    queue_round_trip,
    transfer,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.managers import SyncManager
    from multiprocessing.queues import Queue as MPQueue

    from unirun._base import BaseExecutor

__all__ = ["measure_all", "run"]

# Sizes of a full run (``--size 1``): operations per timed run.
N_LOCK = 200_000
N_LOCK_MANAGER = 2_000
N_QUEUE = 50_000
N_QUEUE_PROCESS = 10_000
N_QUEUE_MANAGER = 1_000
N_ASYNC = 50_000
N_TRANSFER_SMALL = 20_000
N_TRANSFER_LARGE = 4_000
LARGE_ITEM = 10 * 1024  # bytes
N_DICT = 20_000
N_DICT_MANAGER = 1_000
N_DICT_WRITERS = 5  # processes, as in the Manager().dict() example
N_DICT_WRITES = 2_000  # per writer
N_COUNTER_TASKS = 8
N_COUNTER_INCREMENTS = 10_000  # per task: 80,000 in all


def _n(full: int, scale: float) -> int:
    return max(1, round(full * scale))


def _warm(executor: BaseExecutor | cf.Executor) -> None:
    """Start every worker of a pool (one here) before anything is timed."""
    executor.submit(int, 0).result(timeout=60)


def _lock_groups(
    stack: contextlib.ExitStack, manager: SyncManager, scale: float, repeat: int
) -> Iterator[Group]:
    import unirun

    thread_ex = stack.enter_context(unirun.ThreadExecutor(max_workers=1))
    process_ex = stack.enter_context(unirun.ProcessExecutor(max_workers=1))
    n, n_manager = _n(N_LOCK, scale), _n(N_LOCK_MANAGER, scale)
    for how, make_runner in (
        ("acquire()+release()", lock_acquire_release),
        ("with lock:", lock_with),
    ):
        key = "acquire-release" if how.startswith("acq") else "with"
        threads = Group(
            f"lock-thread-{key}",
            "lock",
            f"Lock, uncontended `{how}`: thread backend",
            "op",
            [
                Row("threading.Lock", "stdlib", n),
                Row("unirun thread Lock", "unirun", n),
            ],
        )
        yield measure(
            threads,
            [make_runner(threading.Lock()), make_runner(thread_ex.Lock())],
            repeat,
        )
        processes = Group(
            f"lock-process-{key}",
            "lock",
            f"Lock, uncontended `{how}`: process backend",
            "op",
            [
                Row("multiprocessing.Lock", "stdlib", n),
                Row("unirun process Lock", "unirun", n),
                Row("Manager().Lock", "stdlib", n_manager),
            ],
        )
        yield measure(
            processes,
            [
                make_runner(multiprocessing.Lock()),
                make_runner(process_ex.Lock()),
                make_runner(manager.Lock()),
            ],
            repeat,
        )


def _queue_groups(
    stack: contextlib.ExitStack, manager: SyncManager, scale: float, repeat: int
) -> Iterator[Group]:
    import unirun

    thread_ex = stack.enter_context(unirun.ThreadExecutor(max_workers=1))
    coroutine_ex = stack.enter_context(unirun.CoroutineExecutor())
    process_ex = stack.enter_context(unirun.ProcessExecutor(max_workers=1))
    n = _n(N_QUEUE, scale)
    yield measure(
        Group(
            "queue-thread",
            "queue",
            "Queue, `put(x)` then `get()` in one thread: thread backend",
            "op",
            [Row("queue.Queue", "stdlib", n), Row("unirun thread Queue", "unirun", n)],
        ),
        [queue_round_trip(queue.Queue()), queue_round_trip(thread_ex.Queue())],
        repeat,
    )
    n, n_manager = _n(N_QUEUE_PROCESS, scale), _n(N_QUEUE_MANAGER, scale)
    mp_queue: MPQueue[int] = multiprocessing.Queue()
    stack.callback(mp_queue.join_thread)  # its feeder thread must end
    stack.callback(mp_queue.close)
    yield measure(
        Group(
            "queue-process",
            "queue",
            "Queue, `put(x)` then `get()` in one thread: process backend",
            "op",
            [
                Row("multiprocessing.Queue", "stdlib", n),
                Row("unirun process Queue", "unirun", n),
                Row("Manager().Queue", "stdlib", n_manager),
            ],
        ),
        [
            queue_round_trip(mp_queue),
            queue_round_trip(process_ex.Queue()),
            queue_round_trip(manager.Queue()),
        ],
        repeat,
    )
    n = _n(N_ASYNC, scale)
    yield measure(
        Group(
            "queue-async",
            "queue",
            "Queue, `await async_put(x)` then `await async_get()`: coroutine backend",
            "op",
            [
                Row("asyncio.Queue (put/get)", "stdlib", n),
                Row("unirun coroutine Queue", "unirun", n),
            ],
        ),
        [
            async_queue_round_trip(asyncio.Queue),
            async_queue_round_trip(coroutine_ex.Queue),
        ],
        repeat,
    )
    yield measure(
        Group(
            "lock-async",
            "lock",
            "Lock, uncontended `async with lock:`: coroutine backend",
            "op",
            [
                Row("asyncio.Lock", "stdlib", n),
                Row("unirun coroutine Lock", "unirun", n),
            ],
        ),
        [async_lock_with(asyncio.Lock), async_lock_with(coroutine_ex.Lock)],
        repeat,
    )


def _transfer_groups(
    stack: contextlib.ExitStack, scale: float, repeat: int
) -> Iterator[Group]:
    import unirun
    from unirun._backends.process import default_context

    context = default_context()  # forkserver on Linux: both pools start alike
    unirun_ex = stack.enter_context(unirun.ProcessExecutor(max_workers=1))
    unirun_queue = unirun_ex.Queue()
    mp_queue: MPQueue[Any] = context.Queue()
    stack.callback(mp_queue.join_thread)
    stack.callback(mp_queue.close)
    pool = stack.enter_context(
        cf.ProcessPoolExecutor(
            1, mp_context=context, initializer=install_queue, initargs=(mp_queue,)
        )
    )
    _warm(unirun_ex)
    _warm(pool)

    def submit_unirun(n: int, size: int) -> cf.Future[int]:
        return unirun_ex.submit(produce, unirun_queue, n, size)

    def submit_pool(n: int, size: int) -> cf.Future[int]:
        return pool.submit(produce_installed, n, size)

    for size, full in ((0, N_TRANSFER_SMALL), (LARGE_ITEM, N_TRANSFER_LARGE)):
        n = _n(full, scale)
        what = "small items (ints)" if not size else f"{size // 1024} KB items"
        yield measure(
            Group(
                f"transfer-{'small' if not size else 'large'}",
                "transfer",
                f"Worker process puts N {what}, the parent gets them",
                "item",
                [
                    Row("multiprocessing.Queue (ProcessPoolExecutor)", "stdlib", n),
                    Row("unirun process Queue (ProcessExecutor)", "unirun", n),
                ],
            ),
            [
                transfer(submit_pool, mp_queue, size),
                transfer(submit_unirun, unirun_queue, size),
            ],
            repeat,
        )


def _dict_groups(
    stack: contextlib.ExitStack, manager: SyncManager, scale: float, repeat: int
) -> Iterator[Group]:
    import unirun
    from unirun._backends.process import default_context

    thread_ex = stack.enter_context(unirun.ThreadExecutor(max_workers=1))
    process_ex = stack.enter_context(unirun.ProcessExecutor(max_workers=1))
    n, n_manager = _n(N_DICT, scale), _n(N_DICT_MANAGER, scale)
    yield measure(
        Group(
            "dict-thread",
            "dict",
            "Dict, `d[k] = v` then `d[k]` in one thread: thread backend",
            "op",
            [Row("dict", "stdlib", n), Row("unirun thread Dict", "unirun", n)],
        ),
        [dict_round_trip({}), dict_round_trip(thread_ex.Dict())],
        repeat,
    )
    yield measure(
        Group(
            "dict-process",
            "dict",
            "Dict, `d[k] = v` then `d[k]` in one thread: process backend",
            "op",
            [
                Row("Manager().dict()", "stdlib", n_manager),
                Row("unirun process Dict", "unirun", n),
            ],
        ),
        [dict_round_trip(manager.dict()), dict_round_trip(process_ex.Dict())],
        repeat,
    )
    writers = N_DICT_WRITERS
    context = default_context()
    pool = stack.enter_context(cf.ProcessPoolExecutor(writers, mp_context=context))
    unirun_ex = stack.enter_context(unirun.ProcessExecutor(max_workers=writers))
    for _ in range(writers):
        _warm(pool)
        _warm(unirun_ex)
    n, n_manager = _n(writers * N_DICT_WRITES, scale), _n(writers * 200, scale)
    yield measure(
        Group(
            "dict-writers",
            "dict",
            f"Dict written by {writers} worker processes at once, then read by the "
            "parent (the `Manager().dict()` example)",
            "item",
            [
                Row("Manager().dict() (ProcessPoolExecutor)", "stdlib", n_manager),
                Row("unirun process Dict (ProcessExecutor)", "unirun", n),
            ],
        ),
        [
            many_writers(
                lambda d, w, k: pool.submit(fill, d, w, k), manager.dict, writers
            ),
            many_writers(
                lambda d, w, k: unirun_ex.submit(fill, d, w, k),
                unirun_ex.Dict,
                writers,
            ),
        ],
        repeat,
    )


def _counter_groups(
    stack: contextlib.ExitStack, scale: float, repeat: int
) -> Iterator[Group]:
    import unirun
    from unirun._backends.process import default_context

    tasks = N_COUNTER_TASKS
    context = default_context()
    value = context.Value("q", 0)
    pool = stack.enter_context(
        cf.ProcessPoolExecutor(
            4, mp_context=context, initializer=install_value, initargs=(value,)
        )
    )
    unirun_ex = stack.enter_context(unirun.ProcessExecutor(max_workers=4))
    lock, counter = unirun_ex.Lock(), unirun_ex.Dict()
    for _ in range(4):
        _warm(pool)
        _warm(unirun_ex)
    n = _n(tasks * N_COUNTER_INCREMENTS, scale)

    def reset_value() -> None:
        value.value = 0

    def reset_counter() -> None:
        counter["n"] = 0

    yield measure(
        Group(
            "counter",
            "counter",
            f"{tasks} tasks in 4 worker processes increment one counter under a "
            "lock; the total must be exact",
            "op",
            [
                Row("multiprocessing.Value and its Lock", "stdlib", n),
                Row("unirun Lock and Dict (ProcessExecutor)", "unirun", n),
            ],
        ),
        [
            increments(
                lambda k: pool.submit(count_with_value, k),
                lambda: int(value.value),
                reset_value,
                tasks,
            ),
            increments(
                lambda k: unirun_ex.submit(count_with_lock, lock, counter, k),
                lambda: int(counter["n"]),
                reset_counter,
                tasks,
            ),
        ],
        repeat,
    )


def measure_all(scale: float = 1.0, repeat: int = 7) -> list[Group]:
    """Measure every group; every pool, Manager and queue is closed on return."""
    groups: list[Group] = []
    with contextlib.ExitStack() as stack:
        manager = stack.enter_context(multiprocessing.Manager())
        groups += _lock_groups(stack, manager, scale, repeat)
        groups += _queue_groups(stack, manager, scale, repeat)
        groups += _transfer_groups(stack, scale, repeat)
        groups += _dict_groups(stack, manager, scale, repeat)
        groups += _counter_groups(stack, scale, repeat)
        gc.collect()  # drop Manager proxies while their Manager still runs
    return groups


def run(argv: list[str] | None = None) -> int:
    """Measure, print the tables and targets, write the JSON and the page."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    meta = machine()
    meta["command"] = " ".join(["python benchmarks/primitives.py", *argv])
    meta["repeat"] = args.repeat
    meta["size"] = args.size
    started = time.perf_counter()
    groups = measure_all(args.size, args.repeat)
    meta["elapsed_s"] = round(time.perf_counter() - started, 1)
    meta["leftovers"] = leftovers()
    meta["load_after"] = load()
    checks = targets(groups)
    page = markdown(groups, checks, meta)
    print(page)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    out: Path = args.out or ROOT / "benchmarks" / "results" / f"primitives-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "meta": meta,
        "groups": [g.as_dict() for g in groups],
        "targets": [asdict(t) for t in checks],
    }
    out.write_text(json.dumps(record, indent=2) + "\n")
    written = [str(out)]
    full = not args.quick and args.size == 1.0
    if not args.no_page and (args.page is not None or full):
        page_path: Path = args.page or ROOT / "docs" / "benchmarks-primitives.md"
        page_path.write_text(page)
        written.append(str(page_path))
    print(f"wrote {' and '.join(written)} in {meta['elapsed_s']} s", file=sys.stderr)
    return 1 if meta["leftovers"]["threads"] or meta["leftovers"]["processes"] else 0


if __name__ == "__main__":
    raise SystemExit(run())
