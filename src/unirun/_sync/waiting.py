"""Waiting without blocking an event loop, and the rule for where primitives go.

Two ways to wait from async code:

* :class:`LoopWaiters` — for primitives that live in this process. Whoever
  changes the state (from any thread, or from the loop itself) wakes registered
  waiters through their loop's thread-safe callback; the woken coroutine retries
  its non-blocking attempt. Works on asyncio and trio.
* :func:`take_in_thread` — for primitives shared with other processes, whose
  state changes arrive as OS semaphore posts that no event loop can watch. A
  worker thread blocks in short slices and hands what it took to the
  coroutine; if the coroutine is cancelled meanwhile, the thread gives it back.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from .._future import call_soon_threadsafe_here

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "NOT_YET",
    "LoopWaiters",
    "check_send",
    "refuse_pickle",
    "sending_to",
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

        return schedule_asyncio
    import trio

    token = trio.lowlevel.current_trio_token()

    def schedule_trio(callback: Callable[[], object]) -> bool:
        try:
            token.run_sync_soon(callback)
        except trio.RunFinishedError:
            return False
        return True

    return schedule_trio


class _Waiter:
    __slots__ = ("event", "schedule", "woken")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.schedule = _scheduler()
        self.woken = False


class LoopWaiters:
    """The event-loop waiters of one condition ("not empty", "unlocked"...)."""

    __slots__ = ("_mutex", "queue")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        #: The waiters, oldest first; its truth value says whether anyone waits
        #: (a hint, read without the mutex, for hot paths).
        self.queue: deque[_Waiter] = deque()

    def __bool__(self) -> bool:
        """Whether anyone waits (a hint: read without the mutex)."""
        return bool(self.queue)

    def wake(self, n: int = 1) -> None:
        """Wake up to ``n`` waiters, oldest first; callable from any thread."""
        with self._mutex:
            while n > 0 and self.queue:
                waiter = self.queue.popleft()
                waiter.woken = True
                if waiter.schedule(waiter.event.set):
                    n -= 1

    def wake_all(self) -> None:
        """Wake every waiter."""
        self.wake(len(self.queue))

    async def wait_until(self, attempt: Callable[[], T]) -> T:
        """Return ``attempt()`` once it returns something other than NOT_YET.

        ``attempt`` must not block; it is retried after each wake-up. A waiter
        cancelled after being woken passes the wake-up on, so no state change
        is lost.
        """
        result = attempt()
        while result is NOT_YET:
            waiter = _Waiter()
            used = False
            with self._mutex:
                self.queue.append(waiter)
            try:
                result = attempt()  # the state may have changed before we queued
                if result is NOT_YET:
                    await waiter.event.wait()
                    result = attempt()
                    used = True
            finally:
                with self._mutex:
                    try:
                        self.queue.remove(waiter)
                        pass_on = False
                    except ValueError:  # already woken
                        pass_on = not used
                if pass_on:
                    self.wake()
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


# -- where a primitive may be sent --------------------------------------------------

_sending = threading.local()


@contextmanager
def sending_to(scope: str | None) -> Iterator[list[object]]:
    """Pickle, inside this block, for tasks of the executor with this scope.

    Yields the list of primitives pickled in the block: the sender keeps them
    alive until the receiver has opened them.
    """
    previous = getattr(_sending, "scope", None), getattr(_sending, "sent", None)
    sent: list[object] = []
    _sending.scope, _sending.sent = scope, sent
    try:
        yield sent
    finally:
        _sending.scope, _sending.sent = previous


def check_send(primitive: object, scope: str | None) -> None:
    """Raise :class:`TypeError` unless pickling for the primitive's own executor."""
    kind = type(primitive).__name__.removeprefix("Local").removeprefix("Shared")
    if scope is None:
        raise TypeError(
            f"this unirun.{kind} belongs to an executor whose tasks share its "
            "process, so it cannot be sent to another process; create it with "
            f"ProcessExecutor().{kind}() or AutoExecutor().{kind}() to share it "
            "across processes"
        )
    if getattr(_sending, "scope", None) != scope:
        raise TypeError(
            f"this unirun.{kind} can only be passed to tasks of the executor that "
            "created it (pickling it elsewhere would make a disconnected copy)"
        )
    _sending.sent.append(primitive)


def refuse_pickle(primitive: object) -> NoReturn:
    """``__reduce__`` of an in-process primitive: it cannot leave its process."""
    check_send(primitive, None)
    raise AssertionError("unreachable")  # pragma: no cover
