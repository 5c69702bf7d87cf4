"""DaskExecutor: unirun's executor API on a ``dask.distributed`` cluster.

A task's way through::

    submit() -> pickle the call here (a TransferError fails the Future) -> pending
      -> hand-off, while fewer than max_workers are out: Future._start(),
         client.submit(run_call, payload, pure=False)  [a fresh key each time]
      -> the client's event loop awaits the Dask future and fetches its bytes
      -> done queue -> manager thread: decode, complete the unirun Future,
         hand the next pending task off
    options(timeout=...): a DeadlineWatcher thread fails the Future at the
    deadline (a plain function runs on); an async task is also cancelled on
    its worker.

Tasks waiting in the pending deque have not started: ``cancel()`` and
``shutdown(cancel_futures=True)`` take them back and nothing reaches the
scheduler. A task handed to the cluster counts as running.
"""

from __future__ import annotations

import functools
import queue
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

import distributed

from ..._base import BaseExecutor
from ..._call import is_async_callable
from ..._checks import check_initializer, check_size, deadline_after
from ..._deadlines import DeadlineWatcher
from ..._errors import (
    BrokenExecutor,
    TransferError,
    task_timed_out,
)
from ..._forked import forget_children
from ..._starting import HelperThread, began, join_launched, start_thread
from ..._transfer import SharedPickler, dumps_call, unsendable_raises
from . import remote
from .cluster import close_owned, open_embedded, register_initializer
from .jobs import Job, runs_on, settle, task_key
from .primitives import DaskKernel
from .remote import scheduler_address

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from ..._future import Future
    from ..._options import TaskOptions
    from ..._stats import WorkerFigures
    from ..._sync import Kernel

__all__ = ["DaskExecutor"]

#: How long an idle manager thread waits for more work before it exits.
_LINGER = 0.5


