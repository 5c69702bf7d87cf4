"""``Future[T]``: a ``concurrent.futures.Future`` that async code can also await.

Also ``wait`` and ``as_completed``, which take any ``concurrent.futures.Future``
and of which ``as_completed`` can be consumed with ``for`` or ``async for``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio

from ._checks import MAX_WAIT
from ._progress import make_progress
from ._types import T

#: Any stdlib future; ``as_completed`` yields the very type it was given.
F = TypeVar("F", bound="cf.Future[Any]")

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Generator, Iterable, Iterator
    from typing import Self

    from ._progress import Progress, ProgressOption
    from ._stats import TaskCounters

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "Future",
    "Stopper",
    "as_completed",
    "call_soon_threadsafe_here",
    "chain",
    "copy_outcome",
    "wait",
    "wait_done",
]

FIRST_COMPLETED = cf.FIRST_COMPLETED
FIRST_EXCEPTION = cf.FIRST_EXCEPTION
ALL_COMPLETED = cf.ALL_COMPLETED


def call_soon_threadsafe_here() -> Callable[[Callable[[], object]], None]:
    """Return a function that schedules a callback on the running event loop.

    The returned function may be called from any thread. Works under asyncio and
    trio; raises :class:`RuntimeError` when no event loop runs in this thread.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:

        def schedule_asyncio(callback: Callable[[], object]) -> None:
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

        return schedule_asyncio
    trio = sys.modules.get("trio")
    if trio is not None:
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
        else:

            def schedule_trio(callback: Callable[[], object]) -> None:
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(callback)

            return schedule_trio
    raise RuntimeError("no asyncio or trio event loop is running in this thread")


async def wait_done(future: cf.Future[Any]) -> None:
    """Wait, without blocking the event loop, until ``future`` is done."""
    if future.done():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        await _wait_done_asyncio(future, loop)
        return
    event = anyio.Event()
    schedule = call_soon_threadsafe_here()
    future.add_done_callback(lambda _: schedule(event.set))
    await event.wait()


async def _wait_done_asyncio(
    future: cf.Future[Any], loop: asyncio.AbstractEventLoop
) -> None:
    # The common case, made cheap: no anyio machinery, and no self-pipe write when
    # the future completes on the loop's own thread (the coroutine backend).
    waiter = loop.create_future()
    loop_thread = threading.get_ident()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    def on_done(_: cf.Future[Any]) -> None:
        if threading.get_ident() == loop_thread:
            loop.call_soon(wake)
        else:
            try:
                loop.call_soon_threadsafe(wake)
            except RuntimeError:  # the loop has closed: nobody is waiting any more
                pass

    future.add_done_callback(on_done)
    await waiter


#: How a backend stops one of its running tasks. Called with ``abandon``: true when
#: nobody will read the result (the awaiting coroutine was cancelled), false for a
#: user's ``cancel()``. Returns whether the task will stop; it must only *ask*
#: (schedule the stop), never complete the future itself.
Stopper = Callable[[bool], bool]


_DONE = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)
#: The stdlib's words for the states, in reprs.
_STATE_NAMES = cf._base._STATE_TO_DESCRIPTION_MAP


