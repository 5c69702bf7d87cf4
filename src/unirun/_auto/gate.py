"""``AutoExecutor(max_workers=n)``: at most n of its calls running at once.

Each inner pool is capped at n too, but calls routed to different pools (a
thread, a process, the loop) would add up. With a limit, every call passes
the gate::

    submit(route) --a slot free, none waiting?--> route it now (this thread)
                 --else--> waits in line: a Future of its own, returned
    a routed call ends --> its slot is free --> the pump routes the next in line

A call holds its slot from the moment it is routed until its Future is done,
so no more than n run, and calls start in the order they were submitted, as
in a ``ThreadPoolExecutor(n)``. The pump is a thread of the gate's own, which
runs only while calls wait in line: a call ends on whichever thread ran it (a
process pool's manager, the event loop), where routing the next could run
into that thread's own locks.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from .._follow import copy_outcome
from .._future import Future
from .._starting import HelperThread, start_thread

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Gate", "Waiting"]

#: How often the pump looks for a free slot with none signalled (seconds).
_LOOK_AGAIN_S = 0.1


class Waiting:
    """A call waiting in line: its Future, and how to route it."""

    __slots__ = ("outer", "route")

    def __init__(self, outer: Future[Any], route: Callable[[], Future[Any]]) -> None:
        self.outer = outer
        self.route = route


class _Slot:
    """One call's slot: given back once, however often it is asked to."""

    __slots__ = ("_gate",)

    def __init__(self, gate: Gate) -> None:
        self._gate: Gate | None = gate

    def __call__(self, _: object = None) -> None:
        gate = self._gate
        if gate is None:
            return
        with gate._lock:
            # The slot is marked given back and counted free together, with no
            # call between: a Ctrl-C (on the main thread, which gives a slot
            # back when its call ended before it looked) comes before or after.
            if self._gate is None:
                return
            self._gate = None
            gate._running -= 1
            if gate._line:
                gate._changed.notify_all()


