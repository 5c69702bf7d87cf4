"""A monitor in shared memory: the core of the process-shared primitives.

One file in ``/dev/shm``, mapped by every process that uses the primitive::

    words 0-16     the main lane's journal (see lanes.py)
    words 17-20    waiter bookkeeping: next ticket, slots in use, doorbells made;
                   whether the main lane is held (a hint for spinning waiters)
    words 21-38    a second lane's journal and hint, if the primitive has one
    words 48-87    the primitive's own words (counters, flags, positions)
    words 88-...   waiter slots: state, ticket, condition, pid
    then           the primitive's data, if any (a queue's ring buffer)

Its main lane (:class:`.lanes.Lane`: a mutex the kernel releases if the holder
dies, and a journal so that a killed holder's change is seen whole or not at
all) guards the waiter slots and most of the primitive's words. A waiter takes
a slot, sleeps on the slot's doorbell (:mod:`.doorbells`), and wakes in slices
to look again: a notifier that died before ringing, or a waiter that died after
being picked, costs a waiter one slice, never a hang.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Final, Self

from .doorbells import Doorbells
from .lanes import JOURNAL_WORDS, Lane

if TYPE_CHECKING:
    from collections.abc import Callable

    from .shm import Segment

__all__ = ["DATA_OFFSET", "SLICE", "USER_WORDS", "Monitor", "alive"]

_TICKET, _HIGH, _BELLS, _HELD = 17, 18, 19, 20
_SECOND_JOURNAL: Final = 21
_SECOND_HELD: Final = _SECOND_JOURNAL + JOURNAL_WORDS
_USER: Final = 48
#: How many words a primitive has for its own use.
USER_WORDS: Final = 40
_SLOTS: Final = _USER + USER_WORDS
_SLOT_WORDS: Final = 4
_STATE, _SLOT_TICKET, _CONDITION, _PID = range(_SLOT_WORDS)
_MOST_WAITERS: Final = 2026
#: Where a primitive's own data starts in its segment (a whole number of pages).
DATA_OFFSET: Final = 8 * (_SLOTS + _SLOT_WORDS * _MOST_WAITERS)

_FREE, _WAITING, _NOTIFIED = 0, 1, 2

#: How long a waiter sleeps before looking again without being rung (seconds).
SLICE: Final = 0.1

# A full memory barrier: a waiter's slot must be visible to notifiers before it
# looks at the state one last time (a locked instruction orders both on x86).
_fence = threading.Lock()


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: it exists
        return True
    return True


# Processes seen alive lately, and when: a notifier that wakes the same waiter
# thousands of times a second asks the kernel once per period.
_seen_alive: dict[int, float] = {}
_SEEN_FOR: Final = 0.05


def _alive_lately(pid: int) -> bool:
    now = time.monotonic()
    if now - _seen_alive.get(pid, -_SEEN_FOR) < _SEEN_FOR:
        return True
    if not alive(pid):
        _seen_alive.pop(pid, None)
        return False
    if len(_seen_alive) > 1024:
        _seen_alive.clear()
    _seen_alive[pid] = now
    return True


class Monitor:
    """Words shared by processes, their robust mutex, commits and condition waits.

    Conditions are small integers chosen by the primitive. Every method except
    :meth:`acquire` expects the mutex held. The creating process (``created``)
    removes the waiter slots' doorbells when it drops the monitor.
    """

    __slots__ = (
        "__weakref__",
        "_bells",
        "_head",
        "_lane",
        "_rings",
        "_slots",
        "segment",
        "words",
    )

    def __init__(self, segment: Segment, *, created: bool) -> None:
        self.segment = segment
        self._head = head = segment.words(0, _USER)
        #: The primitive's own words.
        self.words = segment.words(_USER, USER_WORDS)
        self._slots = segment.words(_SLOTS, _SLOT_WORDS * _MOST_WAITERS)
        self._lane = Lane(segment, segment.fd, 0, _HELD, self.words)
        self._rings: list[int] = []  # slots notified, rung once the mutex is free
        # unirun-<pid>-<random>: the doorbells are <unirun-pid-random[:8]>.<slot>
        self._bells = Doorbells("/" + os.path.basename(segment.path)[:-4])
        if created:
            self._bells.remove_when_collected(self, lambda: int(head[_BELLS]))

    def second_lane(self) -> Lane:
        """Another mutex and journal over the same words (on the overflow file)."""
        fd = self.segment.overflow_fd
        assert fd is not None, "a second lane locks the segment's overflow file"
        return Lane(self.segment, fd, _SECOND_JOURNAL, _SECOND_HELD, self.words)

    # -- the main lane ----------------------------------------------------------------

    def acquire(self, deadline: float | None = None) -> bool:
        """Take the mutex (giving up at ``deadline``); finish a dead holder's commit."""
        return self._lane.acquire(deadline)

    def waiters_hint(self) -> memoryview:
        """A word that is not 0 while anyone waits in a slot (a hint: read it
        unlocked, on hot paths, before notifying)."""
        return self._head[_HIGH : _HIGH + 1]

    def release(self) -> None:
        """Release the mutex, then ring the doorbells of the waiters it notified.

        Ringing after the release means a woken waiter finds the mutex free.
        """
        rings = self._rings
        if not rings:
            self._lane.release()
            return
        self._rings = []
        self._lane.release()
        for slot in rings:
            self._bells.bell(slot).release()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def reacquire(self) -> None:
        """Take the mutex back even if a signal handler raises meanwhile."""
        self._lane.reacquire()

    def commit(self, *pairs: tuple[int, int]) -> None:
        """:meth:`.lanes.Lane.commit` under the main lane (held)."""
        self._lane.commit(*pairs)

    def commit2(self, first: int, value1: int, second: int, value2: int) -> None:
        """:meth:`.lanes.Lane.commit2` under the main lane (held)."""
        self._lane.commit2(first, value1, second, value2)

    # -- waiting --------------------------------------------------------------------

    def wait(
        self,
        condition: int,
        deadline: float | None,
        ready: Callable[[], bool] | None = None,
    ) -> bool:
        """Sleep until notified on ``condition``, for one slice at most.

        Returns whether it was notified: False at ``deadline`` or after a slice,
        so that a caller re-checking its state in a loop is never stranded by a
        notifier that died. ``ready`` is looked at again once this waiter can
        be seen: it returns at once if that is true.
        """
        slot = self.enter(condition)
        if ready is not None and ready():
            return self.leave(slot)
        return self.finish(slot, deadline, until_notified=False)

    def wait_for(
        self, condition: int, ready: Callable[[], bool], deadline: float | None
    ) -> bool:
        """Wait on ``condition`` until ``ready()``; return its last value."""
        while not ready():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            self.wait(condition, deadline, ready)
        return True

    def enter(self, condition: int) -> int:
        """Become a waiter of ``condition``; return its slot.

        From now on a notification may pick it: follow with :meth:`sleep` and
        :meth:`leave` (or :meth:`finish`, which does both).
        """
        head, slots = self._head, self._slots
        high = head[_HIGH]
        slot = next(
            (s for s in range(high) if slots[_SLOT_WORDS * s + _STATE] == _FREE), high
        )
        if slot == _MOST_WAITERS:
            slot = self._reclaim()
        if slot >= head[_BELLS]:
            # Counted before it is made: a waiter killed in between leaves a
            # doorbell that the primitive's creator still removes.
            head[_BELLS] = slot + 1
        self._bells.drain(slot)  # made now if new; rings left by a dead waiter go
        base = _SLOT_WORDS * slot
        slots[base + _PID] = os.getpid()
        slots[base + _CONDITION] = condition
        slots[base + _SLOT_TICKET] = head[_TICKET]
        head[_TICKET] += 1
        if slot == high:
            head[_HIGH] = high + 1
        slots[base + _STATE] = _WAITING  # now notifiers see it
        with _fence:  # before the caller looks at the state again
            pass
        return slot

    def sleep(self, slot: int, deadline: float | None, *, until_notified: bool) -> bool:
        """Sleep on the slot's doorbell until notified or ``deadline``.

        Unless ``until_notified``, returns after one slice too. The mutex is
        released while sleeping and held again on return. Returns whether the
        slot has been notified; the slot stays taken.
        """
        bell = self._bells.bell(slot)
        while True:
            timeout = SLICE
            if deadline is not None:
                timeout = min(SLICE, deadline - time.monotonic())
                if timeout <= 0:
                    break
            self.release()
            try:
                bell.acquire(True, timeout)
            finally:
                self.reacquire()
            if self._slot(slot, _STATE) == _NOTIFIED or not until_notified:
                break
            self._pass_on_from_the_dead(self._slot(slot, _CONDITION))
        return self._slot(slot, _STATE) == _NOTIFIED

    def leave(self, slot: int) -> bool:
        """Give ``slot`` up; return whether it had been notified.

        A notification that came as the waiter gave up still counts.
        """
        notified = self._slot(slot, _STATE) == _NOTIFIED
        self._free(slot)
        return notified

    def leave_passing_on(self, slot: int) -> None:
        """Give ``slot`` up; a notification it got goes to the next waiter."""
        condition = self._slot(slot, _CONDITION)
        if self.leave(slot):
            self.notify(condition)

    def finish(
        self, slot: int, deadline: float | None, *, until_notified: bool
    ) -> bool:
        """:meth:`sleep`, then :meth:`leave`; return whether notified.

        A notification taken by a waiter that is interrupted (Ctrl-C) goes to
        the next waiter instead.
        """
        try:
            self.sleep(slot, deadline, until_notified=until_notified)
        except BaseException:
            self.leave_passing_on(slot)
            raise
        return self.leave(slot)

    def finish_waiting(self, slot: int, deadline: float | None) -> bool:
        """Take the mutex (whatever interrupts), :meth:`finish` until notified,
        release it; return whether notified. For waiters not holding the mutex."""
        try:
            self.reacquire()
        except BaseException:  # interrupted, but the mutex is held: leave
            try:
                self.leave_passing_on(slot)
            finally:
                self.release()
            raise
        try:
            return self.finish(slot, deadline, until_notified=True)
        finally:
            self.release()

    def notify(self, condition: int, n: int = 1, before: int | None = None) -> int:
        """Wake up to ``n`` waiters of ``condition``, oldest first (only those
        that began before ticket ``before``, if given); return how many."""
        head = self._head
        if not head[_HIGH] or not n > 0:  # as threading: n -= 1 while n > 0
            return 0
        slots, me, now = self._slots, os.getpid(), head[_TICKET]
        waiting = sorted(
            (slots[base + _SLOT_TICKET], base)
            for base in range(0, _SLOT_WORDS * head[_HIGH], _SLOT_WORDS)
            if slots[base + _STATE] == _WAITING
            and slots[base + _CONDITION] == condition
        )
        woken = 0
        for ticket, base in waiting:
            if woken >= n or (before is not None and ticket >= before):
                break
            pid = slots[base + _PID]
            if pid != me and not _alive_lately(pid):
                self._free(base // _SLOT_WORDS)  # a waiter that died waiting
                continue
            slots[base + _STATE] = _NOTIFIED
            slots[base + _SLOT_TICKET] = now  # when: see _pass_on_from_the_dead
            self._rings.append(base // _SLOT_WORDS)
            woken += 1
        return woken

    def _pass_on_from_the_dead(self, condition: int) -> None:
        """Give the notifications of ``condition`` that waiters took and died
        with, before they woke, to the waiters that were there when they were
        given (a sleeper that waits until notified looks once a slice: no other
        check would)."""
        slots, me = self._slots, os.getpid()
        for base in range(0, _SLOT_WORDS * self._head[_HIGH], _SLOT_WORDS):
            if (
                slots[base + _STATE] == _NOTIFIED
                and slots[base + _CONDITION] == condition
                and slots[base + _PID] != me
                and not alive(slots[base + _PID])
            ):
                given = int(slots[base + _SLOT_TICKET])  # set by notify
                self._free(base // _SLOT_WORDS)
                self.notify(condition, 1, before=given)

    def notify_all(self, condition: int) -> None:
        """Wake every waiter of ``condition``."""
        self.notify(condition, _MOST_WAITERS)

    def _slot(self, slot: int, field: int) -> int:
        return int(self._slots[_SLOT_WORDS * slot + field])

    def _reclaim(self) -> int:
        """A slot of a process that died waiting, when every slot is taken."""
        for slot in range(_MOST_WAITERS):
            if not alive(self._slot(slot, _PID)):
                self._free(slot)
                return slot
        raise RuntimeError(
            f"more than {_MOST_WAITERS} threads are waiting on one unirun primitive "
            "shared with processes; use fewer waiters"
        )

    def _free(self, slot: int) -> None:
        self._slots[_SLOT_WORDS * slot + _STATE] = _FREE
        head, slots = self._head, self._slots
        high = head[_HIGH]
        while high and slots[_SLOT_WORDS * (high - 1) + _STATE] == _FREE:
            high -= 1
        head[_HIGH] = high