class Future(cf.Future[T], Generic[T]):
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

    Backends drive it with two private calls: the constructor's ``on_interrupt``
    (what a Ctrl-C in :meth:`result` also does, e.g. stop a process pool) and
    :meth:`_start`, which marks the task running and says how to stop it.
    """

    # The stdlib Future makes a threading.Condition per future, which costs
    # more than the rest of it. Here the state is guarded by a C RLock, and the
    # Condition (wrapping that very lock) is made only when a thread waits on
    # this future, or when concurrent.futures' own helpers ask for it.
    _cond: threading.Condition | None = None
    _stopper: Stopper | None = None
    _on_interrupt: Callable[[], object] | None = None
    _counters: TaskCounters | None = None

    def __init__(
        self,
        on_interrupt: Callable[[], object] | None = None,
        counters: TaskCounters | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._state = PENDING
        self._result: T | None = None
        self._exception: BaseException | None = None
        self._waiters: list[Any] = []
        self._done_callbacks: list[Callable[[Future[T]], object]] = []
        if on_interrupt is not None:
            self._on_interrupt = on_interrupt
        if counters is not None:
            self._counters = counters

    @property
    def _condition(self) -> threading.Condition:
        cond = self._cond
        if cond is None:
            with self._lock:
                cond = self._cond
                if cond is None:
                    cond = self._cond = threading.Condition(self._lock)
        return cond

    @_condition.setter
    def _condition(self, condition: threading.Condition) -> None:
        self._cond = condition

    def _notify(self) -> None:
        """Wake the threads waiting in result() (lock held)."""
        cond = self._cond
        if cond is not None:
            cond.notify_all()

    def _start(self, stopper: Stopper | None = None) -> bool:
        """Mark the task running; ``False`` if it was cancelled first.

        Like ``set_running_or_notify_cancel``, but a future whose cancellation
        was already notified is skipped instead of raising. ``stopper`` is how
        the backend stops the task once it runs (see :data:`Stopper`).
        """
        with self._lock:
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
                for waiter in self._waiters:
                    waiter.add_cancelled(self)
            return False

    def set_running_or_notify_cancel(self) -> bool:
        """As :meth:`concurrent.futures.Future.set_running_or_notify_cancel`."""
        with self._lock:
            if self._state not in (PENDING, CANCELLED):
                raise RuntimeError("Future in unexpected state")
        return self._start()

    def set_result(self, result: T) -> None:
        """As :meth:`concurrent.futures.Future.set_result`."""
        with self._lock:
            if self._state in _DONE:
                raise cf.InvalidStateError(f"{self._state}: {self!r}")
            if self._counters is not None:
                self._counters.finished(None, running=self._state == RUNNING)
            self._result = result
            self._state = FINISHED
            for waiter in self._waiters:
                waiter.add_result(self)
            self._notify()
        self._invoke_callbacks()  # type: ignore[attr-defined]  # private in typeshed

    def set_exception(self, exception: BaseException | None) -> None:
        """As :meth:`concurrent.futures.Future.set_exception`."""
        with self._lock:
            if self._state in _DONE:
                raise cf.InvalidStateError(f"{self._state}: {self!r}")
            if self._counters is not None:
                self._counters.finished(exception, running=self._state == RUNNING)
            self._exception = exception
            self._state = FINISHED
            for waiter in self._waiters:
                waiter.add_exception(self)
            self._notify()
        self._invoke_callbacks()  # type: ignore[attr-defined]  # private in typeshed

    def done(self) -> bool:
        """Return True if the future was cancelled or finished executing."""
        return self._state in _DONE

    def add_done_callback(self, fn: Callable[[Future[T]], object]) -> None:
        """As :meth:`concurrent.futures.Future.add_done_callback`."""
        with self._lock:
            if self._state not in _DONE:
                self._done_callbacks.append(fn)
                return
        try:
            fn(self)
        except Exception:
            cf._base.LOGGER.exception("exception calling callback for %r", self)

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
        with self._lock:
            state = self._state
            if state in (CANCELLED, CANCELLED_AND_NOTIFIED):
                return True
            if state != PENDING:
                return False
            self._state = CANCELLED
            if self._counters is not None:
                self._counters.cancelled(running=False)
            self._notify()
        self._invoke_callbacks()  # type: ignore[attr-defined]  # private in typeshed
        return True

    def _stop(self, *, abandon: bool) -> bool:
        stopper = self._stopper
        if stopper is None or self._state != RUNNING:
            return self.cancelled()
        if not stopper(abandon):
            return False
        self._mark_cancelled()
        return True

    def _mark_cancelled(self) -> None:
        """Move a RUNNING future to cancelled (the stdlib has no public way)."""
        with self._lock:
            if self._state != RUNNING:
                return
            self._state = CANCELLED_AND_NOTIFIED
            if self._counters is not None:
                self._counters.cancelled(running=True)
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._notify()
        self._invoke_callbacks()  # type: ignore[attr-defined]  # private in typeshed

    def _outcome(self) -> T:
        """The result, or raise what the task raised (the future is done)."""
        if self._state != FINISHED:
            raise cf.CancelledError
        exception = self._exception
        if exception is not None:
            try:
                raise exception
            finally:
                exception = None  # no cycle through the traceback
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
            if timeout is not None and timeout > MAX_WAIT:
                timeout = None
            try:
                cond = self._condition
                with cond:
                    if self._state not in _DONE:
                        cond.wait(timeout)
            except KeyboardInterrupt:
                # A real Ctrl-C while waiting (a task's own KeyboardInterrupt is
                # stored and raised below, and stops nothing else).
                if self._on_interrupt is not None:
                    self._on_interrupt()
                raise
            if self._state not in _DONE:
                raise TimeoutError
        return self._outcome()

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
        return self._outcome()

    def _set_result_if_pending(self, result: T) -> None:
        """Set the result unless the future was cancelled or failed meanwhile."""
        with contextlib.suppress(cf.InvalidStateError):
            self.set_result(result)

    def _set_exception_if_pending(self, exception: BaseException) -> None:
        """Set the exception unless the future was cancelled or failed meanwhile."""
        with contextlib.suppress(cf.InvalidStateError):
            self.set_exception(exception)

    def __repr__(self) -> str:
        with self._lock:
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


def copy_outcome(source: cf.Future[Any], target: Future[Any]) -> None:
    """Give ``target`` the outcome of the finished ``source``, unless it has one."""
    if source.cancelled():
        if not target.cancel():
            target._mark_cancelled()
    elif (error := source.exception()) is not None:
        target._set_exception_if_pending(error)
    else:
        target._set_result_if_pending(source.result())


def chain(outer: Future[Any], inner: cf.Future[Any]) -> None:
    """Make ``outer`` (not yet started) follow ``inner``, a task run elsewhere.

    ``outer`` starts running and takes ``inner``'s outcome when it comes;
    cancelling ``outer`` cancels ``inner`` (a running one only where its backend
    can), and abandoning it abandons ``inner``. If ``outer`` was cancelled
    already, ``inner`` is cancelled.
    """

    def stop(abandon: bool) -> bool:
        if abandon and isinstance(inner, Future):
            return inner._abandon()
        return inner.cancel()

    if not outer._start(stop):
        if isinstance(inner, Future):
            inner._abandon()
        else:
            inner.cancel()
        return
    inner.add_done_callback(lambda done: copy_outcome(done, outer))


def wait(
    fs: Iterable[cf.Future[T]],
    timeout: float | None = None,
    return_when: str = ALL_COMPLETED,
) -> cf._base.DoneAndNotDoneFutures[T]:
    """Wait for the futures to complete, as :func:`concurrent.futures.wait` does.

    Blocks the calling thread. Returns a named 2-tuple of sets ``(done, not_done)``.
    """
    return cf.wait(fs, timeout=timeout, return_when=return_when)


class _AsCompleted(Generic[F]):
    """Iterator over futures as they complete, for ``for`` and ``async for``."""

    _progress: Progress | None = None

    def __init__(
        self, fs: Iterable[F], timeout: float | None, progress: Progress | None = None
    ) -> None:
        self._fs = set(fs)
        self._timeout = timeout
        self._sync: Iterator[F] | None = None
        self._progress = progress
        if progress is not None:
            progress.start(len(self._fs))
            for future in self._fs:
                progress.track(future)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> F:
        if self._sync is None:
            # typeshed types the yielded futures as Future[T]: they are the very
            # objects given, of type F. The stdlib's iterator forgets each future
            # it yields: keep no reference here either.
            fs, self._fs = self._fs, set()
            self._sync = cast("Iterator[F]", cf.as_completed(fs, self._timeout))
            del fs
        try:
            future = next(self._sync)
        except BaseException:  # the end, a time-out, a Ctrl-C
            self.close()
            raise
        self._arrived(future)
        return future

    def _arrived(self, future: F) -> None:
        # Yielded maybe before its done callback has counted it.
        if self._progress is not None:
            self._progress.arrived(future)

    def close(self) -> None:
        """Stop the iteration early: close the progress display, if any.

        The futures are left alone, as :func:`concurrent.futures.as_completed`
        leaves them.
        """
        if self._progress is not None:
            self._progress.close()

    def __del__(self) -> None:
        self.close()

    def __aiter__(self) -> AsyncIterator[F]:
        return self._async_iter()

    async def _async_iter(self) -> AsyncIterator[F]:
        end_time = None if self._timeout is None else self._timeout + time.monotonic()
        pending, self._fs = self._fs, set()  # each is forgotten once yielded
        total = len(pending)
        done: deque[F] = deque()
        wakeup = anyio.Event()
        schedule = call_soon_threadsafe_here()

        def on_done(future: F) -> None:
            def deliver() -> None:
                done.append(future)
                wakeup.set()

            schedule(deliver)

        for future in list(pending):
            future.add_done_callback(on_done)  # type: ignore[arg-type]  # called with itself, an F
        try:
            while pending:
                if not done:
                    remaining = (
                        None if end_time is None else end_time - time.monotonic()
                    )
                    with anyio.move_on_after(remaining):
                        await wakeup.wait()
                    if not done:
                        raise TimeoutError(
                            f"{len(pending)} (of {total}) futures unfinished"
                        )
                    wakeup = anyio.Event()
                while done:
                    future = done.popleft()
                    if future in pending:
                        pending.discard(future)
                        self._arrived(future)
                        yield future
        finally:
            self.close()


def as_completed(
    fs: Iterable[F], timeout: float | None = None, *, progress: ProgressOption = None
) -> _AsCompleted[F]:
    """Yield the futures as they complete, finished or cancelled.

    Use ``for f in as_completed(fs)`` in sync code and ``async for`` in async code;
    the sync form is exactly :func:`concurrent.futures.as_completed`. Duplicate
    futures are yielded once.

    Args:
        progress: show how many futures have completed, as ``map(progress=...)``
            does: ``True`` for a bar on stderr, a tqdm-like class, or a
            ``(done, total)`` callable. Shown from this call; closed when the
            iteration ends, fails or is closed.

    Raises:
        TimeoutError: ``timeout`` seconds passed, counted from the first step of
            the iteration, before every future completed.
        TypeError: ``progress`` is not a valid progress argument.
    """
    return _AsCompleted(fs, timeout, make_progress(progress))
