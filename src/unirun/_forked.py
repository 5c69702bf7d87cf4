"""Executors in a forked child: each starts afresh, with workers of its own.

A child forked from a process that has executors (``os.fork()``, the ``fork``
start method of ``multiprocessing``, a server's pre-forked workers) has copies
of them but none of their workers: no thread survives a fork, and the parent's
worker processes, event loop and pipes stay the parent's. So in the child every
executor lets go of what it copied of them (closing its copies of the parent's
pipes: the parent's workers watch one to see the parent die) and starts workers
of its own at its next ``submit``, as a new executor would. An executor shut
down in the parent stays shut down. The parent's tasks stay the parent's: their
futures in the child never change, and the child's ``statistics()`` count only
its own.

Each backend says what it lets go of in ``BaseExecutor._after_fork``.
"""

from __future__ import annotations

import logging
import multiprocessing.process
import threading
import weakref
from typing import TYPE_CHECKING

from ._exit import after_fork_in_child
from ._stats import TaskCounters

if TYPE_CHECKING:
    from collections.abc import Collection

    from ._base import BaseExecutor

__all__ = ["forget_children", "track"]

_live: weakref.WeakSet[BaseExecutor] = weakref.WeakSet()


def track(executor: BaseExecutor) -> None:
    """Start ``executor`` afresh in every child forked while it lives."""
    _live.add(executor)


def forget_children(pids: Collection[int | None]) -> None:
    """In a forked child: stop counting the parent's processes ``pids`` (its
    workers) as this process's own children.

    ``multiprocessing`` keeps the processes it started in a set that a child
    forked by ``os.fork()`` inherits (its own ``fork`` start method empties it).
    At that child's exit it would terminate the daemonic ones, the parent's
    workers, and fail joining the others, which skips its own exit handlers.
    """
    children: set[multiprocessing.process.BaseProcess] = getattr(
        multiprocessing.process, "_children", set()
    )
    for process in list(children):
        if process.pid in pids:
            children.discard(process)


def _afresh() -> None:
    # The child's only thread: nothing else runs while the executors change.
    for executor in list(_live):
        # A parent's thread may have held it at the fork.
        executor._shutdown_lock = threading.RLock()  # type: ignore[assignment]  # see _base
        executor._close_asked = None
        executor._counters = TaskCounters()  # the parent's tasks are counted there
        try:
            executor._after_fork()
        except Exception:  # one executor's failure must not leave the others
            logging.getLogger("unirun").exception(
                "%r could not start afresh in a forked child", executor
            )


after_fork_in_child(_afresh)
