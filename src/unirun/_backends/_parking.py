"""The asyncio loop a :class:`CoroutineExecutor` runs in a thread of its own.

Asyncio wakes a loop from another thread through a socket pair: the caller
writes a byte, the loop's ``epoll`` returns, the loop reads the byte and takes
a turn to find the callback. A coroutine submitted from sync code pays that on
every round trip, and before 3.12 its task's first step takes one turn more.

The executor's own loop most often watches no socket but that one. While so,
its selector blocks on a lock instead (it *parks*), which a thread with work
for the loop releases: one futex wake-up, as a worker of the thread backend
gets. The executor's wake-ups (:meth:`ParkingLoop.call_in_select`) run as the
selector returns, so that the tasks they start take their first step in that
same turn. Once the loop watches anything else (a socket a task opened, a child
process), it waits in ``epoll`` as asyncio does, and is woken the usual way.
Every other way into the loop from another thread goes through
``call_soon_threadsafe``, which the loop extends to wake a parked selector too;
a signal comes in through the socket, so a loop with a signal handler does not
park.
"""

from __future__ import annotations

import asyncio
import selectors
import sys
import threading
import warnings
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ParkingLoop", "new_parking_loop", "parking_loop_wanted"]

#: Tasks start eagerly (3.12): a callback that starts them must not run inside
#: the select, where they would run the caller's code.
_EAGER = sys.version_info >= (3, 12)

# What the loop does, as its selector knows it (read and set under its guard).
_RUNNING = 0  # runs callbacks: it looks for work before it next waits
_PARKED = 1  # blocked on the bell: ring it to wake the loop
_POLLING = 2  # blocked in the system's selector: wake it through its socket


def _nothing() -> None:
    """A callback that only wakes the loop."""


class _ParkingSelector(selectors.DefaultSelector):
    """The system's selector, parked on a lock while only its loop's own
    socket is registered; see the module docstring."""

    def __init__(self, loop: ParkingLoop) -> None:
        super().__init__()
        self._loop: ParkingLoop | None = loop  # None once the loop closed
        # Re-entrant: a signal handler may ring from inside a ring, on its thread.
        self._guard = threading.RLock()
        self._bell = threading.Lock()
        self._bell.acquire()  # released (rung) to wake the parked loop
        self._state = _RUNNING
        self._pending = False  # rung while running: do not block next time
        self._poked = False  # a wake-up byte is on its way to the polling loop
        self._unread = False  # wake-up bytes the loop has not read yet
        self._calls: deque[Callable[[], object]] = deque()
        #: How many files the loop itself watches: it parks with no more.
        self.own = 0
        #: False once the loop has a signal handler: a signal comes in through
        #: its socket, and only a loop that waits in the system's selector sees it.
        self.parks = True

    def ring(self, written: bool = False) -> None:
        """Wake the loop for what was queued for it (any thread); ``written``:
        a wake-up byte was written to its socket already.

        All of it under the guard, with no call between a change of state and
        the wake-up it stands for: an exception from a signal handler (Ctrl-C)
        can land at any call, and must never leave a state that nothing wakes.
        """
        with self._guard:
            self._unread |= written
            state = self._state
            if state == _RUNNING:
                self._pending = True
            elif state == _PARKED:
                self._state = _RUNNING
                self._bell.release()
            elif not (written or self._poked):
                # Polling: a byte written already was on its way, or was read by
                # an earlier wait whose turn ran its handle; else write one.
                loop = self._loop
                if loop is not None:
                    loop.poke()
                self._poked = True

    def call(self, callback: Callable[[], object]) -> None:
        """See :meth:`ParkingLoop.call_in_select`."""
        self._calls.append(callback)
        self.ring()
        if self._loop is None:  # closed: nothing would run it
            self._calls.clear()

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        """Wait as asked, parked or in the system's selector; then run the
        callbacks :meth:`call` queued. The files that are ready."""
        parks = self.parks and len(self.get_map()) <= self.own
        with self._guard:
            if timeout is not None and timeout <= 0:
                state = _RUNNING  # a poll: nothing to wake
            else:
                state = _PARKED if parks else _POLLING
            # The state first, then what came while the loop ran: a ring nested
            # in this block (a signal handler's) sees one or sets the other.
            self._state = state
            if self._pending:
                self._pending = False
                if self._state != state:  # a nested ring woke it: take it back
                    self._bell.acquire()
                state = self._state = _RUNNING
                timeout = 0
            if state != _PARKED:
                self._unread = False  # this poll reads them
        if state == _PARKED:
            ready: list[tuple[Any, int]] = []
            rung = self._bell.acquire(True, -1 if timeout is None else timeout)
            with self._guard:
                if not rung and self._state == _RUNNING:
                    # Rung as the wait ran out: take the ring back.
                    self._bell.acquire()
                self._state = _RUNNING
                unread, self._unread = self._unread, False
            if unread:  # let the loop read them: they would pile up
                ready = super().select(0)
        else:
            try:
                ready = super().select(timeout)
            finally:
                if state == _POLLING:
                    with self._guard:
                        self._state = _RUNNING
                        self._poked = False
        self._run_calls()
        return ready

    def _run_calls(self) -> None:
        calls, loop = self._calls, self._loop
        while calls and loop is not None:
            callback = calls.popleft()
            if _EAGER:
                loop.call_soon(callback)  # later in this turn, as asyncio would
                continue
            try:
                callback()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # as the loop reports a callback's
                loop.call_exception_handler(
                    {"message": f"Exception in callback {callback!r}", "exception": exc}
                )

    def close(self) -> None:
        """Close the system's selector, and let go of the loop."""
        self._loop = None
        self._calls.clear()
        super().close()


class ParkingLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose selector parks on a lock while it has only its own
    socket to watch; see the module docstring."""

    def __init__(self) -> None:
        selector = _ParkingSelector(self)
        super().__init__(selector)
        selector.own = len(selector.get_map())  # its own wake-up socket
        self._parking = selector

    def call_in_select(self, callback: Callable[[], object]) -> None:
        """Have ``callback`` called on the loop's thread as soon as it can be
        (from any thread): before 3.12 inside the loop's select, as it returns,
        so that the tasks it makes take their first step in that same turn;
        from 3.12, where tasks may start eagerly, as a callback of that turn.

        For the executor's own bookkeeping, which must be quick. Before 3.12
        what it calls runs inside the select too (a task factory, which only
        makes the task).
        """
        self._parking.call(callback)

    def add_signal_handler(  # type: ignore[override]  # same signature
        self, sig: int, callback: Callable[..., object], *args: Any
    ) -> None:
        """As asyncio's; from then on the loop waits in the system's selector."""
        super().add_signal_handler(sig, callback, *args)
        self._parking.parks = False

    def call_soon_threadsafe(  # type: ignore[override]  # same signature
        self, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> asyncio.Handle:
        """As asyncio's, and wakes the loop if it is parked."""
        handle = super().call_soon_threadsafe(callback, *args, context=context)
        self._parking.ring(written=True)  # the handle is queued, the byte written
        return handle

    def poke(self) -> None:
        """Wake the loop through its socket (any thread), as asyncio does."""
        try:
            super().call_soon_threadsafe(_nothing)
        except RuntimeError:  # closed: nothing runs on it any more
            pass


def new_parking_loop() -> ParkingLoop:
    """A :class:`ParkingLoop`, made this thread's event loop (as ``asyncio.run``
    does with the loop it makes), for a thread that exits when the loop ends."""
    loop = ParkingLoop()
    with warnings.catch_warnings():  # the policy system is deprecated in 3.14
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop(loop)
    return loop


def parking_loop_wanted() -> bool:
    """Whether a new loop of the executor's own may be a :class:`ParkingLoop`:
    not on Windows (whose default loop is another kind), nor where the
    application installed an event loop policy of its own (uvloop, say)."""
    if sys.platform == "win32":
        return False
    with warnings.catch_warnings():  # the policy system is deprecated in 3.14
        warnings.simplefilter("ignore", DeprecationWarning)
        policy = asyncio.get_event_loop_policy()
        default = asyncio.DefaultEventLoopPolicy
    return type(policy) is default
