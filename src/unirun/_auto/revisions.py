"""Revisions: later calls that disagree with their verdict send it back to probing.

An inline call far longer than the verdict said, a thread call far heavier (or
far lighter), a process call back within a few no-op round trips: each marks the
callable's :class:`~.verdicts.Entry` stale, and its next call is a probe.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .classify import HANDOFF_MIN

if TYPE_CHECKING:
    import concurrent.futures as cf
    from collections.abc import Callable

    from .classify import Verdict
    from .verdicts import Entry

__all__ = ["measured", "watch_inline", "watch_process"]

#: An inline call this many times longer than a thread hand-off (at least
#: HANDOFF_MIN) sends the callable back to probing (its cost depends on its
#: arguments).
REVISE_INLINE = 20.0
#: A thread-routed call this many times longer than its verdict's call, and
#: CPU-bound, sends the callable back to probing.
REVISE_GROWTH = 4.0
#: A process-routed call whose round trip is within this many no-op round trips
#: sends the callable back to probing.
REVISE_PROCESS = 3.0


def watch_inline(entry: Entry, took: float, thread_s: float) -> None:
    """An inline call far longer than its verdict said: probe again."""
    if took > REVISE_INLINE * max(thread_s, HANDOFF_MIN):
        entry.stale = True


def watch_process(entry: Entry, future: cf.Future[Any], process_s: float) -> None:
    """A process-routed call back within three no-op round trips was far too
    small to send (a process verdict needs four): probe again. Queueing only
    ever makes the latency longer, so this never fires for a heavy call."""
    limit = REVISE_PROCESS * process_s
    start = time.perf_counter()

    def check(done: cf.Future[Any]) -> None:
        if not done.cancelled() and time.perf_counter() - start < limit:
            entry.stale = True

    future.add_done_callback(check)


def measured(
    entry: Entry, verdict: Verdict, fn: Callable[..., Any], inline_s: float
) -> Callable[..., Any]:
    """Wrap a thread-routed call so that a call far off its verdict revises it.

    Far heavier in CPU time (its wall time also holds waits for a CPU that
    other processes caused, and a call that waits longer is still a waiting
    call), or far lighter in wall time, down to where it would run inline
    (``inline_s``): a probe that something delayed is not kept.
    """
    heavier = max(REVISE_GROWTH * verdict.wall_s, 0.005)
    lighter = min(verdict.wall_s / REVISE_GROWTH, inline_s)

    def call(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            if (
                time.thread_time() - cpu > heavier
                or time.perf_counter() - start < lighter
            ):
                entry.stale = True

    return call
