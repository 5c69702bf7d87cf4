"""The coroutine path: ``async def`` calls go to the coroutine backend, timed.

submit(async fn) --seen before, untimed call--> coroutine pool (no lock, no wrapper)
        | first call, a suspect, or 1 in TIME_EVERY -> steps timed (loopguard.py)
        | it blocked the loop ------------------------> a worker thread's own loop

A plain function whose calls return a coroutine (routing.py) goes to the same
pool as it is: the backend runs the call on a worker thread, and the coroutine
it returns on the loop.

A step that blocks the loop for over 100 ms (confirmed by a detailed timer)
warns once with :class:`unirun.LoopBlockedWarning` and moves the function's
later calls off the shared loop: the executor's own. On a caller's loop (inside
``async with``) they stay, since they may use what is bound to that loop.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import warnings
from types import MethodType
from typing import TYPE_CHECKING, Any

from .._checks import describe
from .._errors import LoopBlockedWarning
from .cache import cached, keep_known, lookup, owner_ref, target_of
from .classify import Verdict
from .loopguard import LOOP_BLOCK_S, StepReport, StepTimer

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._backends.coroutine import CoroutineExecutor
    from .._future import Future
    from .._options import TaskOptions
    from .pools import Pools

__all__ = ["TIME_EVERY", "CoroutinePath"]

#: After the first call of an ``async def``, one call in this many has its steps
#: timed (the others run untouched, at the coroutine backend's own cost).
TIME_EVERY = 16


class _Entry:
    """What is known about one ``async def``.

    The latest timed call's report is kept, and its :class:`Verdict` made only
    when asked for (``explain``): a timed call costs less that way.
    """

    __slots__ = (
        "blocks_loop",
        "calls",
        "owner",
        "report",
        "samples",
        "suspect",
        "timed",
        "verdict",
    )

    def __init__(self, target: object) -> None:
        self.owner = owner_ref(target)  # see cache.py
        self.report: StepReport | None = None  # the latest timed call's
        self.verdict: Verdict | None = None  # made from it, when asked for
        self.blocks_loop = False
        self.suspect = False  # a long step not yet explained
        self.timed = False  # a call was timed in detail
        self.calls = 0
        self.samples = 0

    def judged(self, moved: bool) -> Verdict | None:
        """The verdict from the latest report (call with the path's lock held);
        ``moved``: a call that blocks the loop runs off it."""
        report, verdict = self.report, self.verdict
        if report is None:
            return verdict
        moves = self.blocks_loop and moved
        if verdict is None or (verdict.backend == "thread") != moves:
            verdict = self.verdict = _verdict(report, moves, self.samples)
        return verdict


class CoroutinePath:
    """Routes ``async def`` calls and keeps their verdicts. Thread-safe."""

    def __init__(self, pools: Pools) -> None:
        self._pools = pools
        self._pool: CoroutineExecutor | None = None  # once made, never replaced
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}  # by the target's id: cache.py
        # Functions seen before (see keep_known): the fast path.
        self._known: dict[int, _Entry] = {}

    def explain(self, fn: Callable[..., Any]) -> Verdict | None:
        """The verdict for ``fn``, or ``None`` if it has not run here."""
        with self._lock:
            entry = lookup(self._entries, target_of(fn))
            if entry is None:
                return None
            return entry.judged(moved=not self._on_callers_loop())

    def submit_known(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any] | None:
        """Submit ``fn`` if it is an ``async def`` seen before; else ``None``.

        The common path for coroutines: no lock, no wrapper (the counter may
        race; it only spaces out the timed calls).
        """
        target = fn.__func__ if type(fn) is MethodType else fn  # see keep_known
        known = self._known.get(id(target))
        if known is None or known.owner() is not target:
            return None
        calls = known.calls = known.calls + 1
        pool = self._pool
        if (
            pool is None
            or known.blocks_loop
            or known.suspect
            or calls % TIME_EVERY == 0
        ):
            return self._submit(known, fn, args, kwargs, options, counted=True)
        return pool._submit(fn, args, kwargs, options)

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        """Submit ``fn``, an ``async def`` (or a partial of one)."""
        with self._lock:
            entry = cached(self._entries, target_of(fn), _Entry)
        keep_known(self._known, fn, entry)  # for the fast path
        return self._submit(entry, fn, args, kwargs, options)

    def _submit(
        self,
        entry: _Entry,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        counted: bool = False,
    ) -> Future[Any]:
        if entry.blocks_loop and not self._on_callers_loop():
            # Off the shared loop: a worker thread runs it on its own loop.
            return self._pools.thread()._submit(fn, args, kwargs, options)
        with self._lock:
            # The first call, and every call while a long step is unexplained,
            # is timed in detail (CPU time and context switches per step); one
            # call in TIME_EVERY is timed lightly; the others run untouched.
            detailed = entry.suspect or not entry.timed
            entry.timed = True
            if not counted:
                entry.calls += 1
            timed = detailed or entry.calls % TIME_EVERY == 0
        pool = self._pool = self._pools.coroutine()
        if not timed:
            return pool._submit(fn, args, kwargs, options)
        return pool._submit(
            _guarded, (self, entry, fn, args, kwargs, detailed), {}, options
        )

    def _on_callers_loop(self) -> bool:
        """Whether the coroutines run on a caller's loop (inside ``async with``),
        where the caller's locks, events and sessions work, and only there."""
        pool = self._pool
        return pool is not None and pool._runner.attached

    def done(self, entry: _Entry, fn: Callable[..., Any], report: StepReport) -> None:
        """Take in what a timed call of ``fn`` saw."""
        with self._lock:
            first_block = False
            if report.blocked:
                first_block = not entry.blocks_loop
                entry.blocks_loop = True
            elif entry.blocks_loop:
                return  # its verdict stays the one that moved it off the loop
            else:
                # A long step that a detailed timer did not confirm was GIL
                # starvation: the suspicion is cleared.
                entry.suspect = report.longest > LOOP_BLOCK_S and not report.detailed
            entry.samples += 1
            entry.report = report
            entry.verdict = None  # made again from this report when asked for
        if first_block:
            then = (
                "its later calls stay on the caller's loop, which they may need"
                if self._on_callers_loop()
                else "AutoExecutor runs its later calls off the shared loop"
            )
            message = (
                f"coroutine {describe(fn)} blocked the event loop for "
                f"{report.longest * 1e3:.0f} ms in one step; {then}"
            )
            with contextlib.suppress(Warning):  # a warnings filter set to "error"
                _warn_at(fn, message)


def _warn_at(fn: Callable[..., Any], message: str) -> None:
    """Warn with :class:`LoopBlockedWarning`, shown at ``fn``'s definition (the
    warning is raised on the loop, far from the code that called it)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        warnings.warn(message, LoopBlockedWarning, stacklevel=3)
        return
    warnings.warn_explicit(  # once per function: no registry needed
        message,
        LoopBlockedWarning,
        code.co_filename,
        code.co_firstlineno,
        module=getattr(fn, "__module__", None),
    )


def _verdict(report: StepReport, moved: bool, samples: int) -> Verdict:
    """The verdict a timed call's report gives; ``moved``: it blocked the loop
    and runs off it."""
    longest, wall, busy = report.longest, report.wall, report.busy
    if moved:
        reason = (
            f"it is a coroutine, but one step ran {longest * 1e3:.0f} ms "
            "without awaiting and blocked the event loop, so it runs on a "
            "worker thread's own loop"
        )
        backend: Any = "thread"
    elif report.blocked:
        reason = (
            f"it is a coroutine, and one step ran {longest * 1e3:.0f} ms without "
            "awaiting, blocking the event loop; it stays on the caller's loop "
            "(inside async with), whose objects it may use"
        )
        backend = "coroutine"
    else:
        reason = "it is an async function, so it runs on the event loop"
        backend = "coroutine"
    share = min(1.0, busy / wall) if wall else 0.0
    return Verdict(
        backend=backend,
        reason=reason,
        wall_s=wall,
        cpu_s=busy,
        cpu_ratio=share,
        busy=share,
        releases_gil=None,
        transferable=None,
        samples=samples,
    )


async def _guarded(
    path: CoroutinePath,
    entry: _Entry,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    detailed: bool,
) -> Any:
    """Await ``fn(*args, **kwargs)`` with each of its steps timed, and hand
    ``path`` the report.

    As few objects as can be, for the garbage collector to visit while the call
    runs: with ten thousand calls in flight, each one more costs a few percent.
    """
    timer = StepTimer(fn(*args, **kwargs), None, detailed)
    try:
        return await timer
    finally:
        if timer.report is not None:  # else: closed before it ended
            path.done(entry, fn, timer.report)
