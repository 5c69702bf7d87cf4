"""One thread for the async waits of one kind on one process-shared primitive.

The waits of :func:`~.waiting.take_in_thread` each block a thread of their own;
a :class:`WaitLine` serves those of one process on one primitive (a semaphore's
acquires, an event's waits, a queue's joins) with one thread, oldest first.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Final

import anyio

from . import waiting
from .waiting import _SLICE

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["WaitLine", "line_of"]

#: How long a :class:`WaitLine`'s thread waits for a new caller before it ends.
_IDLE: Final = 1.0

# A turn's states: in line; its take came true (what it took is held for it);
# told; cancelled before it was told (what was held is given back by the line's
# thread); or cancelled once told (its caller gave back what it got).
_IN_LINE, _HELD, _TOLD, _LEFT, _GIVEN = range(5)


class _Turn:
    """One coroutine's place in a :class:`WaitLine`."""

    __slots__ = ("error", "event", "give_back", "loop", "schedule", "state", "take")

    def __init__(
        self, take: Callable[[float], bool], give_back: Callable[[], None] | None
    ) -> None:
        self.take = take
        self.give_back = give_back
        self.event = anyio.Event()
        self.loop, self.schedule = waiting._loop_and_scheduler()
        self.state = _IN_LINE
        self.error: BaseException | None = None  # what its take raised

    def undo(self) -> None:
        """Give back what its take got (from the line's thread: errors kept)."""
        if self.give_back is not None and self.error is None:
            with contextlib.suppress(Exception):  # serve the others
                self.give_back()


