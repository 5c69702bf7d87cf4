"""Tasks that use primitives, in a sync and an async version each.

Module-level so worker processes can import them. Each pair does the same thing:
the sync one with the stdlib-style methods, the async one with ``async_*``.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio

import unirun

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

# -- producer / consumer ------------------------------------------------------------


def produce(q: unirun.Queue[Any], n: int) -> int:
    """Put ``0..n-1`` then ``None``; return how many were put."""
    for i in range(n):
        q.put(i)
    q.put(None)
    return n


async def async_produce(q: unirun.Queue[Any], n: int) -> int:
    """``produce`` with ``async_put``."""
    for i in range(n):
        await q.async_put(i)
    await q.async_put(None)
    return n


def consume(q: unirun.Queue[Any]) -> tuple[list[int], int]:
    """Get items until ``None``; return them and the largest ``qsize`` seen."""
    items: list[int] = []
    largest = 0
    while True:
        largest = max(largest, q.qsize())
        item = q.get()
        q.task_done()
        if item is None:
            return items, largest
        items.append(item)


async def async_consume(q: unirun.Queue[Any]) -> tuple[list[int], int]:
    """``consume`` with ``async_get``."""
    items: list[int] = []
    largest = 0
    while True:
        largest = max(largest, q.qsize())
        item = await q.async_get()
        q.task_done()
        if item is None:
            return items, largest
        items.append(item)


# -- mutual exclusion and caps ------------------------------------------------------


def hold(
    primitive: unirun.Lock | unirun.Semaphore,
    entered: unirun.Queue[Any],
    go: unirun.Event,
    rounds: int,
) -> list[tuple[float, float]]:
    """Hold ``primitive`` ``rounds`` times; report entries; return the intervals."""
    intervals = []
    for _ in range(rounds):
        with primitive:
            start = time.monotonic()
            entered.put(start)
            go.wait()
            time.sleep(0.001)
            intervals.append((start, time.monotonic()))
    return intervals


async def async_hold(
    primitive: unirun.Lock | unirun.Semaphore,
    entered: unirun.Queue[Any],
    go: unirun.Event,
    rounds: int,
) -> list[tuple[float, float]]:
    """``hold`` with ``async with`` and ``async_wait``."""
    intervals = []
    for _ in range(rounds):
        async with primitive:
            start = time.monotonic()
            await entered.async_put(start)
            await go.async_wait()
            await anyio.sleep(0.001)
            intervals.append((start, time.monotonic()))
    return intervals


# -- events -------------------------------------------------------------------------


def wait_for_event(event: unirun.Event, ready: unirun.Queue[Any]) -> bool:
    """Say we are about to wait, then wait for ``event``; return ``wait()``'s value."""
    ready.put("waiting")
    return event.wait(timeout=60)


async def async_wait_for_event(event: unirun.Event, ready: unirun.Queue[Any]) -> bool:
    """``wait_for_event`` with ``async_wait``."""
    await ready.async_put("waiting")
    with anyio.fail_after(60):
        return await event.async_wait()


# -- time-outs and errors -----------------------------------------------------------


def time_outs(
    lock: unirun.Lock,
    sem: unirun.Semaphore,
    empty: unirun.Queue[Any],
    full: unirun.Queue[Any],
    event: unirun.Event,
) -> list[object]:
    """Every blocking call with a short time-out, on primitives that will not give."""
    results: list[object] = [
        lock.acquire(timeout=0.05),
        lock.acquire(blocking=False),
        sem.acquire(timeout=0.05),
        sem.acquire(blocking=False),
        event.wait(0.05),
    ]
    calls: list[Callable[[], object]] = [
        lambda: empty.get(timeout=0.05),
        empty.get_nowait,
    ]
    for call in calls:
        try:
            call()
        except queue.Empty:
            results.append("Empty")
    calls = [lambda: full.put(1, timeout=0.05), lambda: full.put_nowait(1)]
    for call in calls:
        try:
            call()
        except queue.Full:
            results.append("Full")
    return results


