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
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from typing import TYPE_CHECKING, Any, Generic

import anyio

from ._types import T

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
    from typing import Self

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "Future",
    "as_completed",
    "call_soon_threadsafe_here",
    "start_running",
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


def start_running(future: cf.Future[Any]) -> bool:
    """Mark ``future`` running; False if it was cancelled (and notify its waiters).

    Unlike ``set_running_or_notify_cancel`` alone, a future whose cancellation was
    already notified is skipped instead of raising.
    """
    try:
        return future.set_running_or_notify_cancel()
    except RuntimeError:
        return False


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
    """

    # Set by backends that can stop a task which is already running: called with
    # no argument, it asks the backend to stop the task (without waiting).
    _stop_running: Callable[[], None] | None = None
    # Whether Future.cancel() may stop a running task (the coroutine backend), or
    # only cancellation of an awaiting coroutine may (the process backend).
    _cancel_stops_running: bool = False
    # Called when KeyboardInterrupt reaches a thread waiting in result().
    _on_interrupt: Callable[[], None] | None = None

    def cancel(self) -> bool:
        """Cancel the task; return whether the future is now cancelled.

        As in :mod:`concurrent.futures`, a task that has not started is cancelled
        and never runs, and a finished one cannot be cancelled. A running task is
        cancelled only on the coroutine backend, which cancels the coroutine for
        real; elsewhere ``cancel()`` returns ``False`` for it, as the stdlib does.
        """
        if super().cancel():
            return True
        if self._cancel_stops_running:
            return self._cancel_running()
        return False

    def _cancel_running(self) -> bool:
        """Move a RUNNING future to cancelled and ask its backend to stop the task."""
        stop = self._stop_running
        if stop is None:
            return False
        with self._condition:
            if self._state != RUNNING:
                return self._state in (CANCELLED, CANCELLED_AND_NOTIFIED)
            self._state = CANCELLED_AND_NOTIFIED
            for waiter in self._waiters:
                waiter.add_cancelled(self)
            self._condition.notify_all()
        stop()
        self._invoke_callbacks()  # type: ignore[attr-defined]  # private in typeshed
        return True

    def _abandon(self) -> None:
        """Stop the task because whoever awaited it is gone (cancelled)."""
        if not super().cancel() and self._state == RUNNING:
            self._cancel_running()

    def result(self, timeout: float | None = None) -> T:
        """Return the task's result, waiting up to ``timeout`` seconds.

        Blocks the calling thread; in async code use ``await fut``.

        Raises:
            concurrent.futures.CancelledError: the task was cancelled.
            TimeoutError: the task did not finish within ``timeout``.
            Exception: whatever the task raised, unchanged.
        """
        try:
            return super().result(timeout)
        except KeyboardInterrupt:
            if self._on_interrupt is not None:
                self._on_interrupt()
            raise

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
        return self.result(timeout=0)

    def _set_result_if_pending(self, result: T) -> None:
        """Set the result unless the future was cancelled or failed meanwhile."""
        with contextlib.suppress(cf.InvalidStateError):
            self.set_result(result)

    def _set_exception_if_pending(self, exception: BaseException) -> None:
        """Set the exception unless the future was cancelled or failed meanwhile."""
        with contextlib.suppress(cf.InvalidStateError):
            self.set_exception(exception)

    def __repr__(self) -> str:
        with self._condition:
            state = self._state
            if state == FINISHED:
                if self._exception is not None:
                    detail = f" raised {type(self._exception).__name__}"
                else:
                    detail = f" returned {type(self._result).__name__}"
            else:
                detail = ""
        return f"<{type(self).__name__} at {id(self):#x} state={state.lower()}{detail}>"


def wait(
    fs: Iterable[cf.Future[T]],
    timeout: float | None = None,
    return_when: str = ALL_COMPLETED,
) -> cf._base.DoneAndNotDoneFutures[T]:
    """Wait for the futures to complete, as :func:`concurrent.futures.wait` does.

    Blocks the calling thread. Returns a named 2-tuple of sets ``(done, not_done)``.
    """
    return cf.wait(fs, timeout=timeout, return_when=return_when)


class _AsCompleted(Generic[T]):
    """Iterator over futures as they complete, for ``for`` and ``async for``."""

    def __init__(self, fs: Iterable[cf.Future[T]], timeout: float | None) -> None:
        self._fs = set(fs)
        self._timeout = timeout
        self._sync: Iterator[cf.Future[T]] | None = None

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> cf.Future[T]:
        if self._sync is None:
            self._sync = cf.as_completed(self._fs, self._timeout)
        return next(self._sync)

    def __aiter__(self) -> AsyncIterator[cf.Future[T]]:
        return self._async_iter()

    async def _async_iter(self) -> AsyncIterator[cf.Future[T]]:
        end_time = None if self._timeout is None else self._timeout + time.monotonic()
        total = len(self._fs)
        done: deque[cf.Future[T]] = deque()
        pending = set(self._fs)
        wakeup = anyio.Event()
        schedule = call_soon_threadsafe_here()

        def on_done(future: cf.Future[T]) -> None:
            def deliver() -> None:
                done.append(future)
                wakeup.set()

            schedule(deliver)

        for future in list(pending):
            future.add_done_callback(on_done)
        while pending:
            if not done:
                remaining = None if end_time is None else end_time - time.monotonic()
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
                    yield future


def as_completed(
    fs: Iterable[cf.Future[T]], timeout: float | None = None
) -> _AsCompleted[T]:
    """Yield the futures as they complete, finished or cancelled.

    Use ``for f in as_completed(fs)`` in sync code and ``async for`` in async code;
    the sync form is exactly :func:`concurrent.futures.as_completed`. Duplicate
    futures are yielded once.

    Raises:
        TimeoutError: ``timeout`` seconds passed, counted from the first step of
            the iteration, before every future completed.
    """
    return _AsCompleted(fs, timeout)


Future.__module__ = "unirun"

# States re-exported for the backends, which drive futures through them.
STATES = (PENDING, RUNNING, CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)