class Gate:
    """At most ``limit`` calls routed and not done; the rest wait in line.

    Args:
        limit: the most calls running at once (``max_workers``).
        refused: called with the Future of a waiting call whose route raised
            ``error``; whether it ended that Future (cancelled by a shutdown).
    """

    def __init__(
        self, limit: int, refused: Callable[[Future[Any], BaseException], bool]
    ) -> None:
        self.limit = limit
        self._refused = refused
        # `with` takes the bare lock, whose __enter__ is C: a Ctrl-C cannot land
        # between taking it and the block (a Condition's __enter__ is Python,
        # and one landing as it returns would leave the lock held for good).
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._line: deque[Waiting] = deque()
        self._running = 0
        self._pump: HelperThread | None = None
        self._on_idle: Callable[[], None] | None = None
        #: Calls cancelled while they waited in line, and dropped from it.
        self.skipped = 0

    def submit(self, route: Callable[[], Future[Any]]) -> Future[Any]:
        """``route()`` (which routes one call, and returns its Future) now if a
        slot is free and none waits; else queue it, and return a Future that
        will follow the call's."""
        taken, future, slot = False, None, _Slot(self)
        try:
            with self._lock:
                if self._running >= self.limit or self._line:
                    outer: Future[Any] = Future()
                    outer._in_line = True  # wait() hears of its cancel at once
                    waiting = Waiting(outer, route)
                    if self._pump is None:  # first: it waits for this lock
                        self._start_pump()
                    self._line.append(waiting)
                    return outer
                self._running += 1
                taken = True  # no call between: a Ctrl-C comes before or after
            future = route()
            future.add_done_callback(slot)
        except BaseException:
            # Refused, or interrupted (Ctrl-C): the slot comes back once, when
            # the call ends, or now if none was made.
            if taken:
                if future is None:
                    slot()
                else:
                    future.add_done_callback(slot)  # gives back once: see _Slot
            raise
        return future

    def waiting(self) -> list[Future[Any]]:
        """The Futures of the calls waiting in line now (for statistics)."""
        with self._lock:
            return [call.outer for call in self._line]

    def cancel_waiting(self) -> None:
        """Cancel every call waiting in line (``shutdown(cancel_futures=True)``)."""
        with self._lock:
            waiting = list(self._line)
        for call in waiting:
            call.outer.cancel()
        with self._lock:
            self._changed.notify_all()  # the pump drops them, slot or not

    def idle(self) -> bool:
        """Whether no call waits in line."""
        with self._lock:
            return not self._line and self._pump is None

    def wait_idle(self) -> None:
        """Block until no call waits in line."""
        with self._lock:
            while self._line or self._pump is not None:
                self._changed.wait()

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once no call waits: now, or from the pump."""
        with self._lock:
            if self._line or self._pump is not None:
                self._on_idle = callback
                return
        callback()

    # -- the pump ------------------------------------------------------------------

    def _start_pump(self) -> None:
        """Start the pump (lock held); recorded first: see _starting.py."""
        self._pump = HelperThread(target=self._run, name="AutoExecutor-gate")
        try:
            start_thread(self._pump)
        except BaseException:
            if self._pump.ident is None:  # it never runs: the next call tries
                self._pump = None
            raise

    def _run(self) -> None:
        """Route the waiting calls in order as slots free up; end once none waits."""
        try:
            while (call := self._next()) is not None:
                self._pass(call)
        finally:
            with self._lock:
                if self._pump is threading.current_thread():  # it failed
                    self._pump = None
                on_idle = None
                if self._pump is None:
                    on_idle, self._on_idle = self._on_idle, None
                self._changed.notify_all()
            if on_idle is not None:
                on_idle()

    def _next(self) -> Waiting | None:
        """The next call to route, with a slot taken for it; None once none
        waits, the pump then ended (under the same lock: a call queued after
        this starts a new one)."""
        with self._lock:
            while True:
                line = self._line
                while line and line[0].outer.cancelled():
                    line.popleft().outer._start()  # tell concurrent.futures.wait()
                    self.skipped += 1
                if not line:
                    self._pump = None
                    return None
                if self._running < self.limit:
                    self._running += 1
                    return line.popleft()
                # A wake-up that a Ctrl-C cut short on the main thread is
                # made up for here (the count itself is always right).
                self._changed.wait(_LOOK_AGAIN_S)

    def _pass(self, call: Waiting) -> None:
        """Route ``call``, whose slot is taken, behind its Future."""
        slot, handoff = _Slot(self), _Handoff()
        # Running from here, as a stdlib worker marks the item it takes: a
        # cancel() now is answered by the routed call (see _Handoff), never
        # True for a call that goes on to run.
        if not call.outer._start(handoff.stop):
            slot()  # cancelled after it left the line, before this
            with self._lock:
                self.skipped += 1
            return
        try:
            inner = call.route()
        except BaseException as exc:
            slot()
            if self._refused(call.outer, exc):
                with self._lock:
                    self.skipped += 1
            else:
                call.outer._set_exception_if_pending(exc)
            return
        inner.add_done_callback(slot)
        handoff.routed(inner)
        inner.add_done_callback(lambda done: copy_outcome(done, call.outer))


class _Handoff:
    """How a call that left the line is stopped: by its routed call's Future,
    once it has one. Until then, a cancel() returns False (the call is under
    way), and an abandon is passed on when the call is routed."""

    __slots__ = ("_abandoned", "_inner", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inner: Future[Any] | None = None
        self._abandoned = False

    def routed(self, inner: Future[Any]) -> None:
        """The call was routed: ``inner`` is its Future."""
        with self._lock:
            self._inner = inner
            abandoned = self._abandoned
        if abandoned:
            inner._abandon()

    def stop(self, abandon: bool) -> bool:
        """A :data:`~unirun._future.Stopper` for the call's outer Future."""
        with self._lock:
            inner = self._inner
            if inner is None:
                self._abandoned = self._abandoned or abandon
                return False
        return inner._abandon() if abandon else inner.cancel()
