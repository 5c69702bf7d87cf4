"""BaseExecutor: the contract between unirun's core and each backend.

A backend is one class in ``_backends/`` that subclasses :class:`BaseExecutor`,
registered by kind in ``_backends/__init__.py``. This page is all it must know.

It implements two hooks::

    _schedule(fn, args, kwargs, options) -> Future
        Queue one call and return its Future at once. Called with the
        executor's ``_shutdown_lock`` held, after ``fn`` was found callable and
        the executor open. It creates the task's Future with
        ``self._new_future(on_interrupt)`` (``on_interrupt``: what a Ctrl-C in
        ``result()`` should also do, e.g. stop a pool), and when the call
        starts, calls ``future._start(stopper)``: False means it was
        cancelled first and must not run; the stopper (a
        :data:`unirun._future.Stopper`) is how ``cancel()`` and an abandoning
        awaiter stop the running task, if the backend can. A time-out error is
        :func:`unirun._errors.task_timed_out`.
    _close(wait, cancel_futures)
        Release the workers. Called by every ``shutdown()``, after the
        executor stopped accepting calls; called again must do no harm.

and may override::

    _parallelism() -> int       tasks that run at once (sizes map batches)
    _batches(fn) -> bool        whether map(chunksize=None) batches fn's items
    _in_own_task() -> bool      whether the caller is one of its tasks
    _workers() -> WorkerFigures its workers, for statistics()
    _kernel() -> Kernel         what its primitives are made of
    _check_backend(backend)     which ``options(backend=...)`` hints it takes
    _after_fork()               in a forked child: let go of the parent's
                                workers, start afresh (see ``_forked``)

It declares what its model can do with the class flags below; tests branch on
the flags, never on the kind's name. Argument checks are in ``_checks``,
interpreter exit and fork in ``_exit``. Everything else (``submit``, ``map``,
``gather``, ``options()``, primitives, ``with``/``async with``, the shutdown
bookkeeping) comes from here and from :class:`unirun._front.Front`.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
import uuid
import weakref
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import anyio.to_thread

from ._batches import AdaptiveBatches
from ._call import run_chunk
from ._checks import check_callable, check_chunksize
from ._forked import track
from ._front import Front
from ._future import Future
from ._gather import gather
from ._map import MapIterator, batched, read_all
from ._options import NO_OPTIONS, TaskOptions
from ._progress import sized
from ._stats import Statistics, TaskCounters
from ._stdlib_pools import hide_stdlib_code, name_methods_after
from ._sync import LOCAL, Kernel, PrimitiveMethods, SharedKernel

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator
    from types import TracebackType
    from typing import Self

    from ._exit import ExitRegistry
    from ._progress import Progress
    from ._stats import WorkerFigures
    from ._types import Backend, Kind, T

__all__ = ["SHUTDOWN_MESSAGE", "BaseExecutor"]

#: The code of the ``submit`` every executor inherits (each has its own copy).
_FRONT_SUBMIT = Front.submit.__code__

#: The stdlib's words for ``submit`` after ``shutdown``.
SHUTDOWN_MESSAGE = "cannot schedule new futures after shutdown"


class BaseExecutor(Front, PrimitiveMethods, cf.Executor):
    """Shared behaviour of every unirun executor; subclass it to add a backend.

    See the module docstring for the hooks a backend implements.
    """

    #: The name of the backend, as given to :func:`unirun.executor`.
    kind: ClassVar[Kind]
    #: Tasks run in another process: everything sent must pickle.
    crosses_processes: ClassVar[bool] = False
    #: ``Future.cancel()`` stops a task that is already running.
    cancels_running: ClassVar[bool] = False
    #: A task that passes its time-out is stopped (not only failed).
    stops_on_timeout: ClassVar[bool] = False
    #: ``map`` batches items into chunks (``chunksize`` matters).
    uses_chunks: ClassVar[bool] = False
    #: Primitives (or their methods) this backend does not offer yet: they raise
    #: ``NotImplementedError`` saying so.
    lacks: ClassVar[frozenset[str]] = frozenset()
    #: ``map``'s chunksize when the caller gives none (``None``: measured).
    default_chunksize: ClassVar[int | None] = 1
    #: ``submit`` counts each task in the executor's own statistics (an executor
    #: that hands its tasks to inner executors counts them there instead).
    _counts_submissions: ClassVar[bool] = True
    #: Where the backend's live pools are stopped at interpreter exit; ``submit``
    #: refuses work once that began.
    _exit_registry: ClassVar[ExitRegistry[Any] | None] = None

    _task_options: TaskOptions = NO_OPTIONS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hide_stdlib_code(cls)
        name_methods_after(cls)

    def __init__(self) -> None:
        # Re-entrant, so that shutdown() can tell it was called by the thread
        # that holds it (see there); typed as the stdlib pools type theirs.
        self._shutdown_lock: threading.Lock = threading.RLock()  # type: ignore[assignment]
        self._shutdown = False
        #: What a shutdown() that had to wait for its own thread's submit asked.
        self._close_asked: tuple[bool, bool] | None = None
        self._counters = TaskCounters()
        #: Maps cutting their chunks as they go (see shutdown).
        self._batch_maps: weakref.WeakSet[AdaptiveBatches] = weakref.WeakSet()
        #: What the submit under way queued, once queued (see _undo_submit).
        self._making: object | None = None
        track(self)

    # -- the hooks --------------------------------------------------------------

    @abstractmethod
    def _schedule(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        """Queue ``fn(*args, **kwargs)`` with ``options``; return its Future."""

    @abstractmethod
    def _close(self, wait: bool, cancel_futures: bool) -> None:
        """Release the workers (the executor no longer accepts calls)."""

    def _parallelism(self) -> int:
        """How many tasks run at once, for sizing ``map(chunksize=None)`` batches."""
        return 1

    def _in_own_task(self) -> bool:
        """Whether the caller runs inside one of this executor's tasks."""
        return False

    def _refuse_if_broken(self) -> None:
        """Raise the executor's broken-pool error if it is broken: a submit
        after shutdown says so before it says that it was shut down."""

    def _workers(self) -> WorkerFigures:
        """Workers alive, started, started as replacements, and each one's clock."""
        return (0, 0, 0, ())

    def _after_fork(self) -> None:
        """In a forked child (its only thread): let go of the parent's workers,
        so that the next call starts workers of this process's own."""

    def _verdicts(self) -> dict[str, Any]:
        """What an executor that chooses per callable decided (by name)."""
        return {}

    def _batches(self, fn: Callable[..., Any]) -> bool:
        """Whether ``map(fn, ..., chunksize=None)`` runs items in measured batches."""
        return True

    def _kernel(self) -> Kernel:
        """What this executor's primitives are made of."""
        if not self.crosses_processes:
            return LOCAL
        kernel: Kernel | None = self.__dict__.get("_shared_kernel")
        if kernel is None:
            kernel = self.__dict__.setdefault(
                "_shared_kernel", SharedKernel(self._primitive_scope)
            )
        return kernel

    def _check_backend(self, backend: Backend | None) -> None:
        """Reject a backend hint this executor cannot follow."""
        if backend is not None and backend != self.kind:
            raise ValueError(
                f"a {self.kind} executor cannot run tasks on the {backend!r} "
                f"backend; use unirun.AutoExecutor to choose per task, or an "
                f"executor of that kind"
            )

    # -- submit: the one path every call takes -----------------------------------

    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        if not callable(fn):  # check_callable(fn), inlined: once per task
            check_callable(fn)  # type: ignore[unreachable]  # typed, not checked
        counters = self._counters
        try:
            # `with`, not acquire() then try: a Ctrl-C can land right after an
            # acquire() call returns, before its try, and leave the lock held
            # (every later submit and shutdown would hang on it).
            with self._shutdown_lock:
                if self._shutdown:
                    self._refuse_if_broken()  # the stdlib's pools say this first
                    raise RuntimeError(SHUTDOWN_MESSAGE)
                registry = self._exit_registry
                counting = self._counts_submissions
                outer, self._making = self._making, None  # a nested submit's
                try:
                    # Counted first: the task may start (and end) before
                    # _schedule returns. Inside the try: a signal handler runs
                    # as a call returns, so its error comes after the count.
                    if counting:
                        counters.submitted()
                    if registry is None:
                        future = self._schedule(fn, args, kwargs, options)
                    else:
                        with registry.lock:
                            if registry.exiting:
                                self._refuse_if_broken()
                                raise RuntimeError(
                                    "cannot schedule new futures after "
                                    "interpreter shutdown"
                                )
                            future = self._schedule(fn, args, kwargs, options)
                    self._making = outer
                    return future
                except BaseException:
                    if counting:
                        self._undo_submit(outer)
                    raise
        finally:
            if self._close_asked is not None:
                self._close_as_asked()

    def _undo_submit(self, outer: object | None) -> None:
        """A submit failed (lock held): take its count back, unless its task
        was queued, which then runs (an error from a signal handler, Ctrl-C,
        landing after that) and is counted as it ends.

        A backend's ``_schedule`` records its Future in ``_making`` right
        before the one call that queues it, with no other call between: a
        signal handler runs only as a call returns, so with no Future recorded
        nothing was queued. A backend whose queuing call marks what it queued
        (a ``queued`` flag, set with no call before the queuing itself)
        records that item instead, and its flag says.
        """
        queued, self._making = self._making, outer
        if queued is None or getattr(queued, "queued", True) is False:
            self._counters.unsubmitted()

    def _close_as_asked(self) -> None:
        """Close as a :meth:`shutdown` that this thread's submit held off asked
        (once that submit let go of the lock; see :meth:`shutdown`)."""
        if self._submitting_here():
            return  # an outer submit of this thread still holds it: it closes
        with self._shutdown_lock:
            asked, self._close_asked = self._close_asked, None
        if asked is not None:
            wait, cancel_futures = asked
            self._close(wait and not self._in_own_task(), cancel_futures)

    def _submitting_here(self) -> bool:
        """Whether this thread is inside one of the executor's ``submit`` calls,
        holding a lock a close would take (see :meth:`shutdown`)."""
        owned: bool = self._shutdown_lock._is_owned()  # type: ignore[attr-defined]  # an RLock's
        return owned

    def _new_future(
        self, on_interrupt: Callable[[], object] | None = None
    ) -> Future[Any]:
        """A Future for one of this executor's tasks (counted in its statistics)."""
        return Future(on_interrupt, self._counters)

    def statistics(self) -> Statistics:
        """Return a snapshot of the executor's tasks and workers.

        Cheap and thread-safe: it holds no lock across the backend, so it may be
        called in a loop while tasks run. The record is the same on every
        backend; see :class:`unirun.Statistics`.
        """
        return self._counters.snapshot(self._workers(), self._verdicts())

    # -- shutdown -------------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks and release the workers.

        As :meth:`concurrent.futures.Executor.shutdown`. Calling it again is
        harmless.

        Args:
            wait: block until every accepted task has finished and every worker
                has exited.
            cancel_futures: cancel the tasks that have not started.

        Raises:
            RuntimeError: ``wait`` is true and the caller is one of this
                executor's own tasks, which would wait for itself. The executor
                is shut down without waiting first.
        """
        if self._submitting_here():
            # This thread is inside one of the executor's own submit calls: a
            # signal handler (Ctrl-C's, SIGTERM's) or a done-callback runs there.
            # Closing now would cut that call in half, and waiting would wait
            # for it (the stdlib's pools deadlock): the submit closes as asked
            # once its call is queued.
            self._shutdown = True
            wait_before, cancel_before = self._close_asked or (False, False)
            self._close_asked = (wait or wait_before, cancel_futures or cancel_before)
            return
        # A map that cuts its chunks as they run queues what is left while the
        # executor still takes it: its items were accepted at the call.
        for batches in list(self._batch_maps):
            batches.flush()
        with self._shutdown_lock:
            self._shutdown = True
        if wait and self._in_own_task():
            self._close(False, cancel_futures)
            raise RuntimeError(
                "cannot join current thread: shutdown(wait=True) was called from "
                "a task of this executor, which would wait for itself; use "
                "shutdown(wait=False) there"
            )
        try:
            self._close(wait, cancel_futures)
        finally:
            # A signal handler's shutdown() that ran inside this one, while
            # this thread held a lock a close takes, asked for more (say, to
            # cancel): done now.
            if self._close_asked is not None:
                self._close_as_asked()

    # -- map ---------------------------------------------------------------------

    def _map(
        self,
        fn: Callable[..., T],
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int | None,
        buffersize: int | None,
        options: TaskOptions,
        progress: Progress | None = None,
    ) -> MapIterator[T]:
        """Start a map: what :meth:`map` calls, with the caller's task options.

        An executor that overrides it (to route or batch its own way) takes
        ``progress`` too, and hands it to :class:`MapIterator` with the number
        of items (``progress=``, ``total=``), or to ``super()._map``.
        """
        if buffersize is not None and not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        if self.uses_chunks:
            check_chunksize(chunksize)
        check_callable(fn)
        end_time = None if timeout is None else timeout + time.monotonic()
        submit = self._submit_for_map(options)
        zipped: Iterator[tuple[Any, ...]] = zip(*iterables, strict=False)
        total = None
        batching = (
            chunksize is None
            and buffersize is None
            and options.timeout is None  # a time-out is each item's own
            and self._batches(fn)
        )
        if batching or (progress is not None and buffersize is None):
            zipped = iter(read_all(zipped, lambda args: submit(fn, args, {}, options)))
        if progress is not None:
            zipped, total = sized(zipped, iterables, buffersize)
        if batching:
            batches = AdaptiveBatches(
                lambda chunk: submit(run_chunk, (fn, chunk), {}, options),
                list(zipped),
                self._parallelism(),
            )
            self._batch_maps.add(batches)
            return MapIterator.of_batches(
                batches,
                end_time=end_time,
                keep_alive=self,
                progress=progress,
                total=total,
            )
        if chunksize is None or not self.uses_chunks:
            # Threads and coroutines run one task per item for a given chunksize,
            # as ThreadPoolExecutor ignores it: items of one chunk would run one
            # after the other, which code written for the stdlib does not expect.
            chunksize = 1
        chunked = chunksize != 1
        work: Iterator[Any] = batched(zipped, chunksize) if chunked else zipped

        def submit_one(item: Any) -> Future[Any]:
            if chunked:
                return submit(run_chunk, (fn, item), {}, options)
            return submit(fn, item, {}, options)

        return MapIterator(
            submit_one,
            work,
            end_time=end_time,
            buffersize=buffersize,
            chunked=chunked,
            keep_alive=self,
            progress=progress,
            total=total,
        )

    def _submit_for_map(
        self, options: TaskOptions
    ) -> Callable[
        [Callable[..., Any], tuple[Any, ...], dict[str, Any], TaskOptions], Future[Any]
    ]:
        """How a map submits: through a subclass's own ``submit()`` if it has
        one (logging, metrics, context), as the stdlib's ``Executor.map`` does,
        unless the map has task options, which only ``_submit`` takes."""
        own = getattr(type(self).submit, "__code__", None) is not _FRONT_SUBMIT
        if options is not NO_OPTIONS or not own:
            return self._submit

        def through_submit(
            fn: Callable[..., Any],
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
            options: TaskOptions,
        ) -> Future[Any]:
            future: Future[Any] = self.submit(fn, *args, **kwargs)
            return future

        return through_submit

    # -- gather ------------------------------------------------------------------

    def _gather(
        self,
        items: tuple[cf.Future[Any] | Awaitable[Any], ...],
        return_exceptions: bool,
        options: TaskOptions,
        progress: Progress | None = None,
    ) -> Future[list[Any]]:
        return gather(self._submit, items, return_exceptions, options, progress)

    # -- options and primitives ----------------------------------------------------

    def _owner(self) -> BaseExecutor:
        return self

    @property
    def _primitive_scope(self) -> str:
        """Identifies this executor's tasks to the primitives it creates.

        A primitive shared with processes pickles only while a task of the
        executor with its scope is being sent. An executor that routes tasks to
        inner executors gives them its own scope.
        """
        scope: str | None = self.__dict__.get("_unirun_scope")
        if scope is None:
            scope = self.__dict__.setdefault("_unirun_scope", uuid.uuid4().hex)
        return scope

    @_primitive_scope.setter
    def _primitive_scope(self, scope: str) -> None:
        self.__dict__["_unirun_scope"] = scope
        self.__dict__.pop("_shared_kernel", None)

    # -- context managers ----------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # Waiting for the workers blocks, so do it off the event loop; and in a
        # cancelled block too, which would otherwise leave at once, the
        # executor still running (a cancellation waits, as Ctrl-C in `with`).
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.shutdown)
