"""``Future[T]``: a ``concurrent.futures.Future`` that async code can also await.

Backends drive it through two private calls (see ``_base.py``). One future
follows another in ``_follow.py``; ``wait``, ``as_completed`` are in ``_completion.py``.
"""

from __future__ import annotations

import _thread
import concurrent.futures as cf
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from typing import TYPE_CHECKING, Any

from ._call import ChunkResult
from ._checks import MAX_WAIT
from ._completion import wait_done
from ._owned import DONE as _DONE
from ._owned import OwnedSteps
from ._types import T

if TYPE_CHECKING:
    from collections.abc import Generator

    from ._stats import TaskCounters

__all__ = ["Future", "Stopper"]

#: How the thread that ends a future wakes its result()'s sleepers: one C call
#: (``deque(map(_RELEASE, sleepers), 0)``, the map made before the state changes)
#: right after it, so no signal handler can raise between the future reading as
#: done and every sleeper released (a Python loop could, leaving one asleep).
_RELEASE = _thread.LockType.release

#: How a backend stops one of its running tasks, called with ``abandon`` (true when
#: nobody will read the result, false for a ``cancel()``): whether it will stop.
#: It must only *ask* (schedule the stop), never complete the future itself.
Stopper = Callable[[bool], bool]

_CANCELLED = (CANCELLED, CANCELLED_AND_NOTIFIED)
#: set_running_or_notify_cancel() of a task notified as cancelled: _cancel_pending.
_STARTABLE = (PENDING, *_CANCELLED)
#: The stdlib's words for the states, in reprs.
_STATE_NAMES = cf._base._STATE_TO_DESCRIPTION_MAP


