"""One call submitted to a :class:`~._loop.LoopRunner`, and how to stop it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from .._errors import task_timed_out
from .._starting import PATIENCE_S

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._future import Future

__all__ = [
    "NOT_ENDED",
    "AbandonedCalls",
    "Job",
    "JobTask",
    "Raised",
    "Returned",
    "ThreadCall",
    "settle_abandoned",
]

_LOGGER = logging.getLogger("unirun")


class JobTask(asyncio.Task[None]):
    """The asyncio task of a job, and the Future's stopper of a plain one.

    The common job (no time-out, no limit) needs nothing else to stop it: the
    task is the :data:`~unirun._future.Stopper` itself, so no :class:`Job`
    outlives its submission. ``future`` is the job's Future, which a shutdown
    with ``cancel_futures`` (or a torn-down ``async with``) cancels while the
    task has not run yet.
    """

    __slots__ = ("future",)

    future: Future[Any]

    def __call__(self, abandon: bool) -> bool:
        """Cancel the task at its next ``await`` (from any thread)."""
        self.get_loop().call_soon_threadsafe(self.cancel)
        return True


class Job:
    """One submitted call, and how to stop it once it runs."""

    __slots__ = (
        "args",
        "cancel",
        "fn",
        "future",
        "is_async",
        "kwargs",
        "queued",
        "task",
        "timeout",
    )

    def __init__(
        self,
        future: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        timeout: float | None,
        is_async: bool,
    ) -> None:
        self.future: Future[Any] | None = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.timeout = timeout
        self.is_async = is_async
        self.cancel: Callable[[], object] | None = None  # on trio, once started
        self.task: asyncio.Task[None] | None = None  # on asyncio, once started
        #: Set right before the call that queues (or starts) it, with no call
        #: between: a signal handler's error (Ctrl-C) comes after it, or before.
        self.queued = False

    def stop(self, abandon: bool) -> bool:
        """The job's :data:`~unirun._future.Stopper`: cancel it.

        Only a coroutine is stopped. A plain function in a worker thread runs
        on, and its Future gets what it returns, whoever stopped waiting for
        it, as on the thread backend (see :class:`ThreadCall`).
        """
        if not self.is_async:
            return False
        task = self.task  # on asyncio
        if task is not None:
            task.get_loop().call_soon_threadsafe(task.cancel)
            return True
        cancel = self.cancel  # on trio
        if cancel is None:
            return False
        cancel()
        return True

    #: A job is its Future's stopper itself: no bound method made per task.
    __call__ = stop

    def timed_out(self) -> BaseException:
        return task_timed_out(self.timeout, "cancelled" if self.is_async else "runs on")


_QUEUED, _RUNNING, _ABANDONED, _DONE, _DROPPED = range(5)

#: What :meth:`ThreadCall.abandon` returns for a call that had not ended (its
#: outcome may be None).
NOT_ENDED: Any = object()


class AbandonedCalls:
    """Plain functions that worker threads still run for jobs that stopped
    waiting (a time-out, a cancel): ``shutdown(wait=True)`` waits for them, as
    ``ThreadPoolExecutor`` waits for its threads; and the worker threads that
    ran any call, which it joins once the loop that owns them has ended."""

    __slots__ = ("_changed", "_count", "_lock", "cancelling", "threads")

    def __init__(self) -> None:
        # `with` takes the bare lock (a C __enter__): a Ctrl-C landing as a
        # Condition's Python __enter__ returned would leave it held for good.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._count = 0
        #: A close with ``cancel_futures`` began: every call whose Future has
        #: not started by then is cancelled as its task (or its thread) would
        #: start it, wherever it was on its way (see ``LoopRunner.close``).
        self.cancelling = False
        #: The worker threads that took a call (each lives on until its loop
        #: ends or it idles out).
        self.threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()

    def wrap(
        self,
        call: Callable[[], Any],
        job: Job,
        armed: Callable[[], object] | None,
    ) -> ThreadCall:
        """``call``, to hand to a worker thread; ``job``'s Future starts when a
        thread takes it, and ``armed`` (if any) is called then."""
        return ThreadCall(call, self, job, armed)

    def wait(self) -> None:
        """Block until no abandoned call runs any more."""
        with self._lock:
            self._changed.wait_for(lambda: not self._count)

    def join_threads(self, patience: float = PATIENCE_S) -> None:
        """Wait for the worker threads that ran calls to end: only once the
        loop that owns them has ended, which told them to, and every call that
        outlived its job has returned. One still running after ``patience``
        seconds (told nothing: a library changed) is left, with a warning."""
        here = threading.current_thread()
        deadline = time.monotonic() + patience
        for thread in list(self.threads):
            if thread is not here:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    _LOGGER.warning("%s did not end with its event loop", thread)

    def __bool__(self) -> bool:
        return bool(self._count)


class Raised:
    """A plain function's error, returned by :class:`ThreadCall` rather than
    raised: the job gives it to its Future as is.

    Raised through the job's coroutine, a ``StopIteration`` would turn into
    PEP 479's ``RuntimeError``; and any error would keep, in its traceback, the
    frames of the worker thread and of anyio that hold its Future (a cycle
    that only the cyclic collector frees, with the call's arguments).
    """

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error: BaseException | None = error


class Returned:
    """A coroutine that a plain function returned, boxed by :class:`ThreadCall`
    for the loop to run, as the thread and process backends run one (trio
    refuses a worker thread's coroutine). An awaitable of another kind comes
    back as is, as there."""

    __slots__ = ("coroutine",)

    def __init__(self, coroutine: CoroutineType[Any, Any, Any]) -> None:
        self.coroutine: CoroutineType[Any, Any, Any] | None = coroutine


class ThreadCall:
    """One plain function on its way to, or in, a worker thread.

    It waits for a thread as a queued task: its Future starts (and its
    time-out, through ``armed``, begins) when a thread takes it, so until then
    ``cancel()`` and ``shutdown(cancel_futures=True)`` cancel it, as on the
    thread backend, and a cancelled one never runs. A job that stops waiting
    for it once it runs (its task torn down with the loop, or past its
    time-out) abandons it: it gives its Future its outcome itself, unless the
    Future has one by then (the time-out's error).
    """

    __slots__ = ("_armed", "_call", "_calls", "_future", "_job", "_outcome", "_state")

    def __init__(
        self,
        call: Callable[[], Any],
        calls: AbandonedCalls,
        job: Job,
        armed: Callable[[], object] | None,
    ) -> None:
        self._call: Callable[[], Any] | None = call
        self._calls = calls
        self._job: Job | None = job
        self._armed = armed
        self._state = _QUEUED
        self._future: Future[Any] | None = None  # while it runs
        self._outcome: Any = NOT_ENDED  # once it ran, until its job took it

    def __call__(self) -> Any:
        changed, lock = self._calls._changed, self._calls._lock
        with lock:
            self._calls.threads.add(threading.current_thread())
            job, self._job = self._job, None
            # Not kept once taken: a failed call's traceback holds this frame
            # (and with it `self`), and nothing in it may hold the call's
            # arguments or its Future.
            call, armed, self._call, self._armed = self._call, self._armed, None, None
            if self._state == _DROPPED:  # abandoned before it started
                return None
            future = None if job is None else job.future
            if future is not None:
                if self._calls.cancelling:  # a close with cancel_futures came
                    future._cancel_pending()
                if not future._start(job):
                    self._state = _DONE  # cancelled while it waited for a thread
                    return None
            self._state = _RUNNING
            self._future = future
        del job, future
        assert call is not None  # taken once, by the only thread that runs it
        outcome: Any
        try:
            if armed is not None:
                armed()
            outcome = call()
            if type(outcome) is CoroutineType:
                outcome = Returned(outcome)
        except BaseException as exc:
            outcome = Raised(exc)  # see Raised
        del call, armed  # `armed` holds the time-out, which holds the task
        with lock:
            # Dropped before the outcome is returned: a failed call's traceback
            # holds this frame, and so `self`, which must not hold the Future.
            future, self._future = self._future, None
            abandoned = self._state == _ABANDONED
            if not abandoned:
                self._outcome = outcome  # for a job torn down meanwhile: abandon()
            self._state = _DONE
        if not abandoned:
            del future  # this frame outlives the call in its error's traceback
            return outcome
        try:
            if future is not None:
                settle_abandoned(future, outcome)
        finally:
            del future, outcome
            with lock:
                self._calls._count -= 1
                changed.notify_all()
        return None

    def abandon(self) -> Any:
        """Its job stops waiting: a queued call never starts, a running one is
        counted until it ends and gives its Future its outcome then. Returns
        the outcome of one that ended meanwhile (its job was to take it), or
        :data:`NOT_ENDED`."""
        with self._calls._lock:
            if self._state == _QUEUED:
                self._state = _DROPPED
            elif self._state == _RUNNING:
                self._state = _ABANDONED
                self._calls._count += 1
            outcome, self._outcome = self._outcome, NOT_ENDED
        return outcome

    def taken(self) -> None:
        """Its job took the outcome it returned: not kept here (see Raised)."""
        self._outcome = NOT_ENDED


def settle_abandoned(future: Future[Any], outcome: Any) -> None:
    """Give ``future`` the outcome of a call its job stopped waiting for,
    unless it has one: what the call returned, or raised; a coroutine it
    returned cannot run any more (its loop went away), and is cancelled."""
    if type(outcome) is Raised:
        error, outcome.error = outcome.error, None
        future._set_exception_if_pending(error)  # type: ignore[arg-type]  # set
    elif type(outcome) is Returned:
        coroutine, outcome.coroutine = outcome.coroutine, None
        if coroutine is not None:
            coroutine.close()
        future._mark_cancelled()
    else:
        future._set_result_if_pending(outcome)