class DaskExecutor(BaseExecutor):
    """Run tasks on a Dask cluster: an embedded one, or one already running.

    ``DaskExecutor()`` starts a ``distributed.LocalCluster`` of worker processes
    (one thread each, as many as this process may use CPUs, no dashboard) and
    closes it, with every process it started, on ``shutdown()``.
    ``DaskExecutor(address="tcp://host:8786")`` or ``DaskExecutor(client=c)``
    joins a running cluster and leaves it running: ``shutdown()`` waits for (or
    cancels) only this executor's own tasks.

    Everything else is as on the other executors: ``submit`` takes plain and
    ``async def`` functions and returns a :class:`unirun.Future` (so the
    stdlib's ``wait`` and ``as_completed`` work); calls are never deduplicated;
    ``map`` keeps order and batches tiny items with ``chunksize=None``;
    exceptions come back with their type and the worker-side traceback as
    ``__cause__``. A task handed to the cluster counts as running: ``cancel()``
    then returns ``False``, as for a running thread. A task whose worker dies
    is retried by the scheduler on another worker (``allowed-failures`` times);
    then its future fails with :class:`unirun.WorkerCrashedError`.

    The workers of an embedded cluster behave as process workers do: what tasks
    print and log reaches this process's ``sys.stdout``, ``sys.stderr`` and
    loggers, and native thread pools (BLAS, OpenMP) are sized so that the
    workers do not oversubscribe the CPUs. A joined cluster is left as it is.

    Args:
        max_workers: the most tasks of this executor out on the cluster at
            once; the rest wait here, where they can still be cancelled.
            Default: the cluster's threads, followed as workers come and go.
            For an embedded cluster it is also the number of its workers.
        address: the scheduler of a running cluster to join.
        client: a ``distributed.Client`` (synchronous) to use; it stays open.
        initializer: called in every worker process of the cluster, and in
            workers that join later, before this executor's first task there.
        initargs: arguments for ``initializer``.
        dashboard: serve Dask's dashboard from an embedded cluster: ``True`` for
            the usual ``:8787``, or an address.
        cluster_options: more ``distributed.LocalCluster`` arguments for an
            embedded cluster (``memory_limit``, ``threads_per_worker``...).
        native_threads: the thread count of native libraries in each worker of
            an embedded cluster, through ``OMP_NUM_THREADS``,
            ``OPENBLAS_NUM_THREADS`` and the like (variables the caller set are
            left alone): ``"auto"`` gives each worker its share of the usable
            CPUs, ``None`` leaves them to Dask's
            ``distributed.nanny.pre-spawn-environ`` setting.
        forward_output: send what tasks on an embedded cluster write to
            ``sys.stdout``/``sys.stderr``, and their logging records, to this
            process.

    Raises:
        ValueError: both ``address`` and ``client``, or cluster options
            (``cluster_options``, ``dashboard``, a ``native_threads`` count)
            while joining a cluster.
        TypeError: ``client`` is not a synchronous ``distributed.Client``.
    """

    kind = "dask"
    crosses_processes = True
    uses_chunks = True

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        address: str | None = None,
        client: distributed.Client | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        dashboard: bool | str = False,
        cluster_options: Mapping[str, Any] | None = None,
        native_threads: int | Literal["auto"] | None = "auto",
        forward_output: bool = True,
    ) -> None:
        super().__init__()
        max_workers = check_size(max_workers, "max_workers")
        check_initializer(initializer)
        joining = address is not None or client is not None
        if address is not None and client is not None:
            raise ValueError("give either address or client, not both")
        # native_threads="auto" (the default) and None ask nothing of a cluster.
        sized = native_threads is not None and native_threads != "auto"
        if joining and (cluster_options or dashboard or sized):
            raise ValueError(
                "cluster_options, dashboard and native_threads apply to an embedded "
                "cluster only; a cluster joined by address or client is configured "
                "where it runs"
            )
        if client is not None and (
            not isinstance(client, distributed.Client) or client.asynchronous
        ):
            raise TypeError(
                f"client must be a synchronous distributed.Client, not {client!r}"
            )
        self._cluster: distributed.LocalCluster | None = None
        self._owns_client = client is None
        if client is None and address is None:
            self._cluster, client = open_embedded(
                max_workers,
                dashboard=dashboard,
                cluster_options=cluster_options,
                native_threads=native_threads,
                forward_output=forward_output,
            )
        elif client is None:
            client = distributed.Client(address, set_as_default=False)
        self._client: distributed.Client = client
        loop = client.loop
        if loop is None:
            raise RuntimeError(f"{client!r} has no event loop running")
        self._loop = loop
        self._max_workers = max_workers
        self._threads_at_start = sum(client.nthreads().values())
        self._lock = threading.Lock()
        self._pending: deque[Job] = deque()
        self._out = 0
        self._done: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._manager: threading.Thread | None = None
        self._closing = False
        self._released = False
        self._broken: str | None = None
        self._deadline_watcher: DeadlineWatcher | None = None
        self._fetching: list[Job] = []
        self._primitives: DaskKernel | None = DaskKernel(client)
        # What this executor opened is closed by shutdown(), or when the
        # executor is collected, or at interpreter exit.
        self._plugins: list[str] = []  # registered on a joined cluster
        owned = client if self._owns_client else None
        self._finalizer = weakref.finalize(
            self, close_owned, owned, self._cluster, (client, self._plugins)
        )
        if initializer is not None:
            self._start_initializer(initializer, initargs)

    def _start_initializer(
        self, initializer: Callable[..., object], initargs: tuple[Any, ...]
    ) -> None:
        try:
            name = register_initializer(self._client, initializer, initargs)
            if self._cluster is None:  # an embedded cluster ends with the executor
                self._plugins.append(name)
        except Exception as exc:
            self._broken = (
                "The Dask executor's initializer failed, the executor is not "
                f"usable anymore: {type(exc).__name__}: {exc}"
            )

    # -- what the base class asks -----------------------------------------------------

    @property
    def client(self) -> distributed.Client:
        """The ``distributed.Client`` this executor submits through."""
        return self._client

    def _parallelism(self) -> int:
        return self._limit()

    def _limit(self) -> int:
        """How many tasks may be out on the cluster now."""
        if self._max_workers is not None:
            return self._max_workers
        # The cluster's threads, from the client's cached view of the scheduler
        # (refreshed every couple of seconds): it follows a cluster that scales.
        info = getattr(self._client, "_scheduler_identity", None)
        threads = info.get("total_threads") if isinstance(info, dict) else None
        if not isinstance(threads, int):
            threads = self._threads_at_start
        return max(1, threads)

    def _refuse_if_broken(self) -> None:
        if self._broken:
            raise BrokenExecutor(self._broken)

    def _kernel(self) -> Kernel:
        kernel = self._primitives
        if kernel is None:  # in a forked child: see _after_fork
            raise BrokenExecutor(self._broken or "")
        return kernel

    def _workers(self) -> WorkerFigures:
        # The client's cached view of the scheduler (no round trip from here).
        info = getattr(self._client, "_scheduler_identity", None)
        workers = info.get("workers") if isinstance(info, dict) else None
        if isinstance(workers, dict) and workers:
            count = len(workers)
        else:  # not seen yet: the threads found when it started (one each)
            count = self._threads_at_start
        # An embedded cluster is gone once closed; a joined one's workers stay.
        gone = self._released and self._cluster is not None
        return (0 if gone else count, count, 0, ())

    def _schedule(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        refuse = unsendable_raises()  # first: nothing after it sees the request
        self._refuse_if_broken()
        future = self._new_future()
        try:
            payload = dumps_call(fn, args, kwargs, not refuse, SharedPickler)
        except TransferError as exc:
            if refuse:  # the caller runs it elsewhere
                raise
            # As the stdlib: the future fails, the caller's loop goes on.
            future._start()
            future.set_exception(exc)
            return future
        job = Job(
            future,
            payload,
            options.timeout,
            is_async_callable(fn),
            task_key(fn, options),
        )
        with self._lock:
            self._making = future  # queued by the next call: see _undo_submit
            self._pending.append(job)
            self._start_manager()
            ready = self._take_ready()
        self._send(ready)
        return future

    def _start_manager(self) -> None:
        """Start the manager thread unless it runs (lock held); before any job
        is taken, so that a Ctrl-C landing in ``start()`` loses none: a thread
        that launched runs on (and takes the pending job within its linger),
        and one that never did is started again by the next submit or shutdown.
        """
        manager = self._manager
        if manager is not None and began(manager):
            return
        self._manager = HelperThread(
            target=self._manage, name=f"DaskExecutor-{id(self):#x}"
        )
        start_thread(self._manager)

    # -- hand-off -------------------------------------------------------------------

    def _take_ready(self) -> list[Job]:
        """Pending jobs that may go out now, marked running (lock held)."""
        ready: list[Job] = []
        limit = self._limit()
        while self._pending and self._out < limit:
            job = self._pending.popleft()
            if not job.future._start():  # cancelled while it waited here
                continue
            self._out += 1
            ready.append(job)
        return ready

    def _send(self, jobs: list[Job]) -> None:
        for job in jobs:
            timeout = job.timeout
            if timeout is not None and timeout <= 0:
                job.outcome = task_timed_out(timeout, "cancelled")
                self._done.put(job)
                continue
            payload, job.payload = job.payload, b""
            # No deadline for a time-out too long for any clock (inf, 1e30).
            deadline = deadline_after(timeout)
            try:
                job.dask_future = self._client.submit(
                    remote.run_call,
                    payload,
                    timeout if job.is_async and deadline is not None else None,
                    key=job.key,
                    pure=False,
                )
            except Exception as exc:  # the client was closed under us
                error = BrokenExecutor(f"the Dask client cannot submit: {exc}")
                error.__cause__ = exc
                job.outcome = error
                self._done.put(job)
                continue
            if deadline is not None and not job.is_async:
                job.handle = self._deadlines.add(
                    deadline, functools.partial(runs_on, job.future, timeout)
                )
            self._loop.add_callback(self._watch, job)

    @property
    def _deadlines(self) -> DeadlineWatcher:
        with self._lock:
            if self._deadline_watcher is None:
                self._deadline_watcher = DeadlineWatcher(
                    f"DaskExecutor-{id(self):#x}_deadlines"
                )
            return self._deadline_watcher

    async def _watch(self, job: Job) -> None:
        """Wait for one Dask future, then have its result fetched (on the
        client's loop, like everything that touches ``_fetching``)."""
        dask_future = job.dask_future
        assert dask_future is not None
        state = dask_future._state
        assert state is not None  # bound to our client at submit
        try:
            await state.wait()
        except BaseException as exc:
            self._deliver(job, exc)
            return
        if dask_future.status != "finished":
            self._deliver(job, await self._outcome_of(job))
            return
        # Results that finish while a fetch is under way go in the next one:
        # one round trip for many results, as Client.gather does.
        self._fetching.append(job)
        if len(self._fetching) > 1:
            return
        while self._fetching:
            batch = list(self._fetching)
            try:
                outcomes = await self._client._gather([j.dask_future for j in batch])
            except BaseException:  # one result lost: fetch them one by one
                outcomes = [await self._outcome_of(j) for j in batch]
            del self._fetching[: len(batch)]
            for fetched, outcome in zip(batch, outcomes, strict=True):
                self._deliver(fetched, outcome)

    @staticmethod
    async def _outcome_of(job: Job) -> object:
        """The result, or what Dask failed the task with."""
        dask_future = job.dask_future
        assert dask_future is not None
        try:
            outcome = await dask_future._result(raiseit=False)
        except BaseException as exc:  # fetching failed: the data's worker died
            return exc
        if dask_future.status == "error":
            return outcome[1]  # (type, exception, traceback)
        return outcome

    def _deliver(self, job: Job, outcome: object) -> None:
        job.outcome = outcome
        job.dask_future = None  # releases the key on the scheduler
        self._done.put(job)

    # -- the manager thread ---------------------------------------------------------

    def _manage(self) -> None:
        try:
            while True:
                try:
                    job = self._done.get(timeout=_LINGER)
                except queue.Empty:
                    job = None
                if job is not None:
                    if job.handle is not None:
                        self._deadlines.cancel(job.handle)
                    try:
                        settle(job)
                    except BaseException as exc:  # a bug here must not hang futures
                        error = BrokenExecutor(f"the task's outcome was lost: {exc!r}")
                        job.future._set_exception_if_pending(error)
                with self._lock:
                    if job is not None:
                        self._out -= 1
                    ready = self._take_ready()
                    idle = not self._out and not self._pending
                    if idle and (self._closing or job is None):
                        self._manager = None
                        break
                self._send(ready)
                # Hold no finished job (and its Future) while waiting for the
                # next: the caller may have dropped it (as_completed does).
                del job, ready
        finally:
            if self._closing:
                self._release()

    # -- in a forked child ------------------------------------------------------------

    def _after_fork(self) -> None:
        # The client, the thread running its event loop and the cluster are the
        # parent's: the child would wait for them forever, and must not close
        # them (its exit would, through this executor's finalizer and
        # distributed's own exit hook) nor stop the parent's workers.
        self._finalizer.detach()
        cluster = self._cluster
        if cluster is not None:
            cluster.shutdown_on_close = False
            forget_children([getattr(w, "pid", None) for w in cluster.workers.values()])
        self._lock = threading.Lock()
        self._pending = deque()
        self._out = 0
        self._done = queue.SimpleQueue()
        self._manager = self._deadline_watcher = None
        self._fetching = []
        self._released = True  # nothing of the child's to close
        self._primitives = None  # they too would go through the parent's client
        self._broken = (
            "this DaskExecutor was made before the process forked: its client and "
            "cluster belong to the parent process; make a new DaskExecutor in the "
            "child"
        )

    # -- shutdown -------------------------------------------------------------------

    def _close(self, wait: bool, cancel_futures: bool) -> None:
        with self._lock:
            self._closing = True
            cancelled: list[Job] = []
            if cancel_futures:
                cancelled = list(self._pending)
                self._pending.clear()
            if self._manager is not None:
                self._start_manager()  # one that never began: its jobs still run
            manager = self._manager
        for job in cancelled:
            if job.future.cancel():
                job.future._start()  # tell concurrent.futures.wait()
        if manager is None:
            self._release()
            return
        self._done.put(None)  # wake it to see that it may stop
        if wait and manager is not threading.current_thread():
            join_launched(manager)

    def _release(self) -> None:
        """Close what this executor opened (once)."""
        with self._lock:
            if self._released:
                return
            self._released = True
            watcher = self._deadline_watcher
        if watcher is not None:
            watcher.close(wait=watcher._thread is not threading.current_thread())
        self._finalizer()  # unregisters the initializer too

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        where = "embedded" if self._cluster is not None else "joined"
        return (
            f"<DaskExecutor max_workers={self._limit()} {where} cluster "
            f"{scheduler_address(self._client)} {state}>"
        )
