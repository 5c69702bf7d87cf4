"""The event-loop side of a :class:`CoroutineExecutor`.

A :class:`LoopRunner` runs the tasks on an anyio event loop: the caller's, when
the executor is entered with ``async with`` inside a running loop, or else its
own, in a thread started by the first ``submit``. Submitted calls go through an
inbox that the loop drains, so ``submit`` is cheap and works from any thread::

    submit() -> inbox -> (one wake-up per batch) -> loop: one task per job (_spawn.py)
    job: [a concurrency slot] -> the coroutine (or a worker thread if sync),
         under a time-out and cancellable -> its Future   (see _bodies.py)

The runner never refers to its executor: an executor that is dropped without
``shutdown()`` is collected, and its finalizer ends the loop; interpreter exit
ends every runner's loop after its tasks, as the stdlib does with threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import anyio.to_thread

from .._completion import call_soon_threadsafe_here
from .._errors import BrokenExecutor
from .._exit import ExitRegistry
from .._starting import HelperThread, began, exiting, join_launched, start_thread
from .._stats import WorkerClock
from ._bodies import EAGER
from ._job import AbandonedCalls
from ._parking import ParkingLoop, new_parking_loop, parking_loop_wanted
from ._spawn import JobSpawner

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from anyio.abc import TaskGroup

    from .._future import Future
    from .._stats import WorkerFigures
    from ._job import Job

__all__ = ["OWNER", "LoopRunner", "registry"]

#: Which runner's task the current context belongs to (a token, not the runner,
#: so that no context keeps anything alive).
OWNER: contextvars.ContextVar[object] = contextvars.ContextVar("unirun_coroutine")


def _close_all(live: list[tuple[LoopRunner, Any]]) -> None:
    for runner, _ in live:
        runner.close(wait=True, cancel_futures=False)


#: Runners with a loop thread: ended (after their tasks) at interpreter exit.
registry: ExitRegistry[LoopRunner] = ExitRegistry(_close_all)


T = TypeVar("T")


def _snapshot(items: Iterable[T]) -> list[T]:
    """A list of what another thread may be changing (it only adds and removes)."""
    while True:
        try:
            return list(items)
        except RuntimeError:  # it changed size meanwhile: read it again
            continue


def _leaves(error: BaseException) -> list[int]:
    """The ids of the exceptions in ``error``, a group or not, leaf by leaf."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [id(error)]


