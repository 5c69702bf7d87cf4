"""What the primitives benchmark times, and how its rows are measured.

Each ``*`` function returns a runner: ``runner(n)`` does ``n`` operations and
returns the seconds they took, with the garbage collector off. Functions run by
worker processes (``produce``, ``fill``, the counters) live here too, so that a
worker imports them by name. :func:`measure` runs a group's runners side by
side.
"""

from __future__ import annotations

import asyncio
import gc
import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import concurrent.futures as cf
    import contextlib
    from collections.abc import Awaitable, Callable
    from types import TracebackType

__all__ = [
    "Group",
    "Row",
    "measure",
]

Family = Literal["unirun", "stdlib"]


# -- what is timed ---------------------------------------------------------------------


class _Lock(Protocol):
    def acquire(self) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
        /,
    ) -> None: ...


class _Queue(Protocol):
    def put(self, item: Any, /) -> None: ...
    def get(self) -> Any: ...


def _timed(loop: Callable[[int], None]) -> Callable[[int], float]:
    """Time ``loop(n)`` with the garbage collector off."""

    def runner(n: int) -> float:
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            loop(n)
            return time.perf_counter() - start
        finally:
            gc.enable()

    return runner


def lock_acquire_release(lock: _Lock) -> Callable[[int], float]:
    """``n`` times ``lock.acquire(); lock.release()``, methods looked up once."""

    def loop(n: int) -> None:
        acquire, release = lock.acquire, lock.release
        for _ in range(n):
            acquire()
            release()

    return _timed(loop)


def lock_with(lock: _Lock) -> Callable[[int], float]:
    """``n`` times ``with lock: pass``."""

    def loop(n: int) -> None:
        for _ in range(n):
            with lock:
                pass

    return _timed(loop)


def queue_round_trip(q: _Queue) -> Callable[[int], float]:
    """``n`` times ``q.put(i); q.get()`` in this thread; checks every item."""

    def loop(n: int) -> None:
        put, get = q.put, q.get
        for i in range(n):
            put(i)
            if get() != i:
                raise AssertionError(f"queue round trip lost item {i}")

    return _timed(loop)


class _AsyncQueue(Protocol):
    async def async_put(self, item: Any, /) -> None: ...
    async def async_get(self) -> Any: ...


def async_queue_round_trip(
    make: Callable[[], _AsyncQueue | asyncio.Queue[int]],
) -> Callable[[int], float]:
    """``n`` times ``await put(i); await get()`` inside one ``asyncio.run``.

    The queue is made inside the loop (``asyncio.Queue`` binds to it); the
    loop's start and close are not timed.
    """

    async def main(n: int) -> float:
        q = make()
        put: Callable[[int], Awaitable[None]]
        get: Callable[[], Awaitable[Any]]
        if isinstance(q, asyncio.Queue):
            put, get = q.put, q.get
        else:
            put, get = q.async_put, q.async_get
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for i in range(n):
                await put(i)
                if await get() != i:
                    raise AssertionError(f"async round trip lost item {i}")
            return time.perf_counter() - start
        finally:
            gc.enable()

    return lambda n: asyncio.run(main(n))


def async_lock_with(
    make: Callable[[], contextlib.AbstractAsyncContextManager[Any]],
) -> Callable[[int], float]:
    """``n`` times ``async with lock: pass`` inside one ``asyncio.run``."""

    async def main(n: int) -> float:
        lock = make()
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(n):
                async with lock:
                    pass
            return time.perf_counter() - start
        finally:
            gc.enable()

    return lambda n: asyncio.run(main(n))


def _payload(size: int) -> bytes:
    return b"x" * size


def produce(q: _Queue, n: int, size: int) -> int:
    """A task for a worker process: put ``n`` items (ints, or bytes of ``size``)."""
    if size:
        item = _payload(size)
        for _ in range(n):
            q.put(item)
    else:
        for i in range(n):
            q.put(i)
    return n


_installed: Any = None  # the multiprocessing.Queue of a ProcessPoolExecutor worker


def install_queue(q: Any) -> None:
    """ProcessPoolExecutor initializer: keep the queue it was started with."""
    global _installed
    _installed = q


def produce_installed(n: int, size: int) -> int:
    """:func:`produce` onto the queue :func:`install_queue` kept."""
    return produce(_installed, n, size)


def transfer(
    submit: Callable[[int, int], cf.Future[int]], q: _Queue, size: int
) -> Callable[[int], float]:
    """Submit a producer of ``n`` items to a warm worker; get them all here.

    Timed from the submission to the task's result, after the last item.
    """

    def wake_if_failed(future: cf.Future[int]) -> None:
        if future.exception() is not None:
            q.put(None)  # the producer failed: unblock the get() below

    def loop(n: int) -> None:
        future = submit(n, size)
        future.add_done_callback(wake_if_failed)
        get = q.get
        if size:
            for _ in range(n):
                item = get()
                if item is None or len(item) != size:
                    future.result(timeout=60)  # raises the producer's error, if any
                    raise AssertionError("an item arrived damaged")
        else:
            for i in range(n):
                if get() != i:
                    future.result(timeout=60)
                    raise AssertionError(f"item {i} arrived out of order")
        if future.result(timeout=60) != n:
            raise AssertionError("the producer put the wrong count")

    return _timed(loop)


