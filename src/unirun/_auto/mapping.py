"""The map planner: probe the first item, then route the rest as a whole.

map(fn, items) -> first item: dispatched like a submit (a probe if fn is new)
               -> the next one too, while the verdict asks for another look
               -> when it is done, the rest by plan_map(verdict, ...):
                  CLUSTER  chunks on the Dask cluster (as PROCESS)
                  PROCESS  process chunks (AdaptiveBatches, or fixed chunksize)
                  BATCH    one thread's batches (inline-sized items)
                  THREAD   one task per item on the thread pool
                  SUBMIT   one task per item, each dispatched (coroutines...)

:class:`RoutedMap` feeds a :class:`~unirun._map.MapIterator` and asks the
executor for nothing but what :class:`MapRoute` names.
"""

from __future__ import annotations

import enum
import functools
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

from .._batches import AdaptiveBatches
from .._call import ChunkResult
from .._future import Future
from .._starting import HelperThread, began, start_thread
from .classify import BUSY_MIN, cluster_pays

if TYPE_CHECKING:
    import concurrent.futures as cf
    from collections.abc import Callable

    from .._base import BaseExecutor
    from .._options import TaskOptions
    from .classify import Costs, Verdict

__all__ = ["MAP_PROCESS_MIN_S", "MapPlan", "MapRoute", "RoutedMap", "plan_map"]

#: A map whose remaining work is below this (seconds, estimated) never starts
#: processes for it.
MAP_PROCESS_MIN_S = 0.05
#: The most items of one map probed one after the other before the rest go.
MAP_PROBES = 3


class MapPlan(enum.Enum):
    """Where the items of a map after the first one go."""

    #: Chunks on the Dask cluster, sized as for PROCESS.
    CLUSTER = "cluster"
    #: Chunks on the process pool, sized from measured run times (or chunksize).
    PROCESS = "process"
    #: Batches on one thread: items too small for any hand-off.
    BATCH = "batch"
    #: One task per item on the thread pool.
    THREAD = "thread"
    #: One task per item, each routed as a submit would be.
    SUBMIT = "submit"


class MapRoute(Protocol):
    """What a :class:`RoutedMap` needs from its executor."""

    def settled(self, fn: Callable[..., Any]) -> bool:
        """Whether ``fn`` has a verdict that no probe is about to replace."""

    def dispatch(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        on_early: Callable[[], object] | None = None,
    ) -> cf.Future[Any]:
        """Route one call as ``submit`` does; ``on_early()`` once the calls
        after it need not wait for its end (its verdict came before it, or
        from its first window), if they do not."""

    def map_plan(self, fn: Callable[..., Any], rest: list[tuple[Any, ...]]) -> MapPlan:
        """Where ``rest`` goes (see :func:`plan_map`)."""

    def map_pool(self, plan: MapPlan, fn: Callable[..., Any]) -> BaseExecutor:
        """The pool that runs a plan's chunks (all plans but SUBMIT)."""

    def send_chunk(
        self,
        pool: BaseExecutor,
        fn: Callable[..., Any],
        chunk: list[tuple[Any, ...]],
        options: TaskOptions,
    ) -> cf.Future[Any]:
        """Submit a chunk to ``pool`` (the thread pool, processes or the
        cluster; the thread pool if the chunk does not pickle), within the
        executor's ``max_workers``."""

    def unreserve(self) -> None:
        """Let the executor close: everything this map had to route is routed."""

    @property
    def cancelling(self) -> bool:
        """Whether the executor is shutting down with ``cancel_futures``."""


