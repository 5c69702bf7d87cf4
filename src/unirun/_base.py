"""BaseExecutor: what every backend shares, built on a single ``_submit`` hook.

A backend implements ``_submit`` (one call, with its options, to one Future) and
``shutdown``. ``submit``, ``map``, ``gather``, ``options()`` and the ``with`` /
``async with`` protocol come from here, so they behave the same everywhere.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import itertools
import threading
import time
import uuid
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, overload

import anyio.to_thread

from . import _sync as primitives
from ._call import run_chunk
from ._future import Future
from ._map import AdaptiveBatches, MapIterator
from ._options import NO_OPTIONS, TaskOptions

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator
    from types import TracebackType
    from typing import Self

    from ._types import P, T

__all__ = ["BaseExecutor", "OptionsView", "check_callable"]


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    # itertools.batched is Python 3.12+.
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def check_callable(fn: object) -> None:
    """Raise :class:`TypeError` at once if ``fn`` cannot be called."""
    if not callable(fn):
        raise TypeError(f"the task must be callable, got {type(fn).__name__}: {fn!r}")


async def _await_it(awaitable: Awaitable[T]) -> T:
    return await awaitable


class BaseExecutor(cf.Executor):
    """Shared behaviour of every unirun executor; subclass it to add a backend.

    Subclasses implement :meth:`_submit` and :meth:`shutdown` and declare what
    their model can do with the class flags below; tests branch on the flags,
    never on the kind's name.
    """

    #: The name of the backend, as given to :func:`unirun.executor`.
    kind: ClassVar[str]
    #: Tasks run in another process: everything sent must pickle.
    crosses_processes: ClassVar[bool] = False
    #: ``Future.cancel()`` stops a task that is already running.
    cancels_running: ClassVar[bool] = False
    #: A task that passes its time-out is stopped (not only failed).
    stops_on_timeout: ClassVar[bool] = False
    #: ``map`` batches items into chunks (``chunksize`` matters).
    uses_chunks: ClassVar[bool] = False

    # -- the hooks --------------------------------------------------------------

    @abstractmethod
    def _submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` with ``options``; return its Future."""

    @abstractmethod
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks and release the workers.

        Args:
            wait: block until every submitted task has finished and every worker
                has exited.
            cancel_futures: cancel the tasks that have not started yet.
        """

    # -- submit ------------------------------------------------------------------

    @overload
    def submit(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]: ...

    @overload
    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]: ...

    def submit(
        self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` and return a Future for its result.

        Returns at once. ``fn`` may be a plain function or an ``async def``; it
        runs exactly once unless cancelled before it starts.

        Raises:
            TypeError: ``fn`` is not callable.
            RuntimeError: the executor has been shut down.
            unirun.TransferError: (process backend) ``fn`` or an argument cannot
                be pickled.
        """
        return self._submit(fn, args, kwargs, NO_OPTIONS)

    # -- map ---------------------------------------------------------------------

    @overload
    def map(
        self,
        fn: Callable[..., Awaitable[T]],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
    ) -> MapIterator[T]: ...

    @overload
    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
    ) -> MapIterator[T]: ...

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
    ) -> MapIterator[Any]:
        """Return ``fn`` applied to the items of ``iterables``, in input order.

        Like :meth:`concurrent.futures.Executor.map`: the inputs are submitted at
        once (or ``buffersize`` at a time, as in Python 3.14); ``timeout`` counts
        from this call and raises :class:`TimeoutError` from the iteration; an
        exception from ``fn`` is raised where its item would be. The result can
        be iterated with ``for`` or ``async for``.

        Args:
            chunksize: items sent to a worker at a time on backends that batch
                (processes); ``None`` lets the backend choose. Ignored by threads
                and coroutines, as ``ThreadPoolExecutor`` ignores it.
            buffersize: at most this many tasks are submitted ahead of the
                consumer; ``None`` submits them all now.
        """
        return self._map(fn, iterables, timeout, chunksize, buffersize, NO_OPTIONS)

    def _parallelism(self) -> int:
        """How many tasks run at once, for sizing ``map(chunksize=None)`` batches."""
        return 1

    def _map(
        self,
        fn: Callable[..., T],
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int | None,
        buffersize: int | None,
        options: TaskOptions,
    ) -> MapIterator[T]:
        if buffersize is not None and not isinstance(buffersize, int):
            raise TypeError("buffersize must be an integer or None")
        if buffersize is not None and buffersize < 1:
            raise ValueError("buffersize must be None or > 0")
        if self.uses_chunks and chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        check_callable(fn)
        end_time = None if timeout is None else timeout + time.monotonic()
        zipped: Iterator[tuple[Any, ...]] = zip(*iterables, strict=False)
        if not self.uses_chunks:
            chunksize = 1
        elif chunksize is None:
            if buffersize is None:
                batches = AdaptiveBatches(
                    lambda chunk: self._submit(run_chunk, (fn, chunk), {}, options),
                    list(zipped),
                    self._parallelism(),
                )
                return MapIterator(
                    lambda item: None,
                    iter(()),
                    end_time=end_time,
                    buffersize=None,
                    chunked=True,
                    keep_alive=self,
                    batches=batches,
                )
            chunksize = 1
        chunked = chunksize != 1
        work: Iterator[Any] = _batched(zipped, chunksize) if chunked else zipped

        def submit_one(item: Any) -> Future[Any]:
            if chunked:
                return self._submit(run_chunk, (fn, item), {}, options)
            return self._submit(fn, item, {}, options)

        return MapIterator(
            submit_one,
            work,
            end_time=end_time,
            buffersize=buffersize,
            chunked=chunked,
            keep_alive=self,
        )

    # -- gather ------------------------------------------------------------------

    def gather(
        self,
        *futures_or_awaitables: cf.Future[Any] | Awaitable[Any],
        return_exceptions: bool = False,
    ) -> Future[list[Any]]:
        """Return a Future for the list of results of all the given tasks.

        Futures are waited for; other awaitables (coroutines) are submitted to
        this executor first. Use ``.result()`` in sync code and ``await`` in
        async code. As with :func:`asyncio.gather`, the first exception fails the
        returned Future unless ``return_exceptions`` is true, in which case
        exceptions take their place in the list; cancelling the returned Future
        cancels every task.
        """
        return self._gather(futures_or_awaitables, return_exceptions, NO_OPTIONS)

    def _gather(
        self,
        items: tuple[cf.Future[Any] | Awaitable[Any], ...],
        return_exceptions: bool,
        options: TaskOptions,
    ) -> Future[list[Any]]:
        children: list[cf.Future[Any]] = []
        for item in items:
            if isinstance(item, cf.Future):
                children.append(item)
            elif inspect.isawaitable(item):
                children.append(self._submit(_await_it, (item,), {}, options))
            else:
                raise TypeError(
                    f"gather() takes futures and awaitables, got {type(item).__name__}"
                    f": {item!r}"
                )
        return gather_futures(children, return_exceptions)

    # -- options -----------------------------------------------------------------

    def options(
        self,
        *,
        timeout: float | None = None,
        name: str | None = None,
        backend: str | None = None,
    ) -> OptionsView:
        """Return a view of this executor whose tasks carry these options.

        The view has the same ``submit``, ``map`` and ``gather``; the task's own
        keyword arguments stay untouched. See :class:`unirun.TaskOptions`.

        Raises:
            ValueError: ``backend`` is not a backend name, or names a backend this
                executor cannot run (a fixed executor runs only its own kind).
        """
        options = TaskOptions(timeout=timeout, name=name, backend=backend)
        self._check_backend(options.backend)
        return OptionsView(self, options)

    def _check_backend(self, backend: str | None) -> None:
        """Reject a backend hint this executor cannot follow."""
        if backend is not None and backend != self.kind:
            raise ValueError(
                f"a {self.kind} executor cannot run tasks on the {backend!r} "
                f"backend; use unirun.AutoExecutor to choose per task, or an "
                f"executor of that kind"
            )

    # -- primitives ----------------------------------------------------------------

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

    def _sharing_scope(self) -> str | None:
        return self._primitive_scope if self.crosses_processes else None

    def Queue(self, maxsize: int = 0) -> primitives.Queue[Any]:
        """A FIFO queue usable by this executor's tasks and by the caller.

        Sync methods are :class:`queue.Queue`'s; ``async_put``, ``async_get``
        and ``async_join`` wait without blocking an event loop. On executors
        whose tasks run in other processes, the queue is shared with them.
        ``maxsize <= 0`` means unbounded.
        """
        return primitives.make_queue(self._sharing_scope(), maxsize)

    def Lock(self) -> primitives.Lock:
        """A lock usable by this executor's tasks and by the caller.

        :class:`threading.Lock`'s methods, plus ``async_acquire`` and
        ``async with``.
        """
        return primitives.make_lock(self._sharing_scope())

    def Semaphore(self, value: int = 1) -> primitives.Semaphore:
        """A counting semaphore, as :class:`threading.Semaphore`, plus async."""
        return primitives.make_semaphore(self._sharing_scope(), value)

    def BoundedSemaphore(self, value: int = 1) -> primitives.BoundedSemaphore:
        """A semaphore that may not rise above ``value``, plus async."""
        return primitives.make_bounded_semaphore(self._sharing_scope(), value)

    def Event(self) -> primitives.Event:
        """An event flag, as :class:`threading.Event`, plus ``async_wait``."""
        return primitives.make_event(self._sharing_scope())

    # -- context managers ----------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        # Waiting for the workers blocks, so do it off the event loop.
        await anyio.to_thread.run_sync(self.shutdown)


