"""The inner executors auto routes to, their measured dispatch costs, and closing.

Each pool is created on first need, under its own lock, so an all-thread workload
never starts a process and creating one pool never waits for another::

    thread()            ThreadExecutor (40 threads, started on demand)
    process(wide=False) ProcessExecutor, one worker per usable CPU: CPU-bound calls
    process(wide=True)  ProcessExecutor, four per CPU: calls that compute and wait
    coroutine()         CoroutineExecutor: its own loop thread, or the caller's
                        loop once attached (``async with``)
    cluster()           DaskExecutor on the cluster given to the executor
                        (made with it, by ``cluster.attach``), if one was

    thread_cost()   best of 3 no-op round trips through thread()    (cached)
    process_cost()  best of 3 through a warm process(); inf if none can start
    cluster_cost()  best of 5 through cluster(), and the cluster's worker
                    threads; inf (and 0) if it has none or does not answer
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._base import SHUTDOWN_MESSAGE
from .._options import NO_OPTIONS
from .classify import Costs
from .profiling import free_threaded

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._backends._dask import DaskExecutor
    from .._backends.coroutine import CoroutineExecutor
    from .._backends.process import ProcessExecutor
    from .._backends.thread import ThreadExecutor
    from .._base import BaseExecutor
    from .._types import Backend

__all__ = ["AUTO_THREADS", "PROCESSES_PER_CPU", "THREAD_COST_CAP", "Pools"]

_LOGGER = logging.getLogger("unirun")

#: Threads of the inner pool by default: waiting work needs many (anyio's
#: default thread limit); they start on demand.
AUTO_THREADS = 40
#: Worker processes per usable CPU in the pool for calls that compute and wait
#: (started on demand); CPU-bound calls get a pool of one per usable CPU.
PROCESSES_PER_CPU = 4
#: The most a thread hand-off is taken to cost (seconds), whatever was timed.
THREAD_COST_CAP = 0.001
#: How long a no-op may take through the cluster before it is taken not to
#: answer (seconds): its work then stays here.
CLUSTER_TIMEOUT = 30.0

E = TypeVar("E", bound="BaseExecutor")


def _noop() -> None:
    """Do nothing: the task whose round trip is the dispatch cost."""


def _no_cluster() -> DaskExecutor:
    raise ValueError(
        "this AutoExecutor has no cluster to run tasks on the 'dask' backend: "
        "give it one, AutoExecutor(cluster=...)"
    )


class _Lazy(Generic[E]):
    """One inner executor, made on first :meth:`get` under its own lock."""

    __slots__ = ("_lock", "_make", "closed", "value")

    def __init__(self, make: Callable[[], E]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self.value: E | None = None
        self.closed = False

    def get(self) -> E:
        value = self.value
        if value is not None:
            return value
        with self._lock:
            if self.value is None:
                if self.closed:
                    raise RuntimeError(SHUTDOWN_MESSAGE)
                self.value = self._make()
            return self.value

    def close(self) -> E | None:
        """Refuse to make the executor from now on; return it if it was made."""
        with self._lock:
            self.closed = True
            return self.value


class Pools:
    """The inner executors of one :class:`AutoExecutor` and what they cost.

    Thread-safe. Every pool shares the owner's ``initializer`` and, for process
    pools, its primitive scope (its primitives may travel to their tasks).
    """

    def __init__(
        self,
        max_workers: int | None,
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        scope: str,
        cpus: int,
        name: str,
        cluster: DaskExecutor | None = None,
    ) -> None:
        self.max_workers = max_workers
        self.initializer = initializer
        self.initargs = initargs
        self.cpus = cpus
        self.free_threaded = free_threaded()
        self._scope = scope
        self._name = name
        self._thread = _Lazy(lambda: self._new_thread())
        self._process = _Lazy(lambda: self._new_process(wide=False))
        self._wide = _Lazy(lambda: self._new_process(wide=True))
        self._coroutine = _Lazy(lambda: self._new_coroutine())
        self._cluster: _Lazy[DaskExecutor] = _Lazy(_no_cluster)
        self._cluster.value = cluster  # made with the executor, or none
        self.has_cluster = cluster is not None
        self._cost_lock = threading.Lock()
        self.measurements = 0  # no-op tasks run to time the pools
        self.thread_s: float | None = None
        self.process_s: float | None = None
        self.cluster_s: float | None = None
        self.cluster_slots = 0

    def copy(self) -> Pools:
        """New pools with the same settings (and cluster), none made yet."""
        return Pools(
            self.max_workers,
            self.initializer,
            self.initargs,
            self._scope,
            self.cpus,
            self._name,
            self._cluster.value,
        )

    # -- the pools -----------------------------------------------------------------

    def thread(self) -> ThreadExecutor:
        """The thread pool."""
        return self._thread.get()

    def process(self, wide: bool = False) -> ProcessExecutor:
        """The pool for CPU-bound calls, or with ``wide`` the one for calls that
        compute and wait (oversubscribed, so that their waits overlap)."""
        return (self._wide if wide else self._process).get()

    def coroutine(self) -> CoroutineExecutor:
        """The coroutine executor (attached to the caller's loop, if it was)."""
        return self._coroutine.get()

    def cluster(self) -> DaskExecutor:
        """The executor on the Dask cluster.

        Raises:
            ValueError: the executor was given no cluster.
        """
        return self._cluster.get()

    def get(self, backend: Backend) -> BaseExecutor:
        """The pool of ``backend`` (not ``"inline"``)."""
        if backend == "thread":
            return self.thread()
        if backend == "process":
            return self.process()
        if backend == "dask":
            return self.cluster()
        return self.coroutine()

    def _lazies(self) -> tuple[_Lazy[Any], ...]:
        # Coroutine first: its tasks may still hand work to the others.
        return (self._coroutine, self._thread, self._process, self._wide, self._cluster)

    def started(self) -> list[BaseExecutor]:
        """The pools made so far, coroutine first."""
        return [lazy.value for lazy in self._lazies() if lazy.value is not None]

    def _new_thread(self) -> ThreadExecutor:
        from .._backends.thread import ThreadExecutor

        return ThreadExecutor(
            self.max_workers or AUTO_THREADS,
            thread_name_prefix=self._name,
            initializer=self.initializer,
            initargs=self.initargs,
        )

    def _process_workers(self, wide: bool) -> int:
        """The size of the process pool for CPU-bound (or, ``wide``, computing
        and waiting) calls."""
        workers = self.cpus * (PROCESSES_PER_CPU if wide else 1)
        if self.max_workers is not None:
            workers = min(workers, self.max_workers)
        return workers

    def _new_process(self, wide: bool) -> ProcessExecutor:
        from .._backends.process import ProcessExecutor

        pool = ProcessExecutor(
            self._process_workers(wide),
            initializer=self.initializer,
            initargs=self.initargs,
        )
        pool._primitive_scope = self._scope
        return pool

    def _new_coroutine(self) -> CoroutineExecutor:
        from .._backends.coroutine import CoroutineExecutor

        return CoroutineExecutor(
            self.max_workers, initializer=self.initializer, initargs=self.initargs
        )

    # -- the caller's event loop ---------------------------------------------------

    async def attach(self) -> CoroutineExecutor | None:
        """Make the coroutine executor run on the running event loop.

        Returns it when it was attached here (its ``__aexit__`` must be awaited
        on this loop), ``None`` if it was already running on a loop of its own.
        """
        lazy = self._coroutine
        with lazy._lock:
            if lazy.value is not None or lazy.closed:
                return None
            lazy.value = created = self._new_coroutine()
        # Entered before any call can reach it: calls submitted meanwhile wait
        # in its inbox until it is attached.
        await created.__aenter__()
        return created

    # -- measured costs ------------------------------------------------------------

    def thread_cost(self) -> float:
        """Round trip of a no-op through the thread pool (measured once)."""
        cost = self.thread_s
        if cost is None:
            with self._cost_lock:
                if self.thread_s is None:
                    # Busy neighbours holding the GIL inflate any timing taken
                    # in Python; a hand-off never costs more than this by itself.
                    self.thread_s = min(
                        self._round_trip(self.thread()), THREAD_COST_CAP
                    )
                cost = self.thread_s
        return cost

    def process_cost(self) -> float:
        """Round trip of a no-op through a warm process pool (measured once);
        ``inf`` where no worker process can start."""
        cost = self.process_s
        if cost is None:
            with self._cost_lock:
                if self.process_s is None:
                    self.process_s = self._measure_process()
                cost = self.process_s
        return cost

    def _measure_process(self) -> float:
        pool = None
        try:
            pool = self.process()
            pool._submit(_noop, (), {}, NO_OPTIONS).result()  # start a worker
            self.measurements += 1
            return self._round_trip(pool)
        except Exception:
            if pool is not None and pool._shutdown:
                # The executor is closing (shutdown with cancel_futures shuts
                # the pools to new calls): nothing goes to processes any more,
                # and nothing is wrong with them.
                return float("inf")
            # No worker process can start here (e.g. a __main__ without the
            # `if __name__ == "__main__":` guard): never route to processes.
            _LOGGER.warning(
                "AutoExecutor: worker processes cannot start; CPU-bound work "
                "stays on threads",
                exc_info=True,
            )
            return float("inf")

    def cluster_cost(self) -> tuple[float, int]:
        """Round trip of a no-op through the cluster and the worker threads it
        lends this executor (measured once); ``(inf, 0)`` where it has none or
        does not answer."""
        with self._cost_lock:
            if self.cluster_s is None:
                trip, slots = self._measure_cluster()
                # The threads first: costs() reads both without the lock.
                self.cluster_slots = slots
                self.cluster_s = trip
            return self.cluster_s, self.cluster_slots

    def _measure_cluster(self) -> tuple[float, int]:
        pool = self.cluster()
        try:
            threads = sum(pool.client.nthreads().values())  # type: ignore[no-untyped-call]  # unannotated upstream
            slots = min(threads, pool._parallelism())
            if slots < 1:
                _LOGGER.warning(
                    "AutoExecutor: the Dask cluster has no worker thread; "
                    "CPU-bound work stays here"
                )
                return float("inf"), 0
            # The first task also sends the no-op to a worker.
            pool._submit(_noop, (), {}, NO_OPTIONS).result(CLUSTER_TIMEOUT)
            self.measurements += 1
            return self._round_trip(pool, CLUSTER_TIMEOUT, rounds=5), slots
        except Exception:
            _LOGGER.warning(
                "AutoExecutor: the Dask cluster did not run a no-op task; "
                "CPU-bound work stays here",
                exc_info=True,
            )
            return float("inf"), 0

    def _round_trip(
        self, pool: BaseExecutor, timeout: float | None = None, rounds: int = 3
    ) -> float:
        best = float("inf")
        for _ in range(rounds):
            start = time.perf_counter()
            pool._submit(_noop, (), {}, NO_OPTIONS).result(timeout)
            best = min(best, time.perf_counter() - start)
            self.measurements += 1  # left out of statistics(): not the caller's
        return best

    def costs(self) -> Costs:
        """The costs measured so far (``process_s`` and ``cluster_s`` ``None``
        until measured)."""
        return Costs(
            thread_s=self.thread_s or 0.0,
            process_s=self.process_s,
            cpus=self.cpus,
            free_threaded=self.free_threaded,
            process_slots=min(self.cpus, self.max_workers or self.cpus),
            mixed_slots=min(
                self.max_workers or AUTO_THREADS,
                self._process_workers(wide=True),
            ),
            cluster=self.has_cluster,
            cluster_s=self.cluster_s,
            cluster_slots=self.cluster_slots,
        )

    # -- closing -------------------------------------------------------------------

    def cancel_queued(self) -> None:
        """Cancel the calls waiting in every pool's queue (the pools stay open
        for calls already running, and refuse new ones)."""
        for pool in self.started():
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self, wait: bool, cancel_futures: bool) -> list[BaseExecutor]:
        """Shut every pool down; none is made afterwards. Returns the pools."""
        pools: list[BaseExecutor] = [
            pool for lazy in self._lazies() if (pool := lazy.close()) is not None
        ]
        for pool in pools:
            pool.shutdown(wait, cancel_futures=cancel_futures)
        return pools