def plan_map(
    verdict: Verdict | None,
    count: int,
    cpus: int,
    free_threaded: bool,
    transferable: Callable[[], bool],
    process_cost: Callable[[], float],
    cluster_costs: Callable[[], Costs] | None = None,
) -> MapPlan:
    """Where the ``count`` items after the probe go, given ``fn``'s verdict.

    ``transferable``, ``process_cost`` and ``cluster_costs`` (the costs with the
    cluster's measured; ``None`` without a cluster) are asked only when the
    plan turns on them (a pickling, a process start, tasks on the cluster).
    """
    if verdict is None or verdict.backend == "coroutine":
        return MapPlan.SUBMIT
    if verdict.backend == "dask":
        return MapPlan.CLUSTER
    if verdict.backend == "inline":
        # Too small for any hand-off: batches on one thread beat even chunked
        # processes (each item would still be pickled twice).
        return MapPlan.BATCH
    holding = (
        verdict.busy >= BUSY_MIN
        and verdict.releases_gil is not True
        and not free_threaded
    )
    # Its own cost: CPU time (the wall time may hold GIL waits).
    work = count * verdict.cpu_s
    transferable = functools.cache(transferable)  # pickled once at most
    if (
        holding
        and cluster_costs is not None
        and work >= MAP_PROCESS_MIN_S
        and transferable()
    ):
        # Two chunks per worker thread of the cluster, as AdaptiveBatches
        # aims for: the chunks must pay for the trip where one call can't.
        costs = cluster_costs()
        if cluster_pays(work / (2 * max(1, costs.cluster_slots)), costs):
            return MapPlan.CLUSTER
    if verdict.backend == "process":
        return MapPlan.PROCESS
    cpu_holding = holding and cpus >= 2
    # Short calls, but many: chunks can pay for the trip where one can't.
    if cpu_holding and work >= MAP_PROCESS_MIN_S and transferable():
        per_chunk = work / (2 * cpus)
        if per_chunk >= 4 * process_cost():
            return MapPlan.PROCESS
    return MapPlan.THREAD


