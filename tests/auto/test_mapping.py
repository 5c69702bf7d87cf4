"""The map planner: plan_map as a table, and RoutedMap against a fake route."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import gc
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from _auto_tasks import plus_one
from _tasks import crash_on_multiple_of_seven, fail_if_negative
from unirun._auto.classify import Verdict
from unirun._auto.mapping import MAP_PROBES, MapPlan, RoutedMap, plan_map
from unirun._auto.profiling import Probe
from unirun._auto.routing import Router
from unirun._call import run_chunk
from unirun._map import MapIterator
from unirun._options import NO_OPTIONS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from unirun._base import BaseExecutor
    from unirun._options import TaskOptions


def verdict(
    backend: str, cpu_s: float = 0.001, busy: float = 1.0, releases: bool | None = False
) -> Verdict:
    return Verdict(backend, "why", cpu_s, cpu_s, 1.0, busy, releases, None, 1)  # type: ignore[arg-type]  # a backend name


class Asked:
    """Counts the lazy inputs plan_map may ask for."""

    def __init__(self, picklable: bool = True, cost: float = 300e-6) -> None:
        self.picklable, self.cost = picklable, cost
        self.transfers = self.costs = 0

    def transferable(self) -> bool:
        self.transfers += 1
        return self.picklable

    def process_cost(self) -> float:
        self.costs += 1
        return self.cost


# (id, verdict, items, cpus, free-threaded, picklable, plan, asks for the cost)
PLANS: list[tuple[str, Verdict | None, int, int, bool, bool, MapPlan, bool]] = [
    ("unknown", None, 100, 2, False, True, MapPlan.SUBMIT, False),
    ("coroutine", verdict("coroutine"), 100, 2, False, True, MapPlan.SUBMIT, False),
    ("process", verdict("process"), 100, 2, False, True, MapPlan.PROCESS, False),
    ("inline", verdict("inline", 1e-6), 10**5, 2, False, True, MapPlan.BATCH, False),
    ("many short GIL-holding", verdict("thread", 400e-6), 1000, 2, False, True,
     MapPlan.PROCESS, True),
    ("few short GIL-holding", verdict("thread", 400e-6), 10, 2, False, True,
     MapPlan.THREAD, False),
    ("GIL-free", verdict("thread", 400e-6, releases=True), 1000, 2, False, True,
     MapPlan.THREAD, False),
    ("waiting", verdict("thread", 400e-6, busy=0.1), 1000, 2, False, True,
     MapPlan.THREAD, False),
    ("one CPU", verdict("thread", 400e-6), 1000, 1, False, True, MapPlan.THREAD,
     False),
    ("free-threaded", verdict("thread", 400e-6), 1000, 2, True, True,
     MapPlan.THREAD, False),
    ("unpicklable", verdict("thread", 400e-6), 1000, 2, False, False,
     MapPlan.THREAD, False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("row", "seen", "count", "cpus", "free", "picklable", "plan", "costed"),
    PLANS,
    ids=[row[0] for row in PLANS],
)
def test_plan_map_table(
    row: str,
    seen: Verdict | None,
    count: int,
    cpus: int,
    free: bool,
    picklable: bool,
    plan: MapPlan,
    costed: bool,
) -> None:
    asked = Asked(picklable)
    assert plan_map(
        seen, count, cpus, free, asked.transferable, asked.process_cost
    ) is (plan)
    assert asked.costs == int(costed)
    assert asked.transfers <= 1


class FakeRoute:
    """A MapRoute over one thread pool: records what the map asked for."""

    def __init__(self, pool: BaseExecutor, plan: MapPlan, settle_after: int = 1):
        self.pool = pool
        self.plan = plan
        self.settle_after = settle_after
        self.dispatched: list[tuple[Any, ...]] = []
        self.reserved = 1  # as AutoExecutor._map reserves before the map starts
        self.cancel = False
        self.told: list[Callable[[], object]] = []  # the dispatches' on_early
        self.futures: list[cf.Future[Any]] = []  # what the dispatches returned

    def settled(self, fn: Callable[..., Any]) -> bool:
        return len(self.dispatched) >= self.settle_after

    def dispatch(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        on_early: Callable[[], object] | None = None,
    ) -> cf.Future[Any]:
        self.dispatched.append(args)
        if on_early is not None:
            self.told.append(on_early)
        future = self.pool.submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future

    def map_plan(self, fn: Callable[..., Any], rest: list[tuple[Any, ...]]) -> MapPlan:
        return self.plan

    def map_pool(self, plan: MapPlan, fn: Callable[..., Any]) -> BaseExecutor:
        return self.pool

    def send_chunk(
        self,
        pool: BaseExecutor,
        fn: Callable[..., Any],
        chunk: list[tuple[Any, ...]],
        options: TaskOptions,
    ) -> cf.Future[Any]:
        return pool._submit(run_chunk, (fn, chunk), {}, options)

    def unreserve(self) -> None:
        self.reserved -= 1

    @property
    def cancelling(self) -> bool:
        return self.cancel


@pytest.fixture
def pool() -> Iterator[unirun.ThreadExecutor]:
    with unirun.ThreadExecutor(4) as threads:
        yield threads


def routed_map(
    route: FakeRoute,
    fn: Callable[[int], Any],
    items: list[int],
    chunksize: int | None = None,
) -> MapIterator[Any]:
    routed = RoutedMap(route, fn, [(x,) for x in items], NO_OPTIONS, chunksize)
    return MapIterator(
        lambda item: None,
        iter(()),
        end_time=None,
        buffersize=None,
        chunked=True,
        keep_alive=route,
        batches=routed,
    )


def run_map(
    route: FakeRoute, items: list[int], chunksize: int | None = None
) -> list[Any]:
    return list(routed_map(route, plus_one, items, chunksize))


@pytest.mark.parametrize(
    "plan", [MapPlan.PROCESS, MapPlan.BATCH, MapPlan.THREAD, MapPlan.SUBMIT]
)
def test_routed_map_probes_first_then_routes_the_rest(
    pool: unirun.ThreadExecutor, plan: MapPlan
) -> None:
    route = FakeRoute(pool, plan)
    assert run_map(route, list(range(50))) == [x + 1 for x in range(50)]
    assert route.dispatched[0] == (0,)  # the probe, alone, first
    if plan is MapPlan.SUBMIT:
        assert route.dispatched == [(x,) for x in range(50)]
    else:
        assert route.dispatched == [(0,)]
    assert route.reserved == 0  # released exactly once


@pytest.mark.parametrize("plan", [MapPlan.THREAD, MapPlan.SUBMIT])
@pytest.mark.parametrize("settle_after", [1, 10**6], ids=["settled", "unsettled"])
def test_a_failed_first_item_fails_the_map_there_and_the_rest_still_run(
    pool: unirun.ThreadExecutor, plan: MapPlan, settle_after: int
) -> None:
    # As on every executor (and the stdlib's): all items are accepted at the
    # call and run, though nobody iterates. (Iterating to the failure would
    # cancel the items that have not started yet, as the stdlib's map does.)
    ran: list[int] = []
    all_ran = threading.Event()
    lock = threading.Lock()

    def fails_first(x: int) -> int:
        if x == 0:
            raise ValueError("the first item fails")
        with lock:
            ran.append(x)
            if len(ran) == 9:
                all_ran.set()
        return x

    route = FakeRoute(pool, plan, settle_after)
    iterator = routed_map(route, fails_first, list(range(10)))
    assert all_ran.wait(60)
    assert sorted(ran) == list(range(1, 10))
    with pytest.raises(ValueError, match="first item"):
        next(iterator)
    pool.shutdown(wait=True)
    assert route.reserved == 0


@pytest.mark.parametrize("plan", [MapPlan.THREAD, MapPlan.SUBMIT, MapPlan.BATCH])
def test_the_rest_goes_when_the_probe_s_verdict_comes_before_its_end(
    pool: unirun.ThreadExecutor, plan: MapPlan
) -> None:
    # The first item waits for the second: held until the first ended, the
    # second never ran (a barrier hung; an event's wait timed out).
    route = FakeRoute(pool, plan)
    second_ran, first_left = threading.Event(), threading.Event()

    def first_waits(x: int) -> int:
        if x == 0:
            first_left.set()
            assert second_ran.wait(60)
        else:
            second_ran.set()
        return x + 1

    iterator = routed_map(route, first_waits, list(range(4)))
    assert first_left.wait(60)
    assert len(route.told) == 1
    route.told[0]()  # the verdicts: its first window let the held calls go
    assert list(iterator) == [1, 2, 3, 4]
    assert route.dispatched[0] == (0,)
    assert route.reserved == 0


class SlowPlan(FakeRoute):
    """A FakeRoute whose ``map_plan`` waits to be let go (a process start
    timed, an argument pickled)."""

    def __init__(self, pool: BaseExecutor, plan: MapPlan) -> None:
        super().__init__(pool, plan)
        self.planning, self.go_on = threading.Event(), threading.Event()

    def map_plan(self, fn: Callable[..., Any], rest: list[tuple[Any, ...]]) -> MapPlan:
        self.planning.set()
        assert self.go_on.wait(60)
        return self.plan


def test_a_probe_that_ends_while_the_rest_is_routed_early_waits_for_it(
    pool: unirun.ThreadExecutor,
) -> None:
    # Its slot was done at once: a consumer that reached the end of the queue
    # before the rest's first slots were in it took the map for ended.
    route = SlowPlan(pool, MapPlan.THREAD)
    probe_may_end = threading.Event()

    def first_waits(x: int) -> int:
        if x == 0:
            assert probe_may_end.wait(60)
        return x + 1

    routed = RoutedMap(route, first_waits, [(x,) for x in range(4)], NO_OPTIONS, None)
    iterator: MapIterator[Any] = MapIterator.of_batches(
        routed, end_time=None, keep_alive=route, progress=None, total=None
    )
    ended = threading.Event()
    route.futures[0].add_done_callback(lambda _: ended.set())  # after the map's
    route.told[0]()  # its first window: the rest goes, from a thread of its own
    assert route.planning.wait(60)
    probe_may_end.set()
    assert ended.wait(60)
    assert not routed.slots[0].done()  # until the rest is in the queue
    route.go_on.set()
    assert list(iterator) == [1, 2, 3, 4]


def test_a_verdict_after_the_probe_s_end_routes_nothing_more(
    pool: unirun.ThreadExecutor,
) -> None:
    route = FakeRoute(pool, MapPlan.THREAD)
    routed = RoutedMap(
        route, lambda x: x + 1, [(x,) for x in range(3)], NO_OPTIONS, None
    )
    iterator: MapIterator[Any] = MapIterator.of_batches(
        routed, end_time=None, keep_alive=route, progress=None, total=None
    )
    assert list(iterator) == [1, 2, 3]
    slots = len(routed.slots)
    route.told[0]()  # late: the probe's end routed the rest already
    assert len(routed.slots) == slots
    assert route.dispatched == [(0,)]


def test_routed_map_with_chunksize_cuts_fixed_chunks(
    pool: unirun.ThreadExecutor,
) -> None:
    route = FakeRoute(pool, MapPlan.PROCESS)
    assert run_map(route, list(range(23)), chunksize=5) == list(range(1, 24))
    assert route.reserved == 0


def test_routed_map_probes_again_while_unsettled(pool: unirun.ThreadExecutor) -> None:
    route = FakeRoute(pool, MapPlan.THREAD, settle_after=10**6)
    assert run_map(route, list(range(20))) == list(range(1, 21))
    # Never settled: it asked again, up to MAP_PROBES items, then routed the rest.
    assert route.dispatched == [(x,) for x in range(MAP_PROBES)]
    assert route.reserved == 0


def test_routed_map_of_a_settled_function_routes_everything(
    pool: unirun.ThreadExecutor,
) -> None:
    route = FakeRoute(pool, MapPlan.THREAD, settle_after=0)
    assert run_map(route, list(range(5))) == list(range(1, 6))
    assert route.dispatched == []
    assert route.reserved == 0
    assert run_map(FakeRoute(pool, MapPlan.THREAD), []) == []


def test_routed_map_cancelled_by_shutdown_ends_in_cancellation(
    pool: unirun.ThreadExecutor,
) -> None:
    route = FakeRoute(pool, MapPlan.THREAD)
    route.cancel = True
    with pytest.raises(cf.CancelledError):
        run_map(route, list(range(5)))
    assert route.reserved == 0


def test_probe_ending_after_shutdown_cancels_the_rest_never_refuses(
    pool: unirun.ThreadExecutor,
) -> None:
    # The probe of a map whose function is still unsettled ends after a
    # shutdown with cancel_futures began (the pools refuse new calls): the rest
    # is cancelled, as by shutdown, not sent to a pool that refuses it.
    route = FakeRoute(pool, MapPlan.THREAD, settle_after=10**6)
    entered, release = threading.Event(), threading.Event()

    def first_waits(x: int) -> int:
        if x == 0:
            entered.set()
            release.wait(60)
        return x + 1

    routed = RoutedMap(route, first_waits, [(x,) for x in range(5)], NO_OPTIONS, None)
    iterator: MapIterator[Any] = MapIterator.of_batches(
        routed, end_time=None, keep_alive=route, progress=None, total=None
    )
    assert entered.wait(60)
    route.cancel = True  # AutoExecutor.shutdown(cancel_futures=True), then:
    pool.shutdown(wait=False, cancel_futures=True)  # the pools refuse new calls
    release.set()
    assert next(iterator) == 1  # the probe's own result
    with pytest.raises(cf.CancelledError):
        next(iterator)
    assert route.dispatched == [(0,)]
    assert route.reserved == 0


class RacingRoute(FakeRoute):
    """A FakeRoute whose executor is shut down with cancel_futures just after
    the map looked (in ``map_plan``, or in ``send_chunk`` before it submits):
    its pool then refuses new calls."""

    def __init__(self, pool: BaseExecutor, plan: MapPlan, where: str) -> None:
        super().__init__(pool, plan)
        self.where = where

    def shut_down(self, where: str) -> None:
        if where == self.where and not self.cancel:
            self.cancel = True  # AutoExecutor.shutdown(cancel_futures=True), then:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def map_plan(self, fn: Callable[..., Any], rest: list[tuple[Any, ...]]) -> MapPlan:
        self.shut_down("map_plan")
        return self.plan

    def send_chunk(
        self,
        pool: BaseExecutor,
        fn: Callable[..., Any],
        chunk: list[tuple[Any, ...]],
        options: TaskOptions,
    ) -> cf.Future[Any]:
        self.shut_down("send_chunk")
        return super().send_chunk(pool, fn, chunk, options)


@pytest.mark.parametrize(
    ("plan", "chunksize", "where"),
    [
        (MapPlan.THREAD, None, "map_plan"),
        (MapPlan.SUBMIT, None, "map_plan"),
        (MapPlan.PROCESS, 2, "send_chunk"),
        (MapPlan.PROCESS, None, "send_chunk"),
    ],
    ids=["thread", "submit", "fixed-chunks", "batches"],
)
def test_a_shutdown_while_the_rest_is_routed_cancels_it_never_refuses(
    plan: MapPlan, chunksize: int | None, where: str
) -> None:
    # shutdown(cancel_futures=True) came after the map saw no shutdown and
    # before it sent the rest: the pool's RuntimeError (a submit after
    # shutdown) came out of the iteration, in place of the probe's own result.
    with unirun.ThreadExecutor(4) as pool:
        route = RacingRoute(pool, plan, where)
        iterator = routed_map(route, plus_one, list(range(10)), chunksize)
        assert next(iterator) == 1  # the probe's own result
        with pytest.raises(cf.CancelledError):
            next(iterator)
        assert route.reserved == 0


def test_auto_map_shut_down_as_it_routes_the_rest_gives_the_first_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The report's case, on the executor itself: the shutdown lands while the
    # probe's callback routes the rest to the thread pool.
    auto = unirun.AutoExecutor(max_workers=2)

    def shut_down_first(
        router: Router, fn: Callable[..., Any], rest: list[tuple[Any, ...]]
    ) -> MapPlan:
        auto.shutdown(wait=False, cancel_futures=True)  # as another thread's
        return MapPlan.THREAD

    monkeypatch.setattr(Router, "map_plan", shut_down_first)
    try:
        results = auto.map(plus_one, range(10))
        assert next(results) == 1
        with pytest.raises(cf.CancelledError):
            next(results)
    finally:
        auto.shutdown(wait=True)


@pytest.mark.parametrize(
    ("plan", "fn", "error"),
    [
        (MapPlan.THREAD, fail_if_negative, ValueError),
        (MapPlan.BATCH, fail_if_negative, ValueError),
        (MapPlan.PROCESS, fail_if_negative, ValueError),
        (MapPlan.PROCESS, crash_on_multiple_of_seven, unirun.WorkerCrashedError),
    ],
    ids=["thread", "batch", "process", "process-crash"],
)
def test_a_failed_map_item_counts_as_failed_on_every_route(
    monkeypatch: pytest.MonkeyPatch,
    plan: MapPlan,
    fn: Callable[[int], int],
    error: type[Exception],
) -> None:
    # A batch that stopped at an item's error (or a worker's crash) came back
    # as a result, and counted as done; a plain submit's failure counted right.
    monkeypatch.setattr(Router, "map_plan", lambda router, fn, rest: plan)
    auto = unirun.AutoExecutor(max_workers=2)
    try:
        with pytest.raises(error):
            list(auto.map(fn, [0, 1, 2, 3, -1, 5]))  # 3 crashes; -1 raises
    finally:
        auto.shutdown(wait=True)
    stats = auto.statistics()
    assert stats.failed == 1, stats
    assert stats.running == stats.queued == 0
    assert stats.done + stats.failed + stats.cancelled == stats.submitted


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_map_interrupted_before_the_caller_gets_it_does_not_hold_shutdown(
    monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    # Ctrl-C (or any error) between the executor's reservation for the map and
    # the iterator reaching the caller: shutdown waited for that map for ever.
    original = MapIterator.of_batches

    def interrupted(cls: type[MapIterator[Any]], batches: Any, /, **kw: Any) -> Any:
        if where == "after":
            original(batches, **kw)  # the map started routing its items
        raise KeyboardInterrupt

    monkeypatch.setattr(MapIterator, "of_batches", classmethod(interrupted))
    ex = unirun.AutoExecutor(max_workers=2)
    with pytest.raises(KeyboardInterrupt):
        ex.map(plus_one, range(50))
    closing = threading.Thread(target=ex.shutdown)
    closing.start()
    closing.join(60)
    assert not closing.is_alive()


class _Item:
    """An item a weak reference can follow."""

    def __init__(self, value: int) -> None:
        self.value = value


def _doubled(item: _Item) -> int:
    return item.value * 2


def test_a_finished_map_keeps_no_item_alive() -> None:
    # The map's batches and their chunk callback referred to each other, so
    # every item lived on after the map until a full garbage collection.
    gc.collect()
    gc.disable()
    try:
        with unirun.AutoExecutor(max_workers=2) as ex:
            items = [_Item(i) for i in range(200)]
            refs = [weakref.ref(item) for item in items]
            assert list(ex.map(_doubled, items)) == [i * 2 for i in range(200)]
            del items
        # Shut down (no worker holds a chunk any more), and never collected.
        assert [ref for ref in refs if ref() is not None] == []
    finally:
        gc.enable()


class FirstCallWaits:
    """A tiny function whose first call waits half a millisecond: a first
    reading that a pause of the machine (a stolen CPU, a stopped process)
    gives a call that never waits."""

    def __init__(self) -> None:
        self.waited = False
        self.slept = threading.local()  # whether this thread's last call slept

    def __call__(self, value: int) -> int:
        self.slept.now = not self.waited
        if not self.waited:
            self.waited = True
            time.sleep(0.0005)
        return value + 1


def test_a_short_wait_read_once_is_read_again_before_a_map_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One reading of a short wait with an inline-sized CPU is not enough to send
    # every item to a thread of its own: the map probes the next item too.
    fn = FirstCallWaits()
    end = Probe.end

    def quiet_after_the_first(probe: Probe, returned_awaitable: bool = False) -> Any:
        # The machine is quiet after the first call: a loaded one can make the
        # second reading a wait too, and then auto rightly believes it.
        sample = end(probe, returned_awaitable)
        if getattr(fn.slept, "now", True):
            return sample
        probe.sample = dataclasses.replace(
            sample, wall_s=sample.cpu_s + 1e-6, wait_s=0.0, others_cpu_s=0.0
        )
        return probe.sample

    monkeypatch.setattr(Probe, "end", quiet_after_the_first)
    with unirun.AutoExecutor() as auto:
        assert list(auto.map(fn, range(2000), chunksize=None)) == [
            i + 1 for i in range(2000)
        ]
        verdict = auto.explain(fn)
    assert verdict is not None
    assert verdict.samples >= 2, verdict
    assert "mostly waits" not in verdict.reason


@pytest.mark.parametrize("max_workers", [None, 2])
def test_items_that_wait_for_each_other_all_run_on_a_first_map(
    max_workers: int | None,
) -> None:
    # As on a ThreadPoolExecutor(2): the probed first item waits at the barrier
    # for the second, which went on the probe's first window (it hung before).
    barrier = threading.Barrier(2, timeout=60)

    def meet(i: int) -> int:
        barrier.wait()
        return i

    with unirun.AutoExecutor(max_workers=max_workers) as ex:
        assert list(ex.map(meet, range(2))) == [0, 1]
        verdict = ex.explain(meet)
    assert verdict is not None
    assert verdict.backend == "thread"


@pytest.mark.parametrize("max_workers", [None, 2])
def test_a_first_item_held_behind_another_call_s_probe_lets_the_rest_go(
    max_workers: int | None,
) -> None:
    # The map's first item waited behind a submit's probe; handed on at that
    # probe's end (or its first window), it held the rest until it ended, and
    # it waited for the second at the barrier.
    barrier, probe_may_end = threading.Barrier(2, timeout=60), threading.Event()

    def meet(i: object) -> object:
        if i == "solo":
            assert probe_may_end.wait(60)
        else:
            barrier.wait()
        return i

    got: list[object] = []
    with unirun.AutoExecutor(max_workers=max_workers) as ex:
        solo = ex.submit(meet, "solo")  # the probe of meet
        mapping = threading.Thread(target=lambda: got.extend(ex.map(meet, [1, 2])))
        mapping.start()
        verdicts = ex._router.verdicts
        deadline = time.monotonic() + 60
        while not verdicts.held_calls() and not got:  # the first item waits
            assert time.monotonic() < deadline
            time.sleep(0.001)
        probe_may_end.set()
        mapping.join(60)
        assert solo.result(timeout=60) == "solo"
    assert got == [1, 2]
