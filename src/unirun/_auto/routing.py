"""The router behind an AutoExecutor: one call in, the right pool's Future out.

dispatch(fn) --hint?-----------> that backend (inline: run_inline, here)
       | async def? -----------> coroutine path (coroutines.py)
       | verdicts.admit(fn) ---> held or probing: its Future
       v
    route(entry): inline (the lane) | thread (measured) | process | dask
                  | coroutine

The router holds everything that runs after the executor's front is gone:
pools, verdicts, the coroutine path. Nothing here refers back to the front, so
dropping an executor that was never shut down releases its threads.
"""

from __future__ import annotations

import inspect
import threading
import time
from typing import TYPE_CHECKING, Any

from .._call import TimeoutExpired, is_async_callable, run_awaitable, run_chunk
from .._errors import TransferError, task_timed_out
from .._exit import after_fork_in_child
from .._follow import chain
from .._future import Future
from .._starting import exiting
from .._transfer import UNSENDABLE_RAISES
from .classify import BUSY_MIN, HANDOFF_MIN, INLINE_FRACTION
from .coroutines import CoroutinePath
from .gate import Gate
from .lane import Lane
from .mapping import MapPlan, plan_map
from .revisions import measured, watch_process
from .verdicts import Verdicts

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._base import BaseExecutor
    from .._options import TaskOptions
    from .._stats import TaskCounters
    from .._types import Backend
    from .classify import Costs, Verdict
    from .pools import Pools
    from .verdicts import Entry, Held

__all__ = ["Router", "run_inline"]


def run_inline(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    timeout: float | None,
    counters: TaskCounters | None = None,
) -> tuple[Future[Any], float]:
    """Run the call here and now; return its finished Future and how long it took.

    A coroutine it returns is run on this thread's own loop, and cancelled at
    ``timeout``; a plain call cannot be stopped, but one that took longer than
    ``timeout`` fails with the task time-out error all the same.
    """
    if counters is not None:
        counters.submitted()
    future: Future[Any] = Future(counters=counters)
    future._start()
    if timeout is not None and timeout <= 0:
        future.set_exception(task_timed_out(timeout, "runs on"))
        return future, 0.0
    start = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = run_awaitable(result, timeout)
    except TimeoutExpired:
        future.set_exception(task_timed_out(timeout, "cancelled"))
        return future, time.perf_counter() - start
    except BaseException as exc:
        future.set_exception(exc)
        return future, time.perf_counter() - start
    took = time.perf_counter() - start
    if timeout is not None and took > timeout:
        future.set_exception(task_timed_out(timeout, "runs on"))
    else:
        future.set_result(result)
    return future, took


