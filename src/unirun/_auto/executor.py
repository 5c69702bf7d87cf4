"""AutoExecutor: measure each callable, route it to the backend that runs it best.

Data flow::

    submit(fn) -> Router.dispatch (routing.py)
       | hint? ------------> that backend, never probed
       | async def? -------> coroutine path (coroutines.py): steps timed
       | verdict cached? --> short (the lane) | thread | process | dask
       | probe running? ---> held until the verdict, then routed (verdicts.py)
       v
    probe: the call itself, on a worker thread, measured (profiling.py); the
           verdict (classify.py) is cached, and revised when calls disagree.

    map(fn, items) -> the first item is the probe; the rest are routed as a
    whole (mapping.py). The inner executors are made on first need (pools.py);
    the one on a Dask cluster, if given, with the executor (cluster.py).

This class is the front: arguments, ``explain``, ``map``'s entry, and the
lifecycle (``shutdown``, ``async with``, interpreter exit, being dropped).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

import anyio.to_thread

from .._base import SHUTDOWN_MESSAGE, BaseExecutor
from .._call import is_async_callable
from .._checks import (
    check_callable,
    check_chunksize,
    check_initializer,
    check_size,
    initializer_args,
)
from .._cpu import usable_cpus
from .._exit import ExitRegistry
from .._map import MapIterator, read_all
from .._stats import Statistics, combine
from .cluster import attach
from .mapping import RoutedMap
from .pools import Pools
from .routing import Router, finish_closing

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType
    from typing import Self

    from .._backends.coroutine import CoroutineExecutor
    from .._future import Future
    from .._options import TaskOptions
    from .._progress import Progress
    from .._types import Backend
    from .classify import Verdict
    from .cluster import Cluster

__all__ = ["AutoExecutor"]


class AutoExecutor(BaseExecutor):
    """Run each callable on the backend measured to suit it: threads, processes,
    coroutines, or with other short calls on one thread.

    ``async def`` functions run on the coroutine backend. A plain function's first
    call is a *probe*: it runs on a worker thread while its wall time, its own CPU
    time and its use of the GIL are measured; calls that arrive meanwhile wait for
    the verdict (nothing runs twice). Waiting work and GIL-releasing work go to
    threads, GIL-holding CPU work long enough to pay for a process round trip
    (measured on this machine) to processes; calls too short for a hand-off of
    their own run back to back on one thread (never inside ``submit``).
    ``explain(fn)`` says what was decided and why; ``options(backend=...)``
    forces a backend (and skips the probe). See docs/auto.md.

    Given a Dask cluster (``cluster=``), CPU-bound work that holds the GIL
    goes there when it pays: one call lasts at least ten round trips to the
    cluster, and the cluster has more worker threads than there are worker
    processes here (``map`` asks the same of its chunks).
    ``options(backend="dask")`` sends a task there regardless.

    The probe runs in this process: a function that crashes its process (a
    segfault, ``os._exit``) crashes the caller on its first call. Give such
    functions ``options(backend="process")``.

    Inside ``async with``, coroutines run on the caller's event loop, as with
    :class:`CoroutineExecutor`. Capabilities depend on the route a task takes:
    a call routed to processes (or the cluster) that does not pickle runs on a
    thread instead, and only tasks on the coroutine backend can be cancelled
    while running.

    Args:
        max_workers: the most calls running at once, on every route (a call
            submitted while that many run waits, and starts in submission
            order), and the most workers of each inner pool (processes capped
            at the usable CPUs). Default: no limit on calls; 40 threads
            (waiting work needs many; they start on demand), one process per
            usable CPU for CPU-bound calls, four per CPU for calls that compute
            and wait (their waits overlap).
        initializer: called in each worker (thread, process, event loop) before
            its first task.
        initargs: arguments for ``initializer``.
        cluster: a Dask cluster to send work to when it pays: a
            :class:`unirun.DaskExecutor` or a ``distributed.Client`` (both stay
            open after this executor's shutdown, which waits only for its own
            tasks), or a scheduler's address (a client of this executor's own,
            closed at its shutdown). ``max_workers`` counts the calls sent
            there too (a DaskExecutor's own also applies); ``initializer`` runs
            in its workers too.
            Needs ``unirun[dask]``; without a cluster, Dask is never imported.

    Raises:
        TypeError: ``cluster`` is not one of those (``True`` included: a
            cluster started on this machine could never pay).
        OSError: no scheduler answers at the address.
    """

    kind = "auto"
    default_chunksize = None
    _counts_submissions = False  # its inner executors count the tasks
    # Tasks may be routed to processes: arguments must pickle there, and the
    # executor's primitives must work across processes.
    crosses_processes = True
    uses_chunks = True
    cancels_running: ClassVar[bool] = False
    stops_on_timeout: ClassVar[bool] = False

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        cluster: Cluster | None = None,
    ) -> None:
        super().__init__()
        self._max_workers = check_size(max_workers, "max_workers")
        check_initializer(initializer)
        initargs = initializer_args(initializer, initargs)
        pools = Pools(
            self._max_workers,
            initializer,
            initargs,
            scope=self._primitive_scope,
            cpus=usable_cpus(),
            name=f"AutoExecutor-{id(self):#x}",
            cluster=(
                None if cluster is None else attach(cluster, initializer, initargs)
            ),
        )
        self._attached: CoroutineExecutor | None = None
        self._route_by(Router(pools, self._counters))

    def _route_by(self, router: Router) -> None:
        self._router = router
        # Never shut down: the pools close at interpreter exit, or once this
        # front is dropped (the router never refers back to it).
        _exits().add(self, router)
        self._finalizer = weakref.finalize(self, _close_dropped, router)
        self._finalizer.atexit = False

    def _check_backend(self, backend: Backend | None) -> None:
        """Every backend hint is followed (TaskOptions validated the name);
        ``"dask"`` needs a cluster."""
        if backend == "dask" and not self._router.pools.has_cluster:
            self._router.pools.cluster()  # raises ValueError, saying why

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        # An async def seen before goes straight to the coroutine pool, whose own
        # submit checks (under its lock) that it is open: this front's lock
        # guards the routing state, which such a call never touches. A call
        # racing shutdown() is refused by the closed pool, with the same error.
        # So does a short call seen before, to the lane, which turns it away
        # once shutdown has begun (Lane.close_known): this path then refuses it.
        # With max_workers, every call passes the router's gate instead.
        router = self._router
        if not self._shutdown and options.backend is None and router.gate is None:
            try:
                future = router.coroutines.submit_known(fn, args, kwargs, options)
                if future is None and options.timeout is None:
                    future = router.lane.submit_known(fn, args, kwargs)
            finally:
                if self._close_asked is not None:  # see BaseExecutor.shutdown
                    self._close_as_asked()
            if future is not None:
                return future
        return super()._submit(fn, args, kwargs, options)

    def _submitting_here(self) -> bool:
        return super()._submitting_here() or self._router.lane.submitting_here()

    def _schedule(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        return self._router.dispatch(fn, args, kwargs, options)

    def explain(self, fn: Callable[..., Any]) -> Verdict | None:
        """Return the current verdict for ``fn``, or ``None`` if it has not run here.

        The verdict names the backend, says why in one sentence, and carries the
        measurements behind it. Thread-safe; does not block.
        """
        return self._router.explain(fn)

    def _map(
        self,
        fn: Callable[..., Any],
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int | None,
        buffersize: int | None,
        options: TaskOptions,
        progress: Progress | None = None,
    ) -> MapIterator[Any]:
        check_chunksize(chunksize)  # as a process pool would: it may route there
        if (
            buffersize is not None
            or options.backend is not None
            or options.timeout is not None
            or is_async_callable(fn)
        ):
            # One task per item through submit: bounded submission, a forced
            # backend, a time-out for each item, or coroutines (which need no
            # batching).
            return super()._map(
                fn, iterables, timeout, 1, buffersize, options, progress
            )
        check_callable(fn)
        end_time = None if timeout is None else timeout + time.monotonic()
        items = read_all(
            zip(*iterables, strict=False), lambda args: self.submit(fn, *args)
        )
        if not items:  # nothing to route, nor to refuse after shutdown (stdlib)
            return MapIterator(
                lambda item: None,
                iter(()),
                end_time=end_time,
                buffersize=None,
                chunked=False,
                keep_alive=self,
                progress=progress,
                total=0,
            )
        try:
            with self._shutdown_lock:
                if self._shutdown:
                    raise RuntimeError(SHUTDOWN_MESSAGE)
                # Shutdown waits for this map to route its items.
                self._router.reserve()
        finally:
            if self._close_asked is not None:  # see BaseExecutor.shutdown
                self._close_as_asked()
        routed = None
        try:
            routed = RoutedMap(self._router, fn, items, options, chunksize)
            return MapIterator.of_batches(
                routed,
                end_time=end_time,
                keep_alive=self,
                progress=progress,
                total=len(items),
            )
        except BaseException:
            # Interrupted (Ctrl-C) or failed before the caller got the map: it
            # routes nothing more, and shutdown does not wait for it.
            if routed is None:
                self._router.unreserve()
            else:
                routed.close()
            raise

    def statistics(self) -> Statistics:
        """A snapshot of the tasks of every inner executor, and the verdicts.

        Calls held behind a running probe count as queued; the no-op tasks auto
        runs to time its pools are left out.
        """
        router = self._router
        # Read first: each no-op it counts had ended, and so is in the parts
        # read next (one ending meanwhile is shown, never taken off twice).
        internal = router.pools.measurements
        parts = [inner.statistics() for inner in router.pools.started()]
        parts.append(self._counters.snapshot())  # short and inline-hinted calls
        held = [call.outer for call in router.verdicts.held_calls()]
        skipped = router.held_cancelled
        if router.gate is not None:  # calls waiting for a slot are queued too
            held += router.gate.waiting()
            skipped += router.gate.skipped
        parts.append(_held_record(held, skipped))
        return combine(parts, router.verdicts.verdicts(), internal)

    # -- lifecycle -----------------------------------------------------------------

    def _in_own_task(self) -> bool:
        return self._router.in_own_task()

    def _after_fork(self) -> None:
        if self._attached is not None:
            return  # the child runs on in the caller's loop: it is its own too
        self._finalizer.detach()
        self._route_by(Router(self._router.pools.copy(), self._counters))
        if self._shutdown:
            self._close(False, False)  # as in the parent: nothing to run

    def _close(self, wait: bool, cancel_futures: bool) -> None:
        if wait:
            # Still registered while it waits: a close cut short (Ctrl-C) is
            # finished at interpreter exit, which would otherwise wait for
            # good on the threads it leaves (the GIL monitor's).
            self._router.close(True, cancel_futures)
            self._finalizer.detach()
            _exits().discard(self)
        else:
            self._finalizer.detach()
            _exits().discard(self)
            self._router.close_in_background(cancel_futures)

    async def __aenter__(self) -> Self:
        """Enter in a running event loop: coroutines then run on it."""
        self._attached = await self._router.pools.attach()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """Shut down as ``shutdown()`` does, without blocking the event loop.

        Tasks on the caller's loop are awaited there; leaving the block by an
        exception or a cancellation cancels them, as ``CoroutineExecutor``
        does. An exception from the body leaves as itself.
        """
        attached, self._attached = self._attached, None
        try:
            if attached is not None:
                with self._shutdown_lock:
                    self._shutdown = True
                router = self._router
                if exc_type is not None and router.gate is not None:
                    # The block failed or was cancelled: a call still waiting
                    # for a slot never starts (its slot may never come, from
                    # tasks that are cancelled only below).
                    router.gate.cancel_waiting()
                # Held calls may still be routed to the loop: let them arrive
                # (even in a cancelled block), then end its tasks here.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(router.wait_routed)
                await attached.__aexit__(exc_type, exc_val, exc_tb)
        finally:  # the cancellation of a cancelled block leaves that exit
            await super().__aexit__(exc_type, exc_val, exc_tb)

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        pools = self._router.pools
        cluster = ""
        if pools.has_cluster:
            scheduler = pools.cluster().client.scheduler
            cluster = f" cluster={getattr(scheduler, 'address', None)}"
        return f"<AutoExecutor max_workers={self._max_workers}{cluster} {state}>"


def _held_record(calls: list[Future[Any]], skipped: int) -> Statistics:
    """Calls held behind probes (or waiting at the gate), by their Futures, as
    a record to combine: queued, or cancelled (``skipped``: cancelled ones no
    longer held)."""
    cancelled = sum(1 for call in calls if call.cancelled())
    return Statistics(
        submitted=len(calls) + skipped,
        queued=len(calls) - cancelled,
        running=0,
        done=0,
        failed=0,
        cancelled=cancelled + skipped,
        timed_out=0,
        workers_alive=0,
        workers_started=0,
        workers_replaced=0,
    )


def _close_dropped(router: Router) -> None:
    """Close the pools of an executor dropped without ``shutdown()``.

    From a thread of its own: a finalizer may run inside any code of this
    thread, even code that holds one of the router's locks.
    """
    router.close_in_background(False, thread=True)


def _close_at_exit(live: list[tuple[AutoExecutor, Router]]) -> None:
    """At interpreter exit, close every executor never shut down, as the stdlib
    pools do: the calls it accepted run first."""
    for _, router in live:
        router.close(True, False)
    finish_closing()


_registry: ExitRegistry[AutoExecutor] | None = None
_registry_lock = threading.Lock()


def _exits() -> ExitRegistry[AutoExecutor]:
    """The registry of live executors, made with the first one."""
    global _registry
    if _registry is not None:  # no lock: a forked child's may be held for good
        return _registry
    with _registry_lock:
        if _registry is None:
            # Exit hooks run last registered first: the backends' hooks (made
            # when their modules are imported) must run after ours, which
            # still hands them the calls it holds.
            from .._backends import coroutine, process, thread  # noqa: F401

            _registry = ExitRegistry(_close_at_exit)
        return _registry
