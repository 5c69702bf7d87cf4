"""Doorbells: how a notifier wakes one particular waiter, in any process.

Each waiter slot of a :class:`.monitor.Monitor` has a doorbell, a named
semaphore called after the primitive and the slot, made by the first process
that needs it (and registered with the resource tracker by that process). A
waiter sleeps on its slot's doorbell; a notifier marks the slot and rings it.
One semaphore per slot, rather than one per primitive, means a notification
wakes exactly the waiter it was meant for: no waiter takes another's wake-up.
The primitive's creator removes every doorbell when it drops the primitive,
so a worker killed while it waited leaves nothing behind.
"""

from __future__ import annotations

import _multiprocessing  # type: ignore[import-not-found]  # CPython's, no stubs
import os
import weakref
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING

from .shm import SEM_MAX, Owned, SemLock, open_sem

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Doorbells"]


class Doorbells:
    """The doorbells of one primitive's waiter slots, as this process has them.

    ``prefix`` names them (``<prefix>.<slot>``); ``made`` reads how many slots
    have had one made, from the primitive's shared words.
    """

    __slots__ = ("__weakref__", "_open", "_prefix")

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._open: dict[int, SemLock] = {}

    def bell(self, slot: int) -> SemLock:
        """Slot ``slot``'s doorbell, opened, or made if no process has yet."""
        bell = self._open.get(slot)
        if bell is None:
            bell = self._open[slot] = _open_or_make(f"{self._prefix}.{slot}")
        return bell

    def drain(self, slot: int) -> None:
        """Take every ring waiting on ``slot``'s doorbell."""
        bell = self.bell(slot)
        while bell.acquire(False):
            pass

    def reset_after_fork(self) -> None:
        """Forget the parent's open semaphores (they stay usable, but reopen)."""
        self._open = {}

    def remove_when_collected(self, owner: object, made: Callable[[], int]) -> None:
        """Remove every doorbell made so far once ``owner`` is collected here."""
        weakref.finalize(owner, _remove, self._prefix, made, os.getpid())


def _open_or_make(name: str) -> SemLock:
    while True:
        try:
            return open_sem((1, SEM_MAX, name))
        except FileNotFoundError:
            pass
        try:
            bell = _multiprocessing.SemLock(1, 0, SEM_MAX, name, False)
        except FileExistsError:  # another process made it first: open that one
            continue
        resource_tracker.register(name, "semaphore")  # removed by the creator
        return bell


def _remove(prefix: str, made: Callable[[], int], pid: int) -> None:
    names = [f"{prefix}.{slot}" for slot in range(made())]
    # A waiter counts its slot's doorbell, makes it, then registers it: killed
    # in between, it leaves one the tracker does not know (or none at all).
    tracked = [(name, "semaphore") for name in names]
    Owned.remove(names, [], tracked, pid, unsure=True)