async def async_time_outs(
    lock: unirun.Lock,
    sem: unirun.Semaphore,
    empty: unirun.Queue[Any],
    full: unirun.Queue[Any],
    event: unirun.Event,
) -> list[object]:
    """Every async wait under a short deadline: each must be cancelled in time."""
    waits: list[Callable[[], Awaitable[object]]] = [
        lock.async_acquire,
        sem.async_acquire,
        event.async_wait,
        empty.async_get,
        lambda: full.async_put(1),
    ]
    results: list[object] = []
    for wait in waits:
        with anyio.move_on_after(0.05) as scope:
            await wait()
        results.append("cancelled" if scope.cancelled_caught else "returned")
    return results


def misuse(kind: str, primitive: Any) -> str:
    """Call ``primitive`` wrongly; return the exception as "Type: message"."""
    try:
        if kind == "release":
            primitive.release()
        elif kind == "task_done":
            primitive.task_done()
        elif kind == "acquire":
            primitive.acquire(False, 1)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def get_one(q: unirun.Queue[Any]) -> Any:
    """Return one item from ``q`` (waiting up to a minute)."""
    return q.get(timeout=60)


def identities(*primitives: object) -> list[int]:
    """Return the ``id()`` of each primitive as this process sees it."""
    return [id(p) for p in primitives]


def put_from_worker(q: unirun.Queue[Any], item: object) -> None:
    """Put ``item`` on ``q`` from inside a task."""
    q.put(item)


def wait_then_report(event: unirun.Event) -> bool:
    """Block until ``event`` is set (at most a minute); return the flag."""
    return event.wait(60)


def use_lock_and_queue(lock: unirun.Lock, q: unirun.Queue[Any]) -> str:
    """Use both primitives once; say so."""
    with lock:
        q.put("used")
        return str(q.get(timeout=60))


def _refuse_to_rebuild() -> None:
    raise RuntimeError("cannot rebuild")


class Unrebuildable:
    """Pickles fine; unpickling it raises ``RuntimeError``."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_refuse_to_rebuild, ())


# -- barrier actions ----------------------------------------------------------------


class CountingAction:
    """A barrier action that counts its calls (picklable: it may travel)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


class FailingAction(CountingAction):
    """A barrier action that counts its calls, then raises ``RuntimeError``."""

    def __call__(self) -> None:
        super().__call__()
        raise RuntimeError("the action failed")


# -- dicts --------------------------------------------------------------------------


def keys_of(d: unirun.Dict[Any, Any]) -> str:
    """The ``repr`` of the dict's keys, as this process sees them."""
    return repr(list(d))


def square_into(d: unirun.Dict[int, int], n: int) -> None:
    """The ``Manager().dict()`` example's task: ``d[n] = n**2``."""
    d[n] = n**2


def first_writer(d: unirun.Dict[str, int], me: int) -> int:
    """``setdefault`` the winner; return whoever won."""
    return int(d.setdefault("winner", me))


def take_keys(d: unirun.Dict[int, int], keys: range) -> list[int]:
    """Pop every key of ``keys`` still there; return the ones this task took."""
    return [key for key in keys if d.pop(key, None) is not None]


# -- reentrant locks ----------------------------------------------------------------


def hold_twice(
    lock: unirun.RLock,
    entered: unirun.Queue[Any],
    go: unirun.Event,
    rounds: int,
) -> list[tuple[float, float]]:
    """``hold`` taking the reentrant lock twice, nested."""
    intervals = []
    for _ in range(rounds):
        with lock, lock:
            start = time.monotonic()
            entered.put(start)
            go.wait()
            time.sleep(0.001)
            intervals.append((start, time.monotonic()))
    return intervals


async def async_hold_twice(
    lock: unirun.RLock,
    entered: unirun.Queue[Any],
    go: unirun.Event,
    rounds: int,
) -> list[tuple[float, float]]:
    """``hold_twice`` with ``async with``."""
    intervals = []
    for _ in range(rounds):
        async with lock, lock:
            start = time.monotonic()
            await entered.async_put(start)
            await go.async_wait()
            await anyio.sleep(0.001)
            intervals.append((start, time.monotonic()))
    return intervals


# -- conditions ---------------------------------------------------------------------


def wait_notified(
    cond: unirun.Condition, ready: unirun.Queue[Any], woken: unirun.Queue[Any]
) -> bool:
    """Say so while holding the lock, wait once, report what ``wait`` returned."""
    with cond:
        ready.put("waiting")
        result = cond.wait(timeout=60)
    woken.put(result)
    return result