class RoutedMap:
    """Feeds a :class:`~unirun._map.MapIterator` for an auto ``map``.

    A :class:`~unirun._map.BatchFeeder`. The probe's slot is completed only
    after the rest's first slots were queued, so a consumer that reaches the
    end of the queue is at the end. The executor was reserved for this map
    (it does not close its pools) until every item has gone to a pool, the
    last measured chunk included, or the iteration was closed.
    """

    def __init__(
        self,
        route: MapRoute,
        fn: Callable[..., Any],
        items: list[tuple[Any, ...]],
        options: TaskOptions,
        chunksize: int | None,
    ) -> None:
        self._route = route
        self._fn = fn
        self._items = items
        self._options = options
        self._chunksize = chunksize
        self._closed = False
        self._inner: AdaptiveBatches | None = None
        self._lock = threading.Lock()
        self._reserved = True  # by the executor's map, before start()
        self.slots: deque[cf.Future[Any]] = deque()

    def start(self) -> None:
        """Dispatch the first item (or, for a known function, route them all)."""
        try:
            if not self._items or self._route.settled(self._fn):
                self._route_rest(self._items)
            else:
                self._probe(0)
        except BaseException:
            self._release()
            raise

    def close(self) -> None:
        """Route nothing more."""
        self._closed = True
        inner = self._inner  # once: the last chunk's _release() may clear it
        if inner is not None:
            inner.close()
        self._release()

    def _release(self) -> None:
        """Let the executor close: this map routes nothing more (once)."""
        with self._lock:
            reserved, self._reserved = self._reserved, False
        # Nothing more to cut: the batches (whose chunk callback refers to this
        # map) go, so no cycle keeps the items alive until a garbage collection.
        self._inner = None
        if reserved:
            self._route.unreserve()

    def _probe(self, index: int) -> None:
        """Dispatch item ``index`` alone; the items after it wait for its end,
        or for its verdict if that comes first: they may be what it waits for
        (a barrier, an event another item sets), as on a thread pool."""
        early = _Early()
        try:
            first = self._route.dispatch(
                self._fn, self._items[index], {}, self._options, early.fire
            )
        except RuntimeError:  # shut down with cancel_futures since it looked
            if not self._cancel_rest():
                raise
            return
        slot: Future[Any] = Future()
        self.slots.append(slot)
        slot.add_done_callback(lambda s: s.cancelled() and first.cancel())
        early.then(lambda: self._go_early(early, index))
        first.add_done_callback(lambda f: self._after_probe(f, slot, index, early))

    def _go_early(self, early: _Early, index: int) -> None:
        """Route the items after ``index`` while it still runs (its verdict
        came first); an error doing so fails the map after what was routed."""
        if not early.claim():
            return  # it ended first
        try:
            self._route_rest(self._items[index + 1 :])
        except BaseException as exc:
            self._release()
            failed: Future[Any] = Future()
            failed.set_exception(exc)
            self.slots.append(failed)
        finally:
            early.routed()

    def _after_probe(
        self, first: cf.Future[Any], slot: Future[Any], index: int, early: _Early
    ) -> None:
        rest = index + 1
        if not early.claim():  # the items after it go on its verdict: its
            # slot is done once their first slots are queued (see the class)
            early.once_routed(lambda: _settle_chunk(first, slot))
            return
        try:
            if first.cancelled():  # the map was closed, or shut down
                self._release()
            elif first.exception() is None and (
                not self._route.settled(self._fn)
                and rest < min(len(self._items) - 1, MAP_PROBES)
                and not self._closed
                and not self._route.cancelling  # else: the rest is cancelled
            ):
                # The verdict asked for another look (the GIL test could not
                # tell): the next item is probed before the rest go.
                self._probe(rest)
            else:
                # A failed first item fails the map there, as the builtin map;
                # the items after it still run, as on every executor.
                self._route_rest(self._items[rest:])
        except BaseException as exc:
            self._release()
            slot._set_exception_if_pending(exc)
            return
        _settle_chunk(first, slot)

    def _cancel_rest(self) -> bool:
        """Whether the executor is shutting down with ``cancel_futures``: if
        so, the items not sent yet never start (one cancelled slot), as with the
        stdlib's map, which sent them all at the call."""
        if not self._route.cancelling:
            return False
        self.slots.append(_cancelled())
        self._release()
        return True

    def _route_rest(self, rest: list[tuple[Any, ...]]) -> None:
        """Route ``rest``; release the executor once every item has gone."""
        if self._closed or not rest:
            self._release()
            return
        if self._cancel_rest():
            return
        try:
            self._send_rest(rest)
        except RuntimeError:
            # A pool refused an item: a shutdown with cancel_futures closed it
            # since the check above. The items sent so far keep their slots.
            if not self._cancel_rest():
                raise

    def _send_rest(self, rest: list[tuple[Any, ...]]) -> None:
        route, fn, options = self._route, self._fn, self._options
        plan = route.map_plan(fn, rest)
        if plan is MapPlan.SUBMIT:
            for args in rest:
                self.slots.append(_as_chunk(route.dispatch(fn, args, {}, options)))
        elif plan in _CHUNKED and self._chunksize is not None:
            pool = route.map_pool(plan, fn)
            for start in range(0, len(rest), self._chunksize):
                chunk = rest[start : start + self._chunksize]
                self.slots.append(route.send_chunk(pool, fn, chunk, options))
        elif plan is MapPlan.THREAD:
            pool = route.map_pool(plan, fn)
            for args in rest:
                self.slots.append(route.send_chunk(pool, fn, [args], options))
        else:
            self._batches(route.map_pool(plan, fn), plan, rest)
            return  # released once the last chunk is cut
        self._release()

    def _cut_no_more(self) -> bool:
        """Whether the executor is shutting down with ``cancel_futures``: if so,
        the batches cut no more chunks."""
        if not self._route.cancelling:
            return False
        self.close()
        return True

    def _batches(
        self, pool: BaseExecutor, plan: MapPlan, rest: list[tuple[Any, ...]]
    ) -> None:
        """Chunks sized from measured run times, cut as earlier ones finish."""
        fn, options, left = self._fn, self._options, len(rest)

        def submit_chunk(chunk: list[tuple[Any, ...]]) -> cf.Future[Any]:
            nonlocal left
            if self._cut_no_more():
                return _cancelled()
            try:
                future = self._route.send_chunk(pool, fn, chunk, options)
            except RuntimeError:  # the pool refused it: see _route_rest
                if self._cut_no_more():
                    return _cancelled()
                self._release()
                raise
            except BaseException:
                self._release()
                raise
            left -= len(chunk)  # under the batches' lock
            if not left:
                self._release()
            return future

        if plan in _CHUNKED:
            inner = AdaptiveBatches(submit_chunk, rest, pool._parallelism())
        else:  # one thread's batches, spread if the items prove long after all
            inner = AdaptiveBatches(submit_chunk, rest, 1, pool._parallelism())
        inner.slots = self.slots
        self._inner = inner
        inner.start()