class LoopRunner(JobSpawner):
    """Runs jobs on an event loop; see the module docstring."""

    # Slots keep attribute reads on the per-task path fast: past 30 attributes,
    # CPython keeps an instance's attributes in a dict of its own instead (the
    # mixin's dict and weak references stay). One string: a shorter module.
    __slots__ = tuple(
        """_abandoned _all_ended _attached _backend _broken _call_soon _clock _closing
        _context _finished _foreign _inbox _initargs _initializer _live
        _lock _loop _max_concurrency _name _on_asyncio _queued _running
        _settling _slots _started _task_group _tasks _thread _unstarted _waiting
        _wake_pending _wake_soon _wakeup direct loop_thread token""".split()  # noqa: SIM905
    )

    def __init__(
        self,
        max_concurrency: int | None,
        backend: Literal["asyncio", "trio"],
        initializer: Callable[..., object] | None,
        initargs: tuple[Any, ...],
        name: str,
    ) -> None:
        self.token = object()
        self._max_concurrency = max_concurrency
        self._backend = backend
        self._initializer = initializer
        self._initargs = initargs
        self._name = name
        self._lock = threading.Lock()
        self._inbox: deque[Job] = deque()
        self._waiting: set[Future[Any]] = set()  # jobs waiting for a slot
        # Plain functions waiting for a worker thread, and in one (changed on
        # the loop's thread only; their Futures start when a thread takes them).
        self._queued: set[Future[Any]] = set()
        self._wake_pending = False
        self._call_soon: Callable[[Callable[[], object]], None] | None = None
        # How to get _wake() called on the loop, from any thread.
        self._wake_soon: Callable[[Callable[[], object]], None] | None = None
        self._task_group: TaskGroup | None = None
        self._slots: Any = None  # a semaphore of the running loop's library
        self._wakeup: anyio.Event
        self._thread: threading.Thread | None = None
        self._attached: TaskGroup | None = None
        self._started = False
        self._closing = False
        self._broken: str | None = None
        # asyncio: jobs are plain tasks, much cheaper than anyio's task group (trio).
        self._on_asyncio = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The thread running the loop (its ident), once it runs.
        self.loop_thread: int | None = None
        #: Where start_now() may start tasks: asyncio before 3.12, no limit, not broken.
        self.direct: asyncio.AbstractEventLoop | None = None
        # Each job's task (asyncio) and its Future, until it ends; on trio, the
        # jobs spawned that have not run yet.
        self._tasks: set[asyncio.Task[None]] = set()
        self._foreign: dict[asyncio.Task[None], Future[Any]] = {}
        self._unstarted: set[Job] = set()
        self._live = 0
        self._all_ended: anyio.Event | None = None
        self._finished = threading.Event()  # the drainer ended: every job too
        self._abandoned = AbandonedCalls()
        self._context: contextvars.Context | None = None
        self._clock = WorkerClock("event loop")
        self._running = 0  # jobs running now (changed on the loop's thread only)
        self._settling = False

    # -- called from any thread ---------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queue ``job`` (or start it now, when called on the loop itself)."""
        if (
            self.loop_thread == threading.get_ident()
            and self._task_group is not None
            and not self._broken
        ):
            # On the loop's own thread (a task, or the body of `async with`).
            # Only this thread drains the inbox or breaks the runner, so no lock
            # is needed; a job another thread queues meanwhile was not ordered
            # against this one anyway.
            if not EAGER:
                if not self._inbox and self._slots is None:
                    job.queued = True
                    self._spawn(job)  # its task starts at the loop's next turn
                    return
            elif self._on_asyncio and self._loop is not None:
                # Tasks start eagerly, so never here, inside submit(): at the
                # loop's next turn, one wake-up for all the jobs queued until then.
                job.queued = True
                self._inbox.append(job)
                if not self._wake_pending:
                    self._loop.call_soon(self._wake)  # first: see below
                    self._wake_pending = True
                return
        waking: Callable[[Callable[[], object]], None] | None = None
        try:
            with self._lock:
                self.refuse_if_broken()
                job.queued = True
                self._inbox.append(job)
                if not self._started or self._never_began():
                    try:
                        self._start_thread()
                    except RuntimeError as error:
                        if exiting(error):  # none will ever start: refused, as
                            self._inbox.remove(job)  # the stdlib's pools refuse
                            job.queued = False  # a call at exit
                        raise
                    return
                wake_soon = self._wake_soon
                if wake_soon is None or self._wake_pending:
                    return
                waking, self._wake_pending = wake_soon, True
            waking(self._wake)
        except BaseException:
            # A signal handler's error (Ctrl-C) between the flag and the
            # wake-up: wake the loop all the same, or every job queued after
            # this one would wait for a wake-up that never comes.
            if waking is not None:
                waking(self._wake)  # twice at worst: the second finds none
            raise

    def refuse_if_broken(self) -> None:
        """Raise :class:`BrokenExecutor` if the initializer failed."""
        if self._broken:
            raise BrokenExecutor(self._broken)

    def close(self, wait: bool, cancel_futures: bool) -> None:
        """Run what was accepted (or cancel what has not started), then end.

        With ``wait``, return once every job has ended, unless called on the
        loop's own thread (which would wait for itself).
        """
        with self._lock:
            self._closing = True
            cancelled: list[Future[Any] | None] = []
            if cancel_futures:
                # First: a job the loop is starting meanwhile, seen by none of
                # the lists below, is cancelled as it starts.
                self._abandoned.cancelling = True
                cancelled = [job.future for job in self._inbox]
                self._inbox.clear()
                cancelled += self._waiting
            if self._inbox and self._never_began():  # the accepted jobs still run
                self._start_thread()
            wake_soon, thread = self._wake_soon, self._thread
        if cancel_futures:
            # Started as tasks but not run yet (their task sees it when it does).
            cancelled += [self._future_of(task) for task in _snapshot(self._tasks)]
            cancelled += [job.future for job in _snapshot(self._unstarted)]
            cancelled += _snapshot(self._queued)
        for future in cancelled:
            if future is not None and future._cancel_pending():
                future._start()  # tell concurrent.futures.wait()
        if wake_soon is not None and (thread is not None or self.attached):
            wake_soon(self._wake)
        # Otherwise the loop is still starting (its drainer sees _closing), or
        # never started.
        if not wait or self.loop_thread == threading.get_ident():
            return
        if thread is not None:
            join_launched(thread)
        elif wake_soon is not None:  # on a caller's loop, from another thread
            self._finished.wait()
        self._abandoned.wait()  # plain functions that ran past their time-out
        if thread is not None and self._backend == "asyncio":
            # anyio's worker threads of the loop, told to end as it did, are
            # joined as the stdlib's pools join theirs. Trio's are shared by
            # every trio loop of the process, and idle out on their own.
            self._abandoned.join_threads()

    def copy(self) -> LoopRunner:
        """A runner with the same settings, not started."""
        return LoopRunner(
            self._max_concurrency,
            self._backend,
            self._initializer,
            self._initargs,
            self._name,
        )

    @property
    def attached(self) -> bool:
        """Whether the jobs run on a caller's loop (inside ``async with``)."""
        return self._attached is not None

    def figures(self) -> WorkerFigures:
        """The loop as the one worker: busy while any job runs."""
        thread = self._thread
        alive = self.attached or (thread is not None and thread.is_alive())
        started = int(self._started)
        return (int(alive), started, 0, (self._clock.read(),) if alive else ())

    def in_own_task(self) -> bool:
        """Whether the caller runs in one of this runner's tasks."""
        return OWNER.get(None) is self.token

    # -- the loop, own or attached ------------------------------------------------

    def _start_thread(self) -> None:
        """Start the loop's thread (lock held). Recorded before it starts: a
        Ctrl-C landing in ``start()`` once it runs must not lose it, and one
        landing before its launch leaves a thread that :meth:`_never_began`."""
        options: dict[str, Any] = {}
        if self._backend == "asyncio" and parking_loop_wanted():
            options["loop_factory"] = new_parking_loop
        self._thread = HelperThread(
            target=anyio.run,
            args=(self._main,),
            kwargs={"backend": self._backend, "backend_options": options},
            name=self._name,
        )
        self._started = True
        registry.add(self)
        start_thread(self._thread)

    def _never_began(self) -> bool:
        """Whether the loop's thread was made but never ran (lock held): its
        start failed, or was interrupted before the launch. Asks nothing of a
        loop that runs already."""
        thread = self._thread
        return thread is not None and self._wake_soon is None and not began(thread)

    async def _main(self) -> None:
        try:
            async with anyio.create_task_group() as task_group:
                await self._attach(task_group)
            # The task group waited for the drainer (gone at close) and every job.
        finally:
            registry.discard(self)

    async def attach(self) -> bool:
        """Run the jobs on the running loop (``async with``); False if running."""
        with self._lock:
            if self._started:
                return False
            self._started = True
        self._attached = anyio.create_task_group()
        await self._attach(await self._attached.__aenter__())
        return True

    async def detach(
        self, exc_type: type[BaseException] | None, exc: BaseException | None
    ) -> None:
        """Wait for the jobs, after ``async with``; the body's error leaves as is."""
        with self._lock:
            self._closing = True
        self._wakeup.set()
        attached, self._attached = self._attached, None
        assert attached is not None
        try:
            await attached.__aexit__(exc_type, exc, exc.__traceback__ if exc else None)
        except BaseExceptionGroup as group:
            # anyio wraps the body's own error; let it leave as itself (the
            # caller's __aexit__ returns, and Python raises it unchanged).
            # A group of the body's own may come back as an equal copy (trio).
            if exc is None or _leaves(group) != _leaves(exc):
                raise
        finally:
            if self._abandoned:  # plain functions still in their threads
                # Waited for even when the block is cancelled: a thread cannot
                # be, and its Future gets what it returns (as `with` on a
                # thread executor waits).
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._abandoned.wait)

    async def _attach(self, task_group: TaskGroup) -> None:
        """Make ``task_group`` (in the running loop) the home of the jobs."""
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # trio: its tasks go through the anyio task group
            self._loop = None
        self._on_asyncio = self._loop is not None
        if self._on_asyncio and not EAGER and self._max_concurrency is None:
            self.direct = self._loop
        if self._max_concurrency is not None:
            semaphore = asyncio.Semaphore if self._on_asyncio else anyio.Semaphore
            self._slots = semaphore(self._max_concurrency)
        self._task_group = task_group
        self._wakeup = anyio.Event()
        self._context = contextvars.copy_context()
        self._context.run(OWNER.set, self.token)
        self.loop_thread = threading.get_ident()
        if self._initializer is not None:
            try:
                result = self._initializer(*self._initargs)
                if inspect.isawaitable(result):
                    await result
            except BaseException:
                logging.getLogger("concurrent.futures").critical(
                    "Exception in initializer:", exc_info=True
                )
                self._fail_all(
                    "The coroutine executor's initializer failed, "
                    "the executor is not usable anymore"
                )
        call_soon = call_soon_threadsafe_here()
        loop = self._loop
        with self._lock:
            self._call_soon = call_soon
            if isinstance(loop, ParkingLoop):  # a thread of its own: wakes cheaper
                self._wake_soon = loop.call_in_select
            else:
                self._wake_soon = call_soon
        task_group.start_soon(self._drainer)

    def _wake(self) -> None:
        """Start the inbox's jobs (runs on the loop, outside any task).

        On asyncio the jobs are started right here; on trio starting tasks needs
        a task context, so the drainer is woken to do it.
        """
        if self._on_asyncio:
            self._drain()
            if self._closing:
                self._wakeup.set()  # let the drainer see the close
        else:
            self._wakeup.set()

    async def _drainer(self) -> None:
        """Start the jobs that arrive in the inbox, until close empties it."""
        OWNER.set(self.token)
        try:
            while True:
                self._drain()
                with self._lock:
                    done = self._closing and not self._inbox
                if done:
                    break
                await self._wakeup.wait()
                self._wakeup = anyio.Event()
            await self._wait_for_tasks()
        except anyio.get_cancelled_exc_class():
            # The body of `async with` failed or was cancelled: stop the jobs
            # too, and wait until they have.
            for task in _snapshot(self._tasks):
                # One that has not run yet never will: its future ends cancelled.
                future = self._future_of(task)
                if future is not None and future._cancel_pending():
                    future._start()  # tell concurrent.futures.wait()
                task.cancel()
            with anyio.CancelScope(shield=True):
                await self._wait_for_tasks()
            raise
        finally:
            self._settle()  # no job is left to do it
            # No call starts on this loop from now on (a later thread may get
            # this one's ident).
            self.loop_thread = self.direct = None
            self._finished.set()

    async def _wait_for_tasks(self) -> None:
        while self._live:  # trio: the jobs in the task group
            self._all_ended = anyio.Event()
            await self._all_ended.wait()
        while self._tasks:  # plain asyncio tasks: wait for them here
            await asyncio.wait(list(self._tasks))
            # A task leaves the set itself once it ran; one that never got that
            # far (cancelled before it started: its future was) is dropped here.
            self._tasks = {task for task in self._tasks if not task.done()}

    def _fail_all(self, reason: str) -> None:
        with self._lock:
            self._broken = reason
            self.direct = None
            jobs = list(self._inbox)
            self._inbox.clear()
        for job in jobs:
            if job.future is not None:
                job.future._set_exception_if_pending(BrokenExecutor(reason))

    def _drain(self) -> None:
        """Start every job in the inbox (runs on the loop)."""
        with self._lock:
            jobs = list(self._inbox)
            self._inbox.clear()
            self._wake_pending = False
            if self._slots is not None:
                # Each waits for a slot from now on: close() can still cancel it
                # in the moment before its task first runs.
                self._waiting.update(job.future for job in jobs if job.future)
        if self._task_group is None:
            return
        if len(jobs) > 1 and self._on_asyncio:  # one settle for them all
            self._settle_soon()
        for job in jobs:
            self._spawn(job)
