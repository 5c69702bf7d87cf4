"""Waiting without blocking an event loop.

Two ways to wait from async code:

* :class:`Waiters` — for primitives that live in this process. Whoever
  changes the state (from any thread, or from the loop itself) wakes registered
  waiters through their loop's thread-safe callback; the woken coroutine retries
  its non-blocking attempt. Works on asyncio and trio. Threads can wait in the
  same line (:class:`ThreadWaiter`), as a condition variable's do.
* :func:`take_in_thread` — for primitives shared with other processes, whose
  state changes arrive as OS semaphore posts that no event loop can watch. A
  worker thread blocks in short slices and hands what it took to the
  coroutine; if the coroutine is cancelled meanwhile, the thread gives it back.
* :class:`~.lines.WaitLine` — the same for the waits of one kind on one such
  primitive, with one thread for all of them, serving the oldest first.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from .._completion import call_soon_threadsafe_here

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "NOT_YET",
    "LoopWaiter",
    "ThreadWaiter",
    "Waiters",
    "take_in_thread",
]

T = TypeVar("T")


class _NotYet:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_YET"


#: What a non-blocking attempt returns when it could not complete.
NOT_YET: Final[Any] = _NotYet()


def _scheduler() -> Callable[[Callable[[], object]], bool]:
    """Like ``call_soon_threadsafe_here`` but says whether the loop took it.

    A waiter whose event loop has ended cannot be woken; its wake-up must go to
    the next waiter instead of being lost.
    """
    return _loop_and_scheduler()[1]


def _loop_and_scheduler() -> tuple[object, Callable[[Callable[[], object]], bool]]:
    """The running event loop (asyncio's, or trio's token), and its scheduler
    (see :func:`_scheduler`)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:

        def schedule_asyncio(callback: Callable[[], object]) -> bool:
            try:
                loop.call_soon_threadsafe(callback)
            except RuntimeError:  # the loop has closed
                return False
            return True

        return loop, schedule_asyncio
    import trio

    token = trio.lowlevel.current_trio_token()

    def schedule_trio(callback: Callable[[], object]) -> bool:
        try:
            token.run_sync_soon(callback)
        except trio.RunFinishedError:
            return False
        return True

    return token, schedule_trio


class LoopWaiter:
    """A coroutine waiting in a :class:`Waiters` line, woken through its loop."""

    __slots__ = ("event", "schedule")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.schedule = _scheduler()

    def wake(self) -> bool:
        """Wake it; False if its event loop has ended (pass the wake-up on)."""
        return self.schedule(self.event.set)


class ThreadWaiter:
    """A thread waiting in a :class:`Waiters` line, blocked on a held lock."""

    __slots__ = ("lock",)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lock.acquire()

    def wake(self) -> bool:
        """Wake it."""
        self.lock.release()
        return True

    def sleep(self, timeout: float | None) -> None:
        """Block until woken, or for ``timeout`` seconds (as ``Condition.wait``)."""
        if timeout is None:
            self.lock.acquire()
        elif timeout > 0:
            self.lock.acquire(True, timeout)
        else:
            self.lock.acquire(False)


class Waiters:
    """The waiters of one condition ("not empty", "unlocked"...), oldest first."""

    __slots__ = ("_mutex", "queue")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        #: The waiters, oldest first; its truth value says whether anyone waits
        #: (a hint, read without the mutex, for hot paths).
        self.queue: deque[LoopWaiter | ThreadWaiter] = deque()

    def __bool__(self) -> bool:
        """Whether anyone waits (a hint: read without the mutex)."""
        return bool(self.queue)

    def wake(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters, oldest first; callable from any thread."""
        with self._mutex:
            while n > 0 and self.queue:
                if self.queue.popleft().wake():
                    n -= 1

    def wake_all(self) -> None:
        """Wake every waiter."""
        self.wake(len(self.queue))

    def add(self, waiter: LoopWaiter | ThreadWaiter) -> None:
        """Put ``waiter`` at the end of the line."""
        with self._mutex:
            self.queue.append(waiter)

    def remove(self, waiter: LoopWaiter | ThreadWaiter) -> bool:
        """Take ``waiter`` out of the line; return whether it had been woken."""
        with self._mutex:
            try:
                self.queue.remove(waiter)
            except ValueError:  # already woken
                return True
            return False

    async def wait_until(self, attempt: Callable[[], T]) -> T:
        """Return ``attempt()`` once it returns something other than NOT_YET.

        ``attempt`` must not block; it is retried after each wake-up. A waiter
        cancelled after being woken passes the wake-up on, so no state change
        is lost.
        """
        result = attempt()
        while result is NOT_YET:
            waiter = LoopWaiter()
            used = False
            self.add(waiter)
            try:
                result = attempt()  # the state may have changed before we queued
                if result is NOT_YET:
                    await waiter.event.wait()
                    result = attempt()
                    used = True
            finally:
                if self.remove(waiter) and not used:
                    self.wake()  # woken, then cancelled: pass it on
        return result


# -- waiting on cross-process state ------------------------------------------------

#: How long a waiting thread blocks before checking whether it is still wanted.
_SLICE: Final = 0.05
_limiter: anyio.lowlevel.RunVar[anyio.CapacityLimiter] = anyio.lowlevel.RunVar(
    "unirun_primitive_waiters"
)


def _waiter_limiter() -> anyio.CapacityLimiter:
    # Waiting threads must not share anyio's default limiter: forty coroutines
    # waiting on a queue would starve the producer that has to fill it.
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(math.inf)
        _limiter.set(limiter)
        return limiter


async def take_in_thread(
    take: Callable[[float], bool], give_back: Callable[[], None] | None = None
) -> None:
    """Return once ``take(slice)`` has returned true in a worker thread.

    ``take`` blocks for at most its argument in seconds; when it returns true
    the caller owns what it took (a semaphore unit, say). If the caller is
    cancelled, whatever ``take`` got is handed to ``give_back``, and the thread
    has stopped, before the cancellation propagates: a cancelled wait leaves no
    trace, not even a late one.
    """
    handoff = threading.Lock()
    state = _WAITING
    finished = anyio.Event()
    schedule = call_soon_threadsafe_here()

    def run() -> None:
        nonlocal state
        with handoff:
            if state is _ABANDONED:  # cancelled before this thread started
                return
            state = _RUNNING
        try:
            while True:
                taken = take(_SLICE)
                with handoff:
                    if state is _ABANDONED:
                        if taken and give_back is not None:
                            give_back()
                        return
                    if taken:
                        state = _DELIVERED
                        return
        finally:
            schedule(finished.set)

    try:
        await anyio.to_thread.run_sync(
            run, abandon_on_cancel=True, limiter=_waiter_limiter()
        )
    except BaseException:
        with handoff:
            if state is _DELIVERED and give_back is not None:
                give_back()
            running = state is _RUNNING
            state = _ABANDONED
        if running:  # let it notice, give back what it takes, and stop
            with anyio.CancelScope(shield=True):
                await finished.wait()
        raise


_WAITING: Final = "waiting"
_RUNNING: Final = "running"
_DELIVERED: Final = "delivered"
_ABANDONED: Final = "abandoned"