class WaitLine:
    """The async waits of one kind on one process-shared primitive, served by
    one thread, oldest first.

    Each wait brings ``take(slice)``, which blocks for at most ``slice`` seconds
    and says whether the caller may go on (a semaphore unit taken, the event
    set), and ``give_back()``, which undoes a take that came true for a caller
    who is gone. While anyone waits, one thread runs the oldest caller's take,
    in slices; once it comes true, the thread runs the next callers' takes
    without waiting, while they come true (more units, the same event), and
    tells them all with one wake-up for each event loop: a busy loop lets the
    thread have the interpreter seldom, and a thousand wake-ups would take
    that many turns. The thread ends a second after the line empties. A thread
    for each caller, as :func:`take_in_thread` uses, would make a thousand
    waiting coroutines a thousand threads.

    A take either takes what its caller goes on with (a semaphore unit) or
    tells of a state that every caller may go on in (an event set, a queue
    joined). A take that only says that something is there to take (an item
    for a queue's getters) does not fit: each getter told would have to try
    before the next is told, and every other getter would wait behind a busy
    or blocked event loop; those waits keep a thread each.

    A caller cancelled after its take came true gives it back, or has it given
    back; one cancelled while its take runs waits for it to end (and be given
    back): a cancelled wait leaves no trace, not even a late one. A take that
    raises raises in its caller. A forked child starts with empty lines.
    """

    __slots__ = (
        *("__weakref__", "_alike", "_arrived", "_leaving", "_mutex", "_running"),
        *("_server", "_waiting"),
    )

    def __init__(self, alike: bool = True) -> None:
        self._alike = alike  # every caller's take is the same (see _take_for_some)
        self._mutex = threading.Lock()
        self._arrived = threading.Condition(self._mutex)  # for an idle thread
        self._waiting: deque[_Turn] = deque()  # oldest first
        self._running: _Turn | None = None  # whose take the thread runs
        self._leaving: list[_Turn] = []  # cancelled: told once they leave no trace
        self._server: threading.Thread | None = None
        _lines.add(self)

    def _forget(self) -> None:
        """Start over, empty (in a forked child: the waiters are the parent's,
        and the mutex may have been held by a thread the child does not have)."""
        self._mutex = threading.Lock()
        self._arrived = threading.Condition(self._mutex)
        self._waiting = deque()
        self._running = None
        self._leaving = []
        self._server = None

    def __len__(self) -> int:
        """How many coroutines wait (a hint, read without the mutex)."""
        return len(self._waiting)

    async def wait(
        self, take: Callable[[float], bool], give_back: Callable[[], None] | None
    ) -> None:
        """Return once ``take`` came true for this caller."""
        turn = _Turn(take, give_back)
        try:
            with self._mutex:
                self._waiting.append(turn)
                server = self._server
                if server is not None and server.is_alive():
                    self._arrived.notify()
                else:  # none, or it died: a new one (a failed start leaves)
                    server = threading.Thread(
                        target=self._serve, name="unirun-wait-line", daemon=True
                    )
                    server.start()
                    self._server = server
            await turn.event.wait()
        except BaseException:
            await self._leave(turn)
            raise
        if turn.error is not None:
            raise turn.error

    async def _leave(self, turn: _Turn) -> None:
        """Leave the line, cancelled, leaving no trace (see the class)."""
        with self._mutex:
            state = turn.state
            if state == _IN_LINE:
                with contextlib.suppress(ValueError):  # a failed start: not in
                    self._waiting.remove(turn)
            if state != _TOLD:
                turn.state = _LEFT  # if held, the line's thread gives it back
            elif turn.error is None:
                turn.state = _GIVEN  # by this caller, below; not by the thread
            wait = state == _HELD or self._running is turn
            if wait:
                turn.event = anyio.Event()  # set when the thread is done with it
                self._leaving.append(turn)
        if state == _TOLD and turn.error is None and turn.give_back is not None:
            turn.give_back()  # told as the cancellation came
        elif wait:
            with anyio.CancelScope(shield=True):
                await turn.event.wait()

    def _serve(self) -> None:
        """Serve the line until it has been empty for a while."""
        while True:
            with self._mutex:
                self._running = None
                for turn in self._leaving:  # what their takes got is given back
                    turn.schedule(turn.event.set)
                self._leaving.clear()
                if not self._waiting:
                    # Idle a while first: a wait after each item would
                    # otherwise start a thread each time.
                    self._arrived.wait(_IDLE)
                    if not self._waiting:
                        self._server = None
                        return
            held = self._take_for_some()
            if held:
                self._tell(held)

    def _take_for_some(self) -> list[_Turn]:
        """Run the oldest caller's take (a slice at most), then the others'
        without waiting; the turns whose take came true, now held. Where the
        takes are alike (one semaphore), the first that does not come true
        ends it; an event's waiters each look for a set since their own start.
        """
        with self._mutex:
            if not self._waiting:
                return []
            head = self._waiting[0]
        held: list[_Turn] = []
        if not self._take_one(head, _SLICE, held) and self._alike:
            return held
        with self._mutex:
            others = list(self._waiting)
        for turn in others:
            if turn is head:
                continue
            if not self._take_one(turn, 0.0, held) and self._alike:
                break
        return held

    def _take_one(self, turn: _Turn, timeout: float, held: list[_Turn]) -> bool:
        """Run ``turn``'s take; if it came true, hold the turn (or give back
        what it took if the caller left meanwhile). Whether it came true."""
        with self._mutex:
            if turn.state != _IN_LINE:
                return True  # gone: not a reason to stop
            self._running = turn
        try:
            came = turn.take(timeout)
        except BaseException as exc:  # for its caller to raise
            came, turn.error = True, exc
        with self._mutex:
            self._running = None
            if came:
                if turn.state == _IN_LINE:
                    self._waiting.remove(turn)  # at or near the front
                    turn.state = _HELD
                    held.append(turn)
                else:  # it left as its take ran (and waits in _leaving)
                    turn.undo()
        return came

    def _tell(self, held: list[_Turn]) -> None:
        """Tell the ``held`` turns, with one wake-up for each event loop."""
        by_loop: dict[int, list[_Turn]] = {}
        with self._mutex:
            for turn in held:
                if turn.state == _LEFT:
                    turn.undo()  # its caller waits in _leaving
                else:
                    turn.state = _TOLD
                    by_loop.setdefault(id(turn.loop), []).append(turn)
        for turns in by_loop.values():
            events = [turn.event for turn in turns]
            if not turns[0].schedule(functools.partial(_set_all, events)):
                # Its event loop has ended: give back what its callers did not.
                with self._mutex:
                    untold = [turn for turn in turns if turn.state == _TOLD]
                    for turn in untold:
                        turn.state = _GIVEN
                for turn in untold:
                    turn.undo()


def _set_all(events: list[anyio.Event]) -> None:
    for event in events:
        event.set()


#: Every line, to empty in a forked child.
_lines: weakref.WeakSet[WaitLine] = weakref.WeakSet()


def _forget_lines() -> None:
    for line in list(_lines):
        line._forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_lines)


def line_of(owner: object, name: str, alike: bool = True) -> WaitLine:
    """``owner``'s :class:`WaitLine` called ``name``, made at its first use."""
    line: WaitLine | None = vars(owner).get(name)
    if line is None:
        line = vars(owner).setdefault(name, WaitLine(alike))  # one, if two race
    return line