class Router:
    """Routes calls to the pools of one executor; closes them when asked.

    Implements :class:`~unirun._auto.mapping.MapRoute` for auto's ``map``.
    Thread-safe.
    """

    def __init__(self, pools: Pools, counters: TaskCounters | None = None) -> None:
        self.pools = pools
        #: Counts short and inline-hinted calls (the inner pools count the others).
        self.counters = counters
        self.held_cancelled = 0  # calls cancelled while held behind a probe
        self.verdicts = Verdicts(pools, self._hand_on)
        self.coroutines = CoroutinePath(pools)
        self.lane = Lane(pools.thread, counters, lambda: pools.thread_s or 0.0)
        self._cancelling = False
        #: With ``max_workers``: at most that many calls running at once.
        self.gate = (
            None
            if pools.max_workers is None
            else Gate(pools.max_workers, self._refused)
        )

    def explain(self, fn: Callable[..., Any]) -> Verdict | None:
        """The verdict for ``fn``, or ``None`` if it has not run here."""
        return self.verdicts.explain(fn) or self.coroutines.explain(fn)

    # -- one call ------------------------------------------------------------------

    def dispatch(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        on_early: Callable[[], object] | None = None,
    ) -> Future[Any]:
        """Route one call (past the gate, if any); return its Future. A call
        hinted to run inline runs here, at once, in any case. ``on_early``: see
        :meth:`Verdicts.admit` (a call not measured never tells)."""
        gate = self.gate
        if gate is None or options.backend == "inline":
            return self._dispatch(fn, args, kwargs, options, on_early)
        return gate.submit(
            lambda: self._dispatch_or_here(fn, args, kwargs, options, on_early)
        )

    def _dispatch_or_here(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        on_early: Callable[[], object] | None,
    ) -> Future[Any]:
        """Route a call that waited at the gate. At interpreter exit, from 3.12,
        no thread can start: a pool that never started cannot take it, so it
        runs here (on the gate's pump) rather than fail."""
        try:
            return self._dispatch(fn, args, kwargs, options, on_early)
        except RuntimeError as error:
            if not exiting(error):
                raise
        return run_inline(fn, args, kwargs, options.timeout, self.counters)[0]

    def _dispatch(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        on_early: Callable[[], object] | None = None,
    ) -> Future[Any]:
        if options.backend is not None:
            return self.run_on(options.backend, fn, args, kwargs, options)
        if is_async_callable(fn):  # (one seen before took the front's fast path)
            return self.coroutines.submit(fn, args, kwargs, options)
        self.pools.thread_cost()
        admitted = self.verdicts.admit(fn, args, kwargs, options, on_early)
        if isinstance(admitted, Future):
            return admitted
        return self._route(admitted, fn, args, kwargs, options)

    def run_on(
        self,
        backend: Backend,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        """Run on the backend the caller asked for: the hint always wins, and
        nothing is probed (a call hinted to a process never runs here)."""
        if backend == "inline":
            return run_inline(fn, args, kwargs, options.timeout, self.counters)[0]
        return self.pools.get(backend)._submit(fn, args, kwargs, options)

    def _route(
        self,
        entry: Entry,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        verdict = entry.verdict
        assert verdict is not None  # admit returns only entries with a verdict
        backend = verdict.backend
        if backend == "inline":
            if options.timeout is None:
                self.lane.remember(fn, entry)
                return self.lane.submit(fn, args, kwargs, entry)
            backend = "thread"
        if backend in ("process", "dask"):
            pools = self.pools
            if backend == "dask":
                pool: BaseExecutor = pools.cluster()
                trip = pools.cluster_s
            else:
                pool = pools.process(wide=verdict.busy < BUSY_MIN)
                trip = pools.process_s
            future = self.send(pool, fn, args, kwargs, options)
            if future is None:  # it does not pickle: rule 10, for this call alone
                return self.pools.thread()._submit(fn, args, kwargs, options)
            watch_process(entry, future, trip or 0.0)
            return future
        if backend == "coroutine":
            # Its calls returned a coroutine: the coroutine backend runs the
            # call on a worker thread, and a coroutine it returns on its loop.
            return self.pools.coroutine()._submit(fn, args, kwargs, options)
        inline_s = INLINE_FRACTION * max(self.pools.thread_s or 0.0, HANDOFF_MIN)
        wrapped = measured(entry, verdict, fn, inline_s)
        return self.pools.thread()._submit(wrapped, args, kwargs, options)

    def _hand_on(self, held: list[Held]) -> None:
        """Route the calls that waited for a verdict."""
        for call in held:
            if call.outer.cancelled():
                call.outer._start()  # notify concurrent.futures.wait()
                self.held_cancelled += 1
                continue
            try:
                # Past the gate already: the call holds its slot.
                inner = self._dispatch(call.fn, call.args, call.kwargs, call.options)
            except BaseException as exc:
                if self._refused(call.outer, exc):
                    self.held_cancelled += 1
                else:
                    call.outer._set_exception_if_pending(exc)
                continue
            chain(call.outer, inner)

    def _refused(self, outer: Future[Any], error: BaseException) -> bool:
        """Whether a waiting call that a pool refused ends cancelled: taken out
        to be routed as ``shutdown(cancel_futures=True)`` closed the pools, it
        never started (``outer`` is its Future)."""
        if not self._cancelling:
            return False
        if outer._cancel_pending():
            outer._start()  # tell concurrent.futures.wait()
            return True
        # Out of the gate's line: it reads running (see Gate._pass), never ran.
        return outer._mark_cancelled()

    # -- map (MapRoute) ------------------------------------------------------------

    def settled(self, fn: Callable[..., Any]) -> bool:
        """Whether ``fn`` has a verdict that no probe is about to replace."""
        return self.verdicts.settled(fn)

    def map_plan(self, fn: Callable[..., Any], rest: list[tuple[Any, ...]]) -> MapPlan:
        """Where the items of a map after the first go."""
        return plan_map(
            self.verdicts.explain(fn),
            len(rest),
            self.pools.cpus,
            self.pools.free_threaded,
            lambda: self.verdicts.transferable(fn, rest[0]),
            self.pools.process_cost,
            self._cluster_costs if self.pools.has_cluster else None,
        )

    def _cluster_costs(self) -> Costs:
        """The costs, with the cluster's measured (once)."""
        self.pools.cluster_cost()
        return self.pools.costs()

    def send(
        self,
        pool: BaseExecutor,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any] | None:
        """Submit to ``pool`` (processes or the cluster); ``None``, with nothing
        sent or counted, if the call does not pickle.

        Whether ``fn``'s calls pickle was checked on the call that was probed
        (rule 10), but another call's arguments, or another object's bound
        method, may not: the caller runs that one on the thread pool, where a
        ProcessExecutor would fail it with TransferError.
        """
        token = UNSENDABLE_RAISES.set(True)
        try:
            return pool._submit(fn, args, kwargs, options)
        except TransferError:
            return None
        finally:
            UNSENDABLE_RAISES.reset(token)

    def send_chunk(
        self,
        pool: BaseExecutor,
        fn: Callable[..., Any],
        chunk: list[tuple[Any, ...]],
        options: TaskOptions,
    ) -> Future[Any]:
        """Submit a map's chunk to ``pool``, past the gate (if any): one that
        does not pickle, for processes or the cluster, runs on the thread pool
        (see :meth:`send`)."""

        def route() -> Future[Any]:
            args = (fn, chunk)
            if pool.crosses_processes:
                future = self.send(pool, run_chunk, args, {}, options)
                if future is not None:
                    return future
            return self.pools.thread()._submit(run_chunk, args, {}, options)

        gate = self.gate
        return route() if gate is None else gate.submit(route)

    def map_pool(self, plan: MapPlan, fn: Callable[..., Any]) -> BaseExecutor:
        """The pool that runs ``plan``'s chunks."""
        if plan is MapPlan.CLUSTER:
            return self.pools.cluster()
        if plan is MapPlan.PROCESS:
            verdict = self.verdicts.explain(fn)
            return self.pools.process(
                wide=verdict is not None and verdict.busy < BUSY_MIN
            )
        return self.pools.thread()

    def reserve(self) -> None:
        """Keep the pools open until :meth:`unreserve`: a map will route more."""
        self.verdicts.reserve()

    def unreserve(self) -> None:
        """Everything a reserved map had to route is routed."""
        self.verdicts.unreserve()

    @property
    def cancelling(self) -> bool:
        """Whether the executor is shutting down with ``cancel_futures``."""
        return self._cancelling

    # -- closing -------------------------------------------------------------------

    def close(self, wait: bool, cancel_futures: bool) -> None:
        """Close the pools once every accepted call has reached one.

        Calls held behind a probe are routed first (or cancelled, with
        ``cancel_futures``). With ``wait``, block until the pools have closed;
        otherwise a thread closes them once the last probe has ended.
        """
        self.lane.close_known()  # the front's fast path: see Lane.close_known
        gate = self.gate
        if cancel_futures:
            self._cancelling = True
            if gate is not None:
                gate.cancel_waiting()
            self.verdicts.cancel_held()
            self.lane.cancel_pending()
            # What waits in the pools' queues (probes included: a cancelled
            # probe releases the calls held behind it).
            self.pools.cancel_queued()
        # The lane's calls end before the pools close: a blocked short call's
        # rescue takes a thread from the pool.
        if wait:
            self.wait_routed()
            self.lane.join()
            self._close_pools(True, cancel_futures)
            return

        def routed() -> None:
            if gate is not None and not gate.idle():
                gate.when_idle(lambda: self.verdicts.when_idle(routed))
            else:
                self.lane.when_idle(lambda: self._close_pools(False, cancel_futures))

        if gate is None:
            self.verdicts.when_idle(routed)
        else:
            gate.when_idle(lambda: self.verdicts.when_idle(routed))

    def wait_routed(self) -> None:
        """Block until every call accepted so far has reached its pool: those
        waiting at the gate, and those held behind probes. A call the gate
        routes may start a probe, and a map that a probe holds may queue chunks
        at the gate: both must be idle at once."""
        gate = self.gate
        while True:
            if gate is not None:
                gate.wait_idle()  # every waiting call routed, or dropped
            self.verdicts.wait_idle()
            if gate is None or gate.idle():
                return

    def _close_pools(self, wait: bool, cancel_futures: bool) -> None:
        self.verdicts.close(wait)
        self.pools.close(wait, cancel_futures)
        _closing.discard(self)

    def close_in_background(self, cancel_futures: bool, thread: bool = False) -> None:
        """:meth:`close` without waiting (from a thread of its own if asked).
        Until the pools have closed, the interpreter's exit finishes the close
        (:func:`finish_closing`) while the backends still take work: a blocked
        short call's rescue needs them."""
        _closing.add(self)
        if thread:
            threading.Thread(
                target=self.close,
                args=(False, cancel_futures),
                name="AutoExecutor-dropped",
            ).start()
        else:
            self.close(False, cancel_futures)

    def in_own_task(self) -> bool:
        """Whether the caller is a task of one of the pools."""
        return any(pool._in_own_task() for pool in self.pools.started())


#: Routers closing in the background (``shutdown(wait=False)``, or dropped);
#: none in a forked child: the parent's close in the parent.
_closing: set[Router] = set()
after_fork_in_child(_closing.clear)


def finish_closing() -> None:
    """At interpreter exit: wait for every close still under way."""
    for router in list(_closing):
        router.close(True, False)
