"""What a :class:`~._loop.LoopRunner` task does with its job: the job's body.

One coroutine per job, run as an asyncio task (or in the anyio task group on
trio)::

    _run_plain    an async def job, no time-out, no limit, on asyncio: one flat
                  frame, in a JobTask (no Job kept)
    _run_asyncio  [a concurrency slot] -> _run_started: under its time-out
    _run_anyio    the same on trio, in a cancel scope (_run_in_scope)
    _invoke       the call itself: awaited, or sent to a worker thread if sync

Each body marks its Future running (with how to stop it), keeps the loop's
busy clock, and gives the Future the outcome; a job never holds its Future
once it ends. A plain function's Future starts, and its time-out begins, only
when a worker thread takes the call (see ``_job.ThreadCall``).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from asyncio import current_task
from concurrent.futures._base import CANCELLED
from time import monotonic
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from ._job import NOT_ENDED, Raised, Returned, settle_abandoned

if TYPE_CHECKING:
    import contextvars
    import threading
    from collections.abc import Callable

    from .._future import Future
    from .._stats import WorkerClock
    from ._job import AbandonedCalls, Job

__all__ = ["EAGER", "JobBodies"]

#: Whether asyncio can start a task eagerly (run its first step at creation).
EAGER = sys.version_info >= (3, 12)


class JobBodies:
    """The job coroutines of a :class:`~._loop.LoopRunner` (a mixin).

    They read the runner's state; only the loop's thread runs them.
    """

    _lock: threading.Lock
    _waiting: set[Future[Any]]
    _queued: set[Future[Any]]  # plain functions waiting for a worker thread
    _slots: Any  # a semaphore of the running loop's library, or None
    _tasks: set[asyncio.Task[None]]  # asyncio: each job's, until it ends
    _foreign: dict[asyncio.Task[None], Future[Any]]  # made by a task factory
    _unstarted: set[Job]  # trio: spawned, until each first runs
    _live: int  # trio: jobs spawned and not ended
    _all_ended: anyio.Event | None  # trio: set when _live drops to 0
    _abandoned: AbandonedCalls  # plain functions whose jobs stopped waiting
    _clock: WorkerClock
    _running: int
    _settling: bool  # a _settle() is scheduled
    _loop: asyncio.AbstractEventLoop | None
    _context: contextvars.Context | None
    _call_soon: Callable[[Callable[[], object]], None] | None

    def _enter(self) -> None:
        self._running += 1
        if self._clock.began is None:  # else still busy: see _run_plain
            self._clock.begin()

    def _leave(self) -> None:
        self._running -= 1
        # On asyncio each job's task settles the clock as it ends: see _settle.
        if self._loop is None and not self._running:  # trio: every job counts
            self._clock.end()

    def _settle_soon(self) -> None:
        """Settle the busy clock at the loop's next turn (asyncio; once a turn)."""
        if not self._settling:
            self._settling = True
            self._loop.call_soon(self._settle, context=self._context)  # type: ignore[union-attr]  # asyncio

    def _settle(self) -> None:
        """End the loop's busy time if no job is left (a turn after one ended).

        On asyncio a job that ends while others are left (or one of many that a
        drain started) leaves the loop busy until the next turn: many short jobs
        in a turn read the clock twice, not twice each. The last job left, alone,
        settles as it ends (a round trip from sync code spends no turn on it). A
        job still has its task in ``_tasks`` until it ends (a ``_run_plain`` job
        is not counted in ``_running``), and every task asks for a settle as it
        ends, whether it ran its call or found its future cancelled.
        """
        self._settling = False
        if not self._running and not self._tasks:
            self._clock.end()

    async def _acquire_slot(self, future: Future[Any]) -> bool:
        """Wait for a concurrency slot; False if the future was cancelled first.

        The future is in ``_waiting`` (cancelled there by ``close()``) from the
        drain that started its task until it has a slot.
        """
        try:
            if future.done():
                future._start()  # a cancelled one: tell concurrent.futures.wait()
                return False
            await self._slots.acquire()
        except BaseException:
            # Torn down while it waited (the body of `async with` failed or was
            # cancelled): it never runs, so it ends cancelled, not pending.
            if future._cancel_pending():
                future._start()  # tell concurrent.futures.wait()
            raise
        finally:
            with self._lock:
                self._waiting.discard(future)
        return True

    async def _run_plain(
        self,
        future: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        """An ``async def`` job with no slot to wait for and no time-out.

        The most common job, in one frame: what :meth:`_run_asyncio`,
        :meth:`_run_started` and :meth:`_invoke` do for it, and nothing more. It
        runs in a :class:`~._job.JobTask`, which is the Future's stopper.
        """
        # The JobTask running this is the Future's stopper, given it when made
        # (a task that starts eagerly, inside its constructor, takes it here).
        # Not asyncio.current_task(): before 3.12 it costs a getpid() call.
        if EAGER:
            future._stopper = current_task()  # type: ignore[assignment]  # a JobTask
        task = future._stopper
        try:
            if self._abandoned.cancelling:  # a close with cancel_futures came first
                future._cancel_pending()
            if not future._start_owned():  # the loop's thread owns it
                return
            clock = self._clock  # self._enter(), inlined, uncounted: see _settle
            if clock.began is None:
                clock.began = monotonic()
            try:
                result = await fn(*args, **kwargs)
            except asyncio.CancelledError as exc:
                _stopped_or_failed(future, task, exc)  # type: ignore[arg-type]  # a JobTask
            except BaseException as exc:
                future._set_exception_if_pending(exc)
            else:
                future._set_result_owned(result)
        finally:
            tasks = self._tasks
            tasks.discard(task)  # a JobTask
            future._stopper = None  # the ended task is not kept by its Future
            # A failed call's traceback holds this frame (and, from 3.12, the
            # frames that awaited it): none may hold the Future, which holds
            # the error (a cycle only the cyclic collector frees), or the call.
            del future, task, fn, args, kwargs
            if not self._settling:  # see _settle
                if tasks or self._running:  # self._settle_soon(), inlined
                    self._settling = True
                    self._loop.call_soon(self._settle, context=self._context)  # type: ignore[union-attr]  # attached
                else:  # the last job ends: settle now, not a turn later
                    self._clock.end()

    async def _run_asyncio(self, job: Job) -> None:
        """One job as a plain asyncio task, with a slot or a time-out."""
        future = job.future
        assert future is not None
        if EAGER:
            job.task = asyncio.current_task()  # started eagerly: not set yet
        slots = self._slots
        try:
            if slots is not None and not await self._acquire_slot(future):
                return
            try:
                if not self._start(job, future):
                    return
                self._enter()
                try:
                    await self._run_started(job, future)
                finally:
                    self._leave()
            finally:
                if slots is not None:
                    slots.release()
        finally:
            task = job.task  # None (run by an eager factory): harmless
            self._tasks.discard(task)
            if self._foreign:
                self._foreign.pop(task, None)  # type: ignore[arg-type]
            job.future = job.task = None  # no cycle through the Future
            del future  # see _run_plain
            self._settle_soon()

    async def _run_started(self, job: Job, future: Future[Any]) -> None:
        limit = job.timeout
        if limit is not None and limit <= 0:
            future._set_exception_if_pending(job.timed_out())  # unless cancelled
            return
        timer = None
        try:
            if limit is None:
                result = await self._invoke(job)
            elif job.is_async:
                async with asyncio.timeout(limit) as timer:
                    result = await self._invoke(job)
            else:  # it counts once a thread takes the call
                schedule = self._call_soon
                assert schedule is not None  # attached
                async with asyncio.timeout(None) as timer:
                    arm = functools.partial(_arm_timer, timer, limit)
                    result = await self._invoke(job, functools.partial(schedule, arm))
        except asyncio.CancelledError as exc:
            _stopped_or_failed(future, current_task(), exc)
        except TimeoutError as exc:
            if timer is not None and timer.expired():
                future._set_exception_if_pending(job.timed_out())
            else:
                future._set_exception_if_pending(exc)
        except BaseException as exc:
            future._set_exception_if_pending(exc)
        else:
            _give(future, result)
        del job, future, timer  # see _run_plain (the timer holds the task)

    async def _run_anyio(self, job: Job) -> None:
        """One job in the anyio task group (trio)."""
        future = job.future
        assert future is not None
        self._unstarted.discard(job)
        try:
            if self._slots is not None and not await self._acquire_slot(future):
                return
            try:
                await self._run_slotted(job, future)
            finally:
                if self._slots is not None:
                    self._slots.release()
                job.future = job.cancel = None
                del future  # see _run_plain
        finally:
            self._live -= 1
            if not self._live and self._all_ended is not None:
                self._all_ended.set()

    async def _run_slotted(self, job: Job, future: Future[Any]) -> None:
        scope = anyio.CancelScope()
        schedule = self._call_soon
        assert schedule is not None
        job.cancel = functools.partial(schedule, scope.cancel)
        if not self._start(job, future):
            return
        limit = job.timeout
        if limit is not None and limit <= 0:
            future._set_exception_if_pending(job.timed_out())  # unless cancelled
            return
        armed = None
        if limit is not None and job.is_async:
            scope.deadline = anyio.current_time() + limit
        elif limit is not None:  # it counts once a thread takes the call
            arm = functools.partial(_arm_scope, scope, limit)
            armed = functools.partial(schedule, arm)
        self._enter()
        try:
            await self._run_in_scope(job, future, scope, armed)
        finally:
            self._leave()
            del job, future  # see _run_plain

    async def _run_in_scope(
        self,
        job: Job,
        future: Future[Any],
        scope: anyio.CancelScope,
        armed: Callable[[], object] | None,
    ) -> None:
        cancelled = anyio.get_cancelled_exc_class()
        try:
            with scope:
                try:
                    result = await self._invoke(job, armed)
                except cancelled:
                    raise
                except BaseException as exc:
                    future._set_exception_if_pending(exc)
                else:
                    _give(future, result)
        finally:
            if not future.done():
                if (
                    job.timeout is not None
                    and scope.cancelled_caught
                    and anyio.current_time() >= scope.deadline
                ):
                    future._set_exception_if_pending(job.timed_out())
                else:
                    _torn_down(future)
            elif future._state == CANCELLED:  # no thread took it: see _torn_down
                future._start()  # tell concurrent.futures.wait()
            del job, future  # see _run_plain

    def _start(self, job: Job, future: Future[Any]) -> bool:
        """Start a job's Future as its task runs; False if it must not run.

        A plain function's Future starts when a worker thread takes the call
        (see :class:`~._job.ThreadCall`): until then it waits as a queued task.
        """
        if self._abandoned.cancelling:  # a close with cancel_futures came first
            future._cancel_pending()
        if job.is_async:
            return future._start(job)  # the job is its own stopper
        if future.done():  # cancelled before its task ran
            future._start()  # tell concurrent.futures.wait()
            return False
        return True

    async def _invoke(self, job: Job, armed: Callable[[], object] | None = None) -> Any:
        """Run the job's call: await it, or hand it to a worker thread, where
        its Future starts and ``armed`` (its time-out's start) is called."""
        fn, args, kwargs = job.fn, job.args, job.kwargs
        job.fn = job.args = job.kwargs = None  # type: ignore[assignment]  # not kept
        if job.is_async:
            del job  # not held by a failed call's traceback: see _run_plain
            return await fn(*args, **kwargs)
        call = self._abandoned.wrap(functools.partial(fn, *args, **kwargs), job, armed)
        queued = self._queued
        future = job.future
        queued.add(future)  # type: ignore[arg-type]  # set while the job runs
        try:
            result = await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except BaseException:
            # Stopped waiting: shutdown(wait=True) waits for the call, which
            # gives the Future its outcome; or it had ended, outcome and all.
            ended = call.abandon()
            if ended is not NOT_ENDED and future is not None:
                settle_abandoned(future, ended)
            del ended
            raise
        finally:
            queued.discard(future)
        call.taken()
        if type(result) is Returned:  # a coroutine: run it here
            coroutine, result.coroutine = result.coroutine, None
            assert coroutine is not None  # taken once
            return await coroutine
        return result


def _give(future: Future[Any], result: Any) -> None:
    """Give ``future`` what its call returned: a plain function's error comes
    boxed (:class:`~._job.Raised`)."""
    if type(result) is Raised:
        # Emptied: the worker thread's frames, which the error's traceback
        # holds, may still hold the box (trio's do).
        error, result.error = result.error, None
        future._set_exception_if_pending(error)  # type: ignore[arg-type]  # set
    else:
        future._set_result_if_pending(result)


def _arm_timer(timer: asyncio.Timeout, limit: float) -> None:
    """Start a time-out that waited for a worker thread (on the loop)."""
    try:
        timer.reschedule(asyncio.get_running_loop().time() + limit)
    except RuntimeError:  # the job stopped waiting meanwhile: it left the timer
        pass


def _arm_scope(scope: anyio.CancelScope, limit: float) -> None:
    """Start a time-out that waited for a worker thread (on trio's loop)."""
    scope.deadline = anyio.current_time() + limit


def _torn_down(future: Future[Any]) -> None:
    """A job's task was stopped before its call ended (the loop is going away,
    or whoever awaited it is gone). A call that has not started never will (a
    plain function's thread drops it: see ``_job.ThreadCall``): it ends
    cancelled, and says so to ``concurrent.futures.wait()``, as does one that
    was cancelled while it waited. A running one is stopped."""
    if future._cancel_pending():  # also true if it was cancelled already
        future._start()  # tell concurrent.futures.wait()
    else:
        future._stop(abandon=True)


def _stopped_or_failed(
    future: Future[Any], task: asyncio.Task[Any] | None, exc: BaseException
) -> None:
    """A job's task saw ``CancelledError``. Its task was cancelled: stopped
    through the Future (already cancelled), or the loop is going away, and
    nobody awaits it. Otherwise the job raised it itself (or awaited something
    cancelled elsewhere): its own error, as on threads, processes and trio."""
    if task is not None and task.cancelling():
        _torn_down(future)
    else:
        future._set_exception_if_pending(exc)
