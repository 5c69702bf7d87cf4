"""Waiting for futures: ``wait``, ``as_completed`` (``for`` and ``async for``), and
waiting for one future without blocking an event loop.

They take any ``concurrent.futures.Future``; ``as_completed`` yields the very
futures it was given.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import math
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

import anyio

from ._progress import make_progress

#: Any stdlib future; ``as_completed`` yields the very type it was given.
F = TypeVar("F", bound="cf.Future[Any]")
T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator
    from typing import Self

    from ._progress import Progress, ProgressOption

__all__ = [
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "as_completed",
    "call_soon_threadsafe_here",
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

    def on_done(_: cf.Future[Any]) -> None:
        schedule(event.set)

    future.add_done_callback(on_done)
    try:
        await event.wait()
    except BaseException:
        _forget(future, on_done)
        raise


def _forget(future: cf.Future[Any], callback: Callable[..., object]) -> None:
    """Take back the done-callback of a wait that gave up (cancelled), so that
    a future awaited and given up on over and over does not pile them up. A
    future that is done runs its callbacks, or ran them: its list is left be."""
    with future._condition:
        if not future.done():
            with contextlib.suppress(ValueError):
                future._done_callbacks.remove(callback)  # type: ignore[attr-defined]


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
    try:
        await waiter
    except BaseException:
        _forget(future, on_done)
        raise


def wait(
    fs: Iterable[cf.Future[T]],
    timeout: float | None = None,
    return_when: str = ALL_COMPLETED,
) -> cf._base.DoneAndNotDoneFutures[T]:
    """Wait for the futures to complete, as :func:`concurrent.futures.wait` does.

    Blocks the calling thread. Returns a named 2-tuple of sets ``(done, not_done)``.

    Raises:
        RuntimeError: with no ``timeout``, on the thread of the event loop that
            alone can end the futures the wait needs (a coroutine executor's,
            from ``async with``): it would wait for ever, as ``result()`` says.
    """
    fs = set(fs)
    if timeout is None:
        # Before cf.wait, which takes each future's lock (an owned future then
        # no longer knows its owner).
        stuck = [error for error in map(_endless_wait_error, fs) if error]
        if stuck:
            _refuse_endless_wait(fs, len(stuck), return_when, stuck[0])
    return cf.wait(fs, timeout=timeout, return_when=return_when)


def _refuse_endless_wait(
    fs: set[cf.Future[T]], stuck: int, return_when: str, error: RuntimeError
) -> None:
    """Raise ``error`` if a wait for ``fs`` would never end: it needs all of
    them, or (for a first one) ``stuck``, as many as are not done, are futures
    that only this thread's event loop can end; unless the wait is over."""
    done = [f for f in fs if f.done()]
    if return_when == FIRST_COMPLETED:
        over = bool(done)
    else:
        over = len(done) == len(fs) or (
            return_when == FIRST_EXCEPTION
            and any(not f.cancelled() and f.exception() is not None for f in done)
        )
    if not over and (return_when == ALL_COMPLETED or stuck == len(fs) - len(done)):
        raise error


def _endless_wait_error(future: cf.Future[Any]) -> RuntimeError | None:
    """The error a wait without limit for ``future`` gets on this thread: one
    only this thread's event loop can end (see ``Future.result()``); else None."""
    refuse = getattr(future, "_refuse_endless_wait", None)
    if refuse is None or future.done():
        return None
    try:
        refuse()
    except RuntimeError as exc:
        return exc
    return None


class _AsCompleted(Generic[F]):
    """Iterator over futures as they complete, for ``for`` and ``async for``."""

    _progress: Progress | None = None
    #: Without a time-out: the futures left that only this thread's event loop
    #: can end (see :func:`_endless_wait_error`), and how many others are left.
    _stuck: set[F] = set()  # noqa: RUF012  # replaced, never changed, when empty
    _others = 0

    def __init__(
        self, fs: Iterable[F], timeout: float | None, progress: Progress | None = None
    ) -> None:
        # Read at the first step, as the stdlib's generator reads it; a progress
        # display, shown from this call, needs the count now.
        self._fs: Iterable[F] = fs
        self._timeout = timeout
        self._sync: Iterator[F] | None = None
        self._progress = progress
        if progress is not None:
            self._fs = set(fs)
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
            fs, self._fs = self._fs, ()
            if self._timeout is None:
                fs = set(fs)  # as the stdlib's: duplicates come once
                self._stuck = {f for f in fs if _endless_wait_error(f)}
                self._others = len(fs) - len(self._stuck)
            self._sync = cast("Iterator[F]", cf.as_completed(fs, self._timeout))
            del fs
        stuck = self._stuck
        if stuck and not self._others and not any(f.done() for f in stuck):
            # What is left, only this thread's event loop can end: next()
            # would wait for ever (see Future.result()).
            error = _endless_wait_error(next(iter(stuck)))
            if error is not None:
                self.close()
                raise error
        try:
            future = next(self._sync)
        except BaseException:  # the end, a time-out, a Ctrl-C
            self.close()
            raise
        if stuck:
            if future in stuck:
                stuck.discard(future)
            else:
                self._others -= 1
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
        fs, self._fs = self._fs, ()
        pending = set(fs)  # each is forgotten once yielded
        del fs
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
                    if remaining is not None and math.isnan(remaining):
                        remaining = None  # as the sync iteration: no limit
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