def gather_futures(
    children: list[cf.Future[Any]], return_exceptions: bool
) -> Future[list[Any]]:
    """Combine ``children`` into one Future of their results, in order."""
    outer: Future[list[Any]] = Future()
    results: list[Any] = [None] * len(children)
    remaining = len(children)
    lock = threading.Lock()
    if not children:
        outer.set_result([])
        return outer

    def on_outer_done(_: cf.Future[list[Any]]) -> None:
        if outer.cancelled():
            outer.set_running_or_notify_cancel()  # wake concurrent.futures.wait()
            for child in children:
                if isinstance(child, Future):
                    child._abandon()
                else:
                    child.cancel()

    def on_child_done(index: int, child: cf.Future[Any]) -> None:
        nonlocal remaining
        if outer.done():
            return
        if child.cancelled():
            error: BaseException | None = cf.CancelledError()
        else:
            error = child.exception()
        if error is not None and not return_exceptions:
            outer._set_exception_if_pending(error)
            return
        with lock:
            results[index] = error if error is not None else child.result()
            remaining -= 1
            finished = remaining == 0
        if finished:
            outer._set_result_if_pending(results)

    for index, child in enumerate(children):
        child.add_done_callback(lambda c, i=index: on_child_done(i, c))  # type: ignore[misc]
    outer.add_done_callback(on_outer_done)
    return outer