class _Mapping(Protocol):
    def __setitem__(self, key: Any, value: Any, /) -> None: ...
    def __getitem__(self, key: Any, /) -> Any: ...
    def __len__(self) -> int: ...


def dict_round_trip(d: _Mapping) -> Callable[[int], float]:
    """``n`` times ``d[key] = i`` then ``d[key]``, over 64 keys; checks each read."""

    def loop(n: int) -> None:
        for i in range(n):
            key = i & 63
            d[key] = i
            if d[key] != i:
                raise AssertionError(f"dict round trip lost {key}")

    return _timed(loop)


def fill(d: _Mapping, writer: int, n: int) -> int:
    """A task for a worker process: ``d[(writer, i)] = i * i`` for ``n`` keys."""
    for i in range(n):
        d[writer, i] = i * i
    return n


def many_writers(
    submit: Callable[[_Mapping, int, int], cf.Future[int]],
    make: Callable[[], _Mapping],
    writers: int,
) -> Callable[[int], float]:
    """``writers`` tasks in warm workers fill one fresh dict with ``n`` keys in all.

    Timed from the first submission until the parent has read the whole dict.
    """

    def loop(n: int) -> None:
        d = make()
        each = max(1, n // writers)
        futures = [submit(d, writer, each) for writer in range(writers)]
        for future in futures:
            future.result(timeout=300)
        if len(d) != each * writers or d[writers - 1, each - 1] != (each - 1) ** 2:
            raise AssertionError("the dict lost keys")

    return _timed(loop)


def count_with_lock(lock: _Lock, counter: _Mapping, times: int) -> int:
    """A task: ``times`` increments of ``counter["n"]``, each under ``lock``."""
    for _ in range(times):
        with lock:
            counter["n"] = counter["n"] + 1
    return times


_value: Any = None  # the multiprocessing.Value of a ProcessPoolExecutor worker


def install_value(value: Any) -> None:
    """ProcessPoolExecutor initializer: keep the shared value it was started with."""
    global _value
    _value = value


def count_with_value(times: int) -> int:
    """:func:`count_with_lock` on the installed ``multiprocessing.Value``."""
    for _ in range(times):
        with _value.get_lock():
            _value.value += 1
    return times


def increments(
    submit: Callable[[int], cf.Future[int]],
    read: Callable[[], int],
    reset: Callable[[], None],
    tasks: int,
) -> Callable[[int], float]:
    """``tasks`` tasks share ``n`` locked increments; the total must be exact."""

    def loop(n: int) -> None:
        reset()
        each = max(1, n // tasks)
        for future in [submit(each) for _ in range(tasks)]:
            future.result(timeout=300)
        if read() != each * tasks:
            raise AssertionError(f"lost updates: {read()} of {each * tasks}")

    return _timed(loop)


# -- rows and groups -------------------------------------------------------------------


@dataclass
class Row:
    """One contender of a group: its timed runs."""

    label: str
    family: Family
    n: int
    times: list[float] = field(default_factory=list)

    @property
    def per_op(self) -> list[float]:
        """Seconds per operation (per item), one per timed run."""
        return [t / self.n for t in self.times]

    @property
    def median(self) -> float:
        """Median seconds per operation."""
        return statistics.median(self.per_op)


@dataclass
class Group:
    """Rows measured side by side; the first row is the stdlib reference."""

    key: str
    section: str
    title: str
    unit: Literal["op", "item"]
    rows: list[Row]

    @property
    def reference(self) -> Row:
        """The stdlib row the ratios divide by."""
        return self.rows[0]

    def ratio(self, row: Row) -> float:
        """``row``'s median time over the reference's (below 1: faster)."""
        return row.median / self.reference.median

    def row(self, label_start: str) -> Row:
        """The row whose label starts with ``label_start``."""
        return next(r for r in self.rows if r.label.startswith(label_start))

    def as_dict(self) -> dict[str, Any]:
        """The group as JSON: every run's time, medians and ratios."""
        return {
            "key": self.key,
            "section": self.section,
            "title": self.title,
            "unit": self.unit,
            "rows": [
                {
                    **asdict(r),
                    "per_op_s": r.per_op,
                    "median_s": r.median,
                    "min_s": min(r.per_op),
                    "max_s": max(r.per_op),
                    "ratio": self.ratio(r),
                }
                for r in self.rows
            ],
        }


def measure(group: Group, runners: list[Callable[[int], float]], repeat: int) -> Group:
    """Warm every runner up, then interleave ``repeat`` timed runs of each."""
    for row, runner in zip(group.rows, runners, strict=True):
        runner(max(1, row.n // 10))
        runner(max(1, row.n // 10))
    order = list(range(len(runners)))
    for round_ in range(repeat):
        shift = round_ % len(order)
        for index in order[shift:] + order[:shift]:
            row = group.rows[index]
            elapsed = runners[index](row.n)
            if not (elapsed > 0 and math.isfinite(elapsed)):
                raise AssertionError(f"{row.label}: timed {elapsed!r}")
            row.times.append(elapsed)
    return group
