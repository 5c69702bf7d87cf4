"""Starting helper threads where a Ctrl-C may land: nothing lost, nothing hidden.

A signal handler's exception (Ctrl-C's ``KeyboardInterrupt``) lands at any
bytecode of the main thread, so a submit that starts a worker can be interrupted

- before ``Thread.start()``, once the caller recorded the thread: it never runs;
- inside ``start()``, which launches the thread and then waits for it to begin:
  the thread runs on, and CPython may raise ``RuntimeError('release unlocked
  lock')`` in place of the interrupt (python/cpython#78667);
- after ``start()`` returned, before the caller recorded the thread.

Callers record a thread before they start it (so a running one is never lost:
a pool joins it and counts it), start it with :func:`start_thread` (the
interrupt comes out as itself), tell with :func:`began` whether a recorded
thread runs, and join with :func:`join_launched` (a :class:`HelperThread` is
waited for on an event of its own, which an interrupted join leaves alone).
Some interrupts leave CPython's ``Thread`` unable ever to begin (one that lands
inside ``start()`` before the launch, or inside the ``with`` of its start-up
event): such a thread is waited for a few seconds, then given up.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

__all__ = [
    "PATIENCE_S",
    "HelperThread",
    "began",
    "exiting",
    "join_launched",
    "start_thread",
]

_LOGGER = logging.getLogger("unirun")


#: How long a recorded thread may take to begin before it is taken for one that
#: never will: its start failed, or CPython's ``start()`` was interrupted before
#: the launch or left the thread stuck before it begins.
PATIENCE_S = 5.0


class HelperThread(threading.Thread):
    """A thread that says, on events of its own, when its target began and when
    it returned, for :func:`join_launched`: before 3.13 a Ctrl-C that lands in
    ``Thread.join()`` leaves the thread taken for ended while it still runs,
    and every later join returns at once, the interpreter's at exit included."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.running = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        self.running.set()
        try:
            super().run()
        finally:
            self.ended.set()


def began(thread: threading.Thread, patience: float = PATIENCE_S) -> bool:
    """Whether ``thread`` has begun to run (or ran), waiting up to ``patience``
    seconds for one that is listed but has not begun yet."""
    deadline = None  # no clock read for one that has begun: every timed submit
    while thread.ident is None:
        if thread not in threading.enumerate():
            return False
        now = time.monotonic()
        if deadline is None:
            deadline = now + patience
        elif now > deadline:
            return False
        time.sleep(0.001)
    return True


def start_thread(thread: threading.Thread) -> None:
    """``thread.start()``; an exception that lands once the thread runs comes
    out as the one a signal handler raised, not CPython's ``RuntimeError``
    about the lock of the interrupted wait."""
    try:
        thread.start()
        return
    except RuntimeError as error:
        if error.__context__ is None or not began(thread):
            raise
        interrupt = error.__context__  # what landed in start()'s wait
    raise interrupt


def exiting(error: RuntimeError) -> bool:
    """Whether a thread's start failed because the interpreter is exiting
    (from 3.12): no thread will start again, unlike after a lack of resources
    ("can't start new thread"), which a later start may overcome."""
    return "can't create new thread" in str(error)


def join_launched(thread: threading.Thread, patience: float = PATIENCE_S) -> None:
    """Join ``thread`` if it has begun (see :func:`began`). One that never
    finishes beginning (CPython's start-up event left locked by an interrupt)
    cannot be joined: it is logged and left after ``patience`` seconds. Joining
    the current thread raises, as ``Thread.join`` does."""
    if not began(thread, patience):
        return
    deadline = time.monotonic() + patience
    while True:
        if isinstance(thread, HelperThread) and thread.running.is_set():
            if thread is threading.current_thread():
                raise RuntimeError("cannot join current thread")
            thread.ended.wait()  # an interrupt here leaves the thread as it is
        try:
            thread.join()
            return
        except RuntimeError:  # "before it is started": it is about to be
            if thread is threading.current_thread():
                raise
            if time.monotonic() > deadline:
                _LOGGER.warning("%s never finished starting: not joined", thread)
                return
            time.sleep(0.001)