class OptionsView:
    """An executor seen through per-task options; see :meth:`Executor.options`.

    ``submit``, ``map`` and ``gather`` schedule on the underlying executor with the
    options attached; ``shutdown`` and the context managers act on the executor.
    """

    def __init__(self, executor: BaseExecutor, options: TaskOptions) -> None:
        self._executor = executor
        self._options = options

    @property
    def task_options(self) -> TaskOptions:
        """The options every task submitted through this view carries."""
        return self._options

    @overload
    def submit(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]: ...

    @overload
    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]: ...

    def submit(
        self, fn: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[Any]:
        """Like :meth:`Executor.submit`, with this view's options."""
        return self._executor._submit(fn, args, kwargs, self._options)

    @overload
    def map(
        self,
        fn: Callable[..., Awaitable[T]],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
    ) -> MapIterator[T]: ...

    @overload
    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
    ) -> MapIterator[T]: ...

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int | None = 1,
        buffersize: int | None = None,
    ) -> MapIterator[Any]:
        """Like :meth:`Executor.map`; each task carries this view's options."""
        return self._executor._map(
            fn, iterables, timeout, chunksize, buffersize, self._options
        )

    def gather(
        self,
        *futures_or_awaitables: cf.Future[Any] | Awaitable[Any],
        return_exceptions: bool = False,
    ) -> Future[list[Any]]:
        """Like :meth:`Executor.gather`; awaitables run with this view's options."""
        return self._executor._gather(
            futures_or_awaitables, return_exceptions, self._options
        )

    def options(
        self,
        *,
        timeout: float | None = None,
        name: str | None = None,
        backend: str | None = None,
    ) -> OptionsView:
        """Return a view with these options; ``None`` keeps this view's value."""
        options = TaskOptions(
            timeout=self._options.timeout if timeout is None else timeout,
            name=self._options.name if name is None else name,
            backend=self._options.backend if backend is None else backend,
        )
        self._executor._check_backend(options.backend)
        return OptionsView(self._executor, options)

    def Queue(self, maxsize: int = 0) -> primitives.Queue[Any]:
        """The executor's :meth:`BaseExecutor.Queue`."""
        return self._executor.Queue(maxsize)

    def Lock(self) -> primitives.Lock:
        """The executor's :meth:`BaseExecutor.Lock`."""
        return self._executor.Lock()

    def Semaphore(self, value: int = 1) -> primitives.Semaphore:
        """The executor's :meth:`BaseExecutor.Semaphore`."""
        return self._executor.Semaphore(value)

    def BoundedSemaphore(self, value: int = 1) -> primitives.BoundedSemaphore:
        """The executor's :meth:`BaseExecutor.BoundedSemaphore`."""
        return self._executor.BoundedSemaphore(value)

    def Event(self) -> primitives.Event:
        """The executor's :meth:`BaseExecutor.Event`."""
        return self._executor.Event()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the underlying executor down; see :meth:`Executor.shutdown`."""
        self._executor.shutdown(wait, cancel_futures=cancel_futures)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.shutdown(wait=True)

    async def __aenter__(self) -> Self:
        await self._executor.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self._executor.__aexit__(exc_type, exc_val, exc_tb)

    def __repr__(self) -> str:
        return f"<OptionsView {self._options} of {self._executor!r}>"


OptionsView.__module__ = "unirun"