class Future(OwnedSteps[T], cf.Future[T]):
    """The result of a task: a :class:`concurrent.futures.Future` you can await.

    ``fut.result()`` blocks the calling thread; ``await fut`` suspends the calling
    coroutine instead (asyncio or trio) and never blocks its event loop. If the
    awaiting coroutine is cancelled, the task is cancelled too when it has not
    started, and stopped when its backend can stop a running task (a coroutine
    is cancelled, a process worker is killed and replaced). A thread cannot be
    stopped and runs on.

    Because it is a ``concurrent.futures.Future``, it works with
    :func:`concurrent.futures.wait`, :func:`~concurrent.futures.as_completed` and
    :func:`asyncio.wrap_future`.

    Backends drive it with the constructor's ``on_interrupt`` (what a Ctrl-C in
    :meth:`result` also does) and :meth:`_start` (running, and how to stop it);
    an ``owner`` thread starts and ends it with no lock (``_owned.py``).
    """

    # The stdlib makes a Condition per future, which costs more than the rest of it.
    # Here a C RLock guards the state, result() waits on a lock of its own (_sleep),
    # and the Condition (on that RLock) is made only if the stdlib's helpers ask.
    _cond: threading.Condition | None = None
    _stopper: Stopper | None = None
    _on_interrupt: Callable[[], object] | None = None
    #: A task in line that only _start() starts (as those with _counters).
    _in_line = False
    _counters: TaskCounters | None = None
    _waiter_list: list[Any] | None = None  # see _waiters
    _sleepers: list[_thread.LockType] | None = None  # see _sleep

    def __init__(
        self,
        on_interrupt: Callable[[], object] | None = None,
        counters: TaskCounters | None = None,
        owner: int | None = None,
    ) -> None:
        # A lock of its own, as each stdlib future has: concurrent.futures.wait()
        # takes the locks of many futures in the order of their ids. An owned
        # future's is made when another thread first needs it (see OwnedSteps).
        if owner is None:
            self._lock = _thread.RLock()  # threading.RLock() wraps this C one
        else:
            self._lock = None  # set, not left out: on 3.13 reads are faster so
            self._fast = True  # the owner's token: see OwnedSteps
        self._owner = owner  # set even to None: it reads faster so
        self._state = PENDING
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._done_callbacks: list[Callable[[Future[T]], object]] = []
        if on_interrupt is not None:
            self._on_interrupt = on_interrupt
        if counters is not None:
            self._counters = counters

    @property
    def _waiters(self) -> list[Any]:
        """The stdlib's waiters (``concurrent.futures.wait``, ``as_completed``).

        Made on first use: most futures never have one, and each list is one
        more object for the garbage collector to visit. The stdlib reads it
        holding this future's lock; taking it here again is harmless (an RLock).
        """
        waiters = self._waiter_list
        if waiters is None:
            with self._lock or self._make_lock():
                if self._owner is not None:  # see OwnedSteps
                    self._seal()
                waiters = self._waiter_list
                if waiters is None:
                    waiters = self._waiter_list = []
        return waiters

    @_waiters.setter
    def _waiters(self, waiters: list[Any]) -> None:
        self._waiter_list = waiters

    @property
    def _condition(self) -> threading.Condition:
        cond = self._cond
        if cond is None:
            lock = self._lock or self._make_lock()
            with lock:
                if self._owner is not None:  # see OwnedSteps
                    self._seal()
                cond = self._cond
                if cond is None:
                    cond = self._cond = threading.Condition(lock)
        return cond

    @_condition.setter
    def _condition(self, condition: threading.Condition) -> None:
        self._cond = condition

    def _start(self, stopper: Stopper | None = None) -> bool:
        """Mark the task running; ``False`` if it was cancelled first.

        Like ``set_running_or_notify_cancel``, but a future whose cancellation
        was already notified is skipped instead of raising. ``stopper`` is how
        the backend stops the task once it runs (see :data:`Stopper`).
        """
        lock = self._lock or self._make_lock()
        with lock:  # not acquire(); try: a signal handler may raise between them
            if self._owner is not None:  # see OwnedSteps
                self._seal()
            state = self._state
            if state == PENDING:
                self._state = RUNNING
                if stopper is not None:
                    self._stopper = stopper
                counters = self._counters
                if counters is not None:
                    counters.started()
                return True
            if state == CANCELLED:
                self._state = CANCELLED_AND_NOTIFIED
                for waiter in self._waiter_list or ():
                    waiter.add_cancelled(self)
            return False

    def set_running_or_notify_cancel(self) -> bool:
        """As :meth:`concurrent.futures.Future.set_running_or_notify_cancel`."""
        with self._lock or self._make_lock():
            if self._owner is not None:  # see OwnedSteps
                self._seal()
            ours = self._in_line or self._counters is not None
            if self._state not in (_STARTABLE if ours else (PENDING, CANCELLED)):
                cf._base.LOGGER.critical(  # as the stdlib's says so
                    "Future %s in unexpected state: %s", id(self), self._state
                )
                raise RuntimeError("Future in unexpected state")
        return self._start()

    def set_result(self, result: T) -> None:
        """As :meth:`concurrent.futures.Future.set_result`."""
        if not self._set_result_if_pending(result):
            raise cf.InvalidStateError(f"{self._state}: {self!r}")

    def set_exception(self, exception: BaseException | None) -> None:
        """As :meth:`concurrent.futures.Future.set_exception`."""
        with self._lock or self._make_lock():
            if self._owner is not None:  # see OwnedSteps
                self._seal()
            if self._state in _DONE:
                raise cf.InvalidStateError(f"{self._state}: {self!r}")
            if self._counters is not None:
                self._counters.finished(exception, running=self._state == RUNNING)
            sleepers = self._sleepers  # see _RELEASE
            releasing = None if sleepers is None else map(_RELEASE, sleepers)
            self._exception = exception
            self._state = FINISHED
            if releasing is not None:  # woken at once, in one C call
                self._sleepers = None
                deque(releasing, 0)
            for waiter in self._waiter_list or ():
                waiter.add_exception(self)
            if self._cond is not None:
                self._cond.notify_all()
        self._invoke_callbacks()

    def done(self) -> bool:
        """Return True if the future was cancelled or finished executing."""
        return self._state in _DONE

    # Reading the state needs no lock (one attribute read); the stdlib takes the
    # Condition here, which would make one per future.
    def cancelled(self) -> bool:
        """Return True if the future was cancelled."""
        return self._state in _CANCELLED

    def running(self) -> bool:
        """Return True if the task is running now."""
        return self._state == RUNNING

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """As :meth:`concurrent.futures.Future.exception`.

        A time-out too long for any clock (``inf``) waits without limit, as in
        :meth:`result`.
        """
        state = self._state
        if state == FINISHED:
            return self._exception
        if state in _CANCELLED:
            raise cf.CancelledError
        if timeout is not None and timeout > 0 and timeout > MAX_WAIT:
            timeout = None  # as result(): too long for any clock, no limit
        self._sleep(timeout)
        state = self._state
        if state == FINISHED:
            return self._exception
        if state in _CANCELLED:
            raise cf.CancelledError
        raise TimeoutError

    def cancel(self) -> bool:
        """Cancel the task; return whether the future is now cancelled.

        As in :mod:`concurrent.futures`, a task that has not started is cancelled
        and never runs, and a finished one cannot be cancelled. A running task is
        cancelled only where its backend stops it for real (a coroutine, at its
        next ``await``); elsewhere ``cancel()`` returns ``False`` for it, as the
        stdlib does.
        """
        return self._cancel_pending() or self._stop(abandon=False)

    def _abandon(self) -> bool:
        """Cancel or stop the task because whoever awaited it is gone."""
        return self._cancel_pending() or self._stop(abandon=True)

    def _cancel_pending(self) -> bool:
        """The stdlib's cancel(): only a task that has not started."""
        with self._lock or self._make_lock():
            if self._owner is not None:  # see OwnedSteps
                self._seal()
            state = self._state
            if state in _CANCELLED:
                return True
            if state != PENDING:
                return False
            # A task in line, which _start() will skip: wait() hears now, not when
            # a worker takes it (gh-87893); one made by hand stays CANCELLED.
            ours = self._in_line or self._counters is not None
            self._cancel_now(CANCELLED_AND_NOTIFIED if ours else CANCELLED, False)
        self._invoke_callbacks()
        return True

    def _stop(self, *, abandon: bool) -> bool:
        stopper = self._stopper
        if stopper is None or self._state != RUNNING:
            return self.cancelled()
        if not stopper(abandon):
            return False
        # False if the task finished meanwhile: a finished task stays finished.
        return self._mark_cancelled()

    def _mark_cancelled(self) -> bool:
        """Move a RUNNING future to cancelled (the stdlib has no public way).

        Returns whether it did: False if the future was no longer running.
        """
        with self._lock or self._make_lock():
            if self._owner is not None:  # see OwnedSteps
                self._seal()
            if self._state != RUNNING:
                return self._state in _CANCELLED
            self._cancel_now(CANCELLED_AND_NOTIFIED, True)
        self._invoke_callbacks()
        return True

    def _cancel_now(self, state: str, running: bool) -> None:
        """Move to ``state``, a cancelled one, and wake whoever waits (lock held)."""
        sleepers = self._sleepers  # see _RELEASE
        releasing = None if sleepers is None else map(_RELEASE, sleepers)
        self._state = state
        if releasing is not None:  # woken at once, in one C call
            self._sleepers = None
            deque(releasing, 0)
        if self._counters is not None:
            self._counters.cancelled(running=running)
        if state == CANCELLED_AND_NOTIFIED:
            for waiter in self._waiter_list or ():
                waiter.add_cancelled(self)
        if self._cond is not None:
            self._cond.notify_all()

    def _outcome(self) -> T:
        """The result, or raise what the task raised (the future is done)."""
        if self._state != FINISHED:
            raise cf.CancelledError
        exception = self._exception
        if exception is not None:
            try:
                raise exception
            finally:
                # No cycle: the traceback's frames would hold this Future.
                exception = self = None  # type: ignore[assignment]
        return self._result  # type: ignore[return-value]  # FINISHED: set

    def result(self, timeout: float | None = None) -> T:
        """Return the task's result, waiting up to ``timeout`` seconds.

        Blocks the calling thread; in async code use ``await fut``. A time-out
        too long for any clock (``inf``) waits without limit.

        Raises:
            concurrent.futures.CancelledError: the task was cancelled.
            TimeoutError: the task did not finish within ``timeout``.
            Exception: whatever the task raised, unchanged.
        """
        if self._state not in _DONE:
            if timeout is not None and timeout > 0 and timeout > MAX_WAIT:
                timeout = None
            try:
                self._sleep(timeout)
            except KeyboardInterrupt:
                # A real Ctrl-C while waiting (a task's own KeyboardInterrupt is
                # stored and raised below, and stops nothing else).
                if self._on_interrupt is not None:
                    self._on_interrupt()
                raise
            if self._state not in _DONE:
                raise TimeoutError
        try:
            return self._outcome()
        finally:
            self = None  # type: ignore[assignment]  # no cycle: see _outcome

    def _sleep(self, timeout: float | None) -> None:
        """Block until the future is done, or ``timeout`` seconds (``None``: no
        limit; not above :data:`MAX_WAIT`) have passed; raise ``RuntimeError``
        on the thread that alone can end it (a coroutine executor's loop).

        What ``Condition.wait()`` does, without making a Condition: a lock of
        the caller's own, held, is put in ``_sleepers``, and the thread that
        ends the future releases it. A time-out of 0 or less (or NaN) only
        checks, as ``Condition.wait`` does.
        """
        if timeout is None:
            self._refuse_endless_wait()
        lock = self._lock or self._make_lock()
        if lock._is_owned():  # type: ignore[attr-defined]  # C RLock: it has one
            # Held by this thread already (a signal handler that waits, say):
            # only a Condition gives all of it up while it waits.
            cond = self._condition
            with cond:
                if self._state not in _DONE:
                    cond.wait(timeout)
            return
        sleeper = _thread.allocate_lock()
        sleeper.acquire()
        with lock:
            if self._owner is not None:  # see OwnedSteps
                self._seal()
            if self._state in _DONE:
                return
            sleepers = self._sleepers
            if sleepers is None:
                sleepers = self._sleepers = []
            sleepers.append(sleeper)
        woken = False
        try:
            if timeout is None:
                woken = sleeper.acquire()
            elif timeout > 0:
                woken = sleeper.acquire(True, timeout)
            else:
                woken = sleeper.acquire(False)
        finally:
            if not woken:  # timed out or interrupted: leave no sleeper behind
                with lock:
                    sleepers = self._sleepers
                    if sleepers is not None and sleeper in sleepers:
                        sleepers.remove(sleeper)

    def __await__(self) -> Generator[Any, None, T]:
        return self._result_async().__await__()

    async def _result_async(self) -> T:
        try:
            await wait_done(self)
        except BaseException:
            # The awaiting coroutine was cancelled (or interrupted): the task's
            # result will never be read, so stop the task where possible.
            if not self.done():
                self._abandon()
            raise
        try:
            return self._outcome()
        finally:
            self = None  # type: ignore[assignment]  # no cycle: see _outcome

    def _set_result_if_pending(self, result: T) -> bool:
        """Set the result unless the future is done already; return whether set.

        The path every successful task takes, in one frame (callbacks included).
        """
        lock = self._lock or self._make_lock()
        with lock:  # not acquire(); try: a signal handler may raise between them
            if self._owner is not None:  # see OwnedSteps
                self._seal()
            state = self._state
            if state in _DONE:
                return False
            counters = self._counters
            if counters is not None:
                if state == RUNNING and type(result) is not ChunkResult:
                    counters.done()
                else:  # queued, or a map's batch: see TaskCounters.returned
                    counters.returned(result, running=state == RUNNING)
            sleepers = self._sleepers  # see _RELEASE
            releasing = None if sleepers is None else map(_RELEASE, sleepers)
            self._result = result
            self._state = FINISHED
            if releasing is not None:  # woken at once, in one C call
                self._sleepers = None
                deque(releasing, 0)
            waiters = self._waiter_list
            if waiters:
                for waiter in waiters:
                    waiter.add_result(self)
            if self._cond is not None:
                self._cond.notify_all()
        callbacks = self._done_callbacks  # _invoke_callbacks(), inlined
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                cf._base.LOGGER.exception("exception calling callback for %r", self)
        callbacks.clear()
        return True

    def _invoke_callbacks(self) -> None:
        # As the stdlib's, then the callbacks are dropped, as asyncio's futures
        # drop theirs: a done future never calls them again, and one kept would
        # make a cycle (a gather's callback refers to every child) that only
        # the garbage collector could free.
        callbacks = self._done_callbacks
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                cf._base.LOGGER.exception("exception calling callback for %r", self)
        callbacks.clear()

    def _set_exception_if_pending(self, exception: BaseException) -> None:
        """Set the exception unless the future was cancelled or failed meanwhile."""
        try:
            self.set_exception(exception)
        except cf.InvalidStateError:
            pass

    def __repr__(self) -> str:
        with self._lock or self._make_lock():
            if self._owner is not None:  # see OwnedSteps
                self._seal()
            state = self._state
            if state == FINISHED:
                if self._exception is not None:
                    detail = f" raised {type(self._exception).__name__}"
                else:
                    detail = f" returned {type(self._result).__name__}"
            else:
                detail = ""
        name = _STATE_NAMES.get(state, state.lower())
        return f"<{type(self).__name__} at {id(self):#x} state={name}{detail}>"
