"""The internal mutex of the process-shared primitives, robust to its holder's death.

A holder that dies inside a critical section (killed, or its task timed out)
must not leave the primitive locked forever, as a semaphore used as a mutex
would. So the mutex is an exclusive ``flock`` on the primitive's file, which the
kernel releases when the holder's process ends, however it ends; threads of one
process queue on a ``threading.Lock`` first, since a file lock does not tell
them apart. Recording the holder's pid next to a semaphore would not do: a
holder killed between taking the semaphore and writing its pid could never be
identified. What a dead holder half-wrote is undone by the journal of
:class:`.monitor.Monitor`.

A waiter first watches a shared "held" word for a few microseconds (a live
holder is done that fast); then a wait with a deadline polls the file lock
with growing pauses, and a wait without one blocks in the kernel.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from typing import Final

__all__ = ["Mutex"]

#: How long a waiter watches the holder before it sleeps (seconds).
_SPIN: Final = 20e-6
#: The first pause of a polling wait, and the longest (seconds).
_FIRST_PAUSE: Final = 50e-6
_LONGEST_PAUSE: Final = 0.005
_EXCLUSIVE_NOW: Final = fcntl.LOCK_EX | fcntl.LOCK_NB


class Mutex:
    """A mutex of every thread of every process that has ``fd``'s file open.

    ``fd`` must be this process's own open file (see
    :meth:`.shm.Segment.reopen`). ``hint[0]`` is a shared word the holder sets:
    a waiter watches it for a few microseconds, without system calls, before
    it sleeps (it is only a hint: a dead holder leaves it set). Not reentrant.
    """

    __slots__ = ("__weakref__", "_fd", "_hint", "_journal", "_local")

    def __init__(self, fd: int, hint: memoryview, journal: memoryview) -> None:
        self._fd = fd
        self._hint = hint
        self._journal = journal  # nonzero: a holder died mid-change (lanes.py)
        self._local = threading.Lock()
        _mutexes.add(self)

    def acquire(self, deadline: float | None = None) -> bool:
        """Take the mutex; give up at ``deadline`` (``time.monotonic()``) if set.

        Returns whether it was taken.
        """
        local = self._local
        if not local.acquire(False):
            return self._acquire_waiting(deadline, False)
        try:
            fcntl.flock(self._fd, _EXCLUSIVE_NOW)
        except BlockingIOError:
            return self._acquire_waiting(deadline, True)
        except BaseException:
            local.release()
            raise
        self._hint[0] = 1
        if self._journal[0]:
            self._replay()
        return True

    def _acquire_waiting(self, deadline: float | None, have_local: bool) -> bool:
        """:meth:`acquire` when it must wait: for this process's threads, the file."""
        local = self._local
        if not have_local:
            if deadline is None:
                local.acquire()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not local.acquire(
                    True, min(remaining, threading.TIMEOUT_MAX)
                ):
                    return False
        try:
            taken = self._lock_file(deadline)
        except BaseException:
            local.release()
            raise
        if not taken:
            local.release()
            return False
        self._hint[0] = 1
        if self._journal[0]:
            self._replay()
        return True

    def _replay(self) -> None:
        """Finish the change a dead holder left in the journal (see lanes.py)."""

    def _lock_file(self, deadline: float | None) -> bool:
        """Lock the file (this thread holding ``_local``); False at ``deadline``."""
        fd, hint = self._fd, self._hint
        spin_until = time.perf_counter() + _SPIN
        while True:  # a live holder is done in microseconds: watch it go
            if not hint[0]:
                try:
                    fcntl.flock(fd, _EXCLUSIVE_NOW)
                except BlockingIOError:
                    pass
                else:
                    return True
            if time.perf_counter() > spin_until:
                break
        if deadline is None:  # descheduled, or dead: the kernel wakes us
            fcntl.flock(fd, fcntl.LOCK_EX)
            return True
        pause = _FIRST_PAUSE
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(pause, remaining))
            pause = min(2 * pause, _LONGEST_PAUSE)
            try:
                fcntl.flock(fd, _EXCLUSIVE_NOW)
            except BlockingIOError:
                continue
            return True

    def release(self) -> None:
        """Release the mutex (held by this thread)."""
        self._hint[0] = 0
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._local.release()

    def reacquire(self) -> None:
        """Take the mutex back even if a signal handler raises meanwhile.

        (It calls :meth:`acquire`, so a subclass's additions apply.)

        For ``finally`` blocks whose caller releases the mutex on the way out:
        raising without it would release the mutex of whoever holds it then.
        The handler's exception is raised once the mutex is held.
        """
        interrupted: BaseException | None = None
        while True:
            try:
                self.acquire()
            except BaseException as exc:  # KeyboardInterrupt, say: finish, then raise
                interrupted = exc
            else:
                break
        if interrupted is not None:
            raise interrupted

    def reset_after_fork(self) -> None:
        """Forget, in a forked child, which of the parent's threads held it."""
        self._local = threading.Lock()


_mutexes: weakref.WeakSet[Mutex] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for mutex in list(_mutexes):
        mutex.reset_after_fork()


os.register_at_fork(after_in_child=_reset_after_fork)