async def async_wait_notified(
    cond: unirun.Condition, ready: unirun.Queue[Any], woken: unirun.Queue[Any]
) -> bool:
    """``wait_notified`` with ``async with`` and ``async_wait``."""
    async with cond:
        await ready.async_put("waiting")
        with anyio.fail_after(60):
            result = await cond.async_wait()
    await woken.async_put(result)
    return result


def wait_for_count(
    cond: unirun.Condition, box: unirun.Dict[str, int], target: int
) -> int:
    """Wait until ``box["count"]`` reaches ``target``; return it."""
    with cond:
        cond.wait_for(lambda: box.get("count", 0) >= target, timeout=60)
        return box["count"]


async def async_wait_for_count(
    cond: unirun.Condition, box: unirun.Dict[str, int], target: int
) -> int:
    """``wait_for_count`` with ``async_wait_for``."""
    async with cond:
        with anyio.fail_after(60):
            await cond.async_wait_for(lambda: box.get("count", 0) >= target)
        return box["count"]


# -- barriers -----------------------------------------------------------------------


def pass_barrier(barrier: unirun.Barrier, rounds: int) -> list[int]:
    """Wait at the barrier ``rounds`` times; return the indices."""
    return [barrier.wait(timeout=60) for _ in range(rounds)]


async def async_pass_barrier(barrier: unirun.Barrier, rounds: int) -> list[int]:
    """``pass_barrier`` with ``async_wait``."""
    indices = []
    for _ in range(rounds):
        with anyio.fail_after(60):
            indices.append(await barrier.async_wait())
    return indices


def wait_until_broken(barrier: unirun.Barrier, ready: unirun.Queue[Any]) -> str:
    """Say so, then wait at the barrier; return what happened."""
    ready.put("waiting")
    try:
        barrier.wait(timeout=60)
    except threading.BrokenBarrierError:
        return "broken"
    return "passed"


async def async_wait_until_broken(
    barrier: unirun.Barrier, ready: unirun.Queue[Any]
) -> str:
    """``wait_until_broken`` with ``async_wait``."""
    await ready.async_put("waiting")
    try:
        with anyio.fail_after(60):
            await barrier.async_wait()
    except threading.BrokenBarrierError:
        return "broken"
    return "passed"


# -- queue shutdown -----------------------------------------------------------------


def get_until_shut(q: unirun.Queue[Any], ready: unirun.Queue[Any]) -> list[Any]:
    """Say so, then get items until the queue is shut down; return them."""
    ready.put("getting")
    items = []
    try:
        while True:
            items.append(q.get(timeout=60))
    except unirun.QueueShutDown:
        return items


async def async_get_until_shut(
    q: unirun.Queue[Any], ready: unirun.Queue[Any]
) -> list[Any]:
    """``get_until_shut`` with ``async_get``."""
    await ready.async_put("getting")
    items = []
    try:
        while True:
            with anyio.fail_after(60):
                items.append(await q.async_get())
    except unirun.QueueShutDown:
        return items


def put_until_shut(q: unirun.Queue[Any], ready: unirun.Queue[Any]) -> int:
    """Say so, then put until the queue is shut down; return how many went in."""
    ready.put("putting")
    count = 0
    try:
        while True:
            q.put(count, timeout=60)
            count += 1
    except unirun.QueueShutDown:
        return count


async def async_put_until_shut(q: unirun.Queue[Any], ready: unirun.Queue[Any]) -> int:
    """``put_until_shut`` with ``async_put``."""
    await ready.async_put("putting")
    count = 0
    try:
        while True:
            with anyio.fail_after(60):
                await q.async_put(count)
            count += 1
    except unirun.QueueShutDown:
        return count


def wait_at(barrier: unirun.Barrier) -> int:
    """Wait at the barrier once, with its own time-out."""
    return barrier.wait()


def slow_action(
    started: unirun.Event, release: unirun.Event, done: unirun.Event
) -> None:
    """A barrier action that runs until ``release`` is set (at most 30 s)."""
    started.set()
    release.wait(30)
    done.set()