#: The plans whose chunks are sized for the pool's parallelism.
_CHUNKED = (MapPlan.PROCESS, MapPlan.CLUSTER)


class _Early:
    """Whether a probed item's verdict came before its end: told by the
    verdicts (maybe before the map is ready to hear it), and claimed once,
    by the verdict or by the item's end, whichever routes the items after it.
    The item's own slot is settled only once they are routed."""

    __slots__ = ("_claimed", "_done", "_lock", "_routed", "_then", "_told")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._told = self._claimed = self._routed = False
        self._then: Callable[[], object] | None = None
        self._done: Callable[[], object] | None = None

    def fire(self) -> None:
        """The verdict came: run what :meth:`then` set, now or once it is set
        (in a thread of its own: the verdicts' thread watches other probes)."""
        with self._lock:
            self._told, then = True, self._then
        if then is not None:
            _off_thread(then)

    def then(self, action: Callable[[], object]) -> None:
        """Run ``action`` once told (now, if told already)."""
        with self._lock:
            self._then, told = action, self._told
        if told:
            action()

    def claim(self) -> bool:
        """Whether the caller is the first to route the items after it."""
        with self._lock:
            claimed, self._claimed = self._claimed, True
            self._then = None  # the map is not kept alive by whoever tells
        return not claimed

    def routed(self) -> None:
        """The items after it went (or failed to): run what waited for that."""
        with self._lock:
            self._routed, done, self._done = True, self._done, None
        if done is not None:
            done()

    def once_routed(self, done: Callable[[], object]) -> None:
        """Run ``done`` once the items after it went: now, or at :meth:`routed`."""
        with self._lock:
            if not self._routed:
                self._done = done
                return
        done()


def _off_thread(action: Callable[[], object]) -> None:
    """Run ``action`` in a thread of its own, or here if none can start."""
    thread = HelperThread(target=action, name="AutoExecutor-map")
    try:
        start_thread(thread)
    except RuntimeError:  # at interpreter exit, from 3.12
        if began(thread, patience=0):
            return
        action()


def _cancelled() -> Future[Any]:
    """A Future cancelled already (a slot for items that never start)."""
    future: Future[Any] = Future()
    future.cancel()
    return future


def _settle_chunk(done: cf.Future[Any], chunk: Future[Any]) -> None:
    """Give ``chunk`` the outcome of one finished call, as a one-value chunk."""
    if done.cancelled():
        chunk.cancel()
    elif (error := done.exception()) is not None:
        chunk._set_result_if_pending(ChunkResult([], error))
    else:
        chunk._set_result_if_pending(ChunkResult([done.result()], None))


def _as_chunk(future: cf.Future[Any]) -> Future[Any]:
    """A Future of a one-value :class:`ChunkResult` that follows ``future``."""
    chunk: Future[Any] = Future()
    chunk.add_done_callback(lambda c: c.cancelled() and future.cancel())
    future.add_done_callback(lambda done: _settle_chunk(done, chunk))
    return chunk
