"""The short-call lane: submitted calls too short for a hand-off of their own.

A call whose verdict is "inline" costs less than handing it to a thread. It is
still never run inside ``submit`` (a call that was short once may wait, next
time, for something its caller does after ``submit``). It joins the lane::

    submit(call) --append--> calls --(no drainer? start one on the thread pool)
    drainer (a job of the pool): take a call, run it, repeat until none is left
    check (every STALL_S while a drainer runs): calls wait and none ended for
        STILL_CHECKS checks in a row -> one more drainer (up to the pool's size;
        a thread of its own if the pool refuses; join() drains itself if no
        thread can start, as at interpreter exit on 3.12+)

So a burst of short calls costs one hand-off, not one each, and a call that
blocks holds the calls behind it for STILL_CHECKS checks (about 15 ms): they
then get a thread of their own, as on a thread pool.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures.thread import BrokenThreadPool
from types import CoroutineType, MethodType
from typing import TYPE_CHECKING, Any

from .._call import run_awaitable
from .._future import Future
from .cache import keep_known
from .classify import HANDOFF_MIN
from .revisions import REVISE_INLINE

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._backends.thread import ThreadExecutor
    from .._stats import TaskCounters
    from .verdicts import Entry

__all__ = ["STALL_S", "Lane"]

_LOGGER = logging.getLogger("unirun")

#: How often a busy lane is checked for a call that holds the others (seconds).
STALL_S = 0.005
#: Checks in a row that must find calls waiting and none ended before the lane
#: gets a drainer more: a drainer that waits for the GIL (another thread may
#: hold it for a switch interval, 5 ms) is not taken for a blocked call.
STILL_CHECKS = 3

_Call = tuple[
    Future[Any], "Callable[..., Any]", tuple[Any, ...], dict[str, Any], "Entry"
]


def _revise(entry: Entry, took: float, too_long: float) -> None:
    """Note one call's length: the second in a row past ``too_long`` sends the
    callable back to probing (its entry goes stale)."""
    if took <= too_long:
        if entry.slow:
            entry.slow = False
    elif entry.slow:
        entry.stale = True
    else:
        entry.slow = True


class Lane:
    """Runs short calls back to back on the threads of one pool. Thread-safe.

    Args:
        pool: returns the thread pool (made on first need).
        counters: count the lane's calls (the pool counts only its own tasks).
        thread_s: returns the measured thread hand-off (seconds), which says
            when a call ran far longer than a short call should.
    """

    def __init__(
        self,
        pool: Callable[[], ThreadExecutor],
        counters: TaskCounters | None,
        thread_s: Callable[[], float],
    ) -> None:
        self._pool = pool
        self._made: ThreadExecutor | None = None  # the pool, once made
        self._counters = counters
        self._thread_s = thread_s
        self._calls: collections.deque[_Call] = collections.deque()
        # Re-entrant, so that a shutdown() that a signal handler calls inside
        # a submit holding it can tell (see submitting_here).
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)  # no drainer left
        self._joining = False  # someone waits for _idle, or _on_idle is set
        self._on_idle: Callable[[], None] | None = None
        # The drainers queued or running. A set, not a count: a drainer adds
        # itself again as it starts and removes itself as it ends, so the set
        # stays right even if an interruption (Ctrl-C) cuts a start in two.
        self._drainers: set[_Drainer] = set()
        self._checking = False
        # Calls ended, counted without the lock (a lost count cannot hide that
        # the lane moved): the check reads whether it changed.
        self._ended = 0
        self._seen = 0
        self._still = 0  # checks in a row that found calls waiting and none ended
        self._stranded = False  # a rescue found no thread to run on
        self._closing = False  # see close_known()
        # Functions routed here (see remember()): the front's fast path.
        self.known: dict[int, Entry] = {}

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        entry: Entry,
    ) -> Future[Any]:
        """Queue one call; its Future. Refused as the pool would refuse it."""
        future = self._queue(fn, args, kwargs, entry, known=False)
        assert future is not None  # only a known call is turned away
        return future

    def _queue(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        entry: Entry,
        known: bool,
    ) -> Future[Any] | None:
        counters = self._counters
        future: Future[Any] = Future(None, counters)
        pool = self._made
        if pool is None:
            pool = self._made = self._pool()
        if pool._broken:
            raise BrokenThreadPool(pool._broken)
        call = (future, fn, args, kwargs, entry)
        with self._lock:
            if known and self._closing:
                return None  # the front's own path, which refuses after shutdown
            if not self._drainers:
                self._start_drainer(pool)
            if counters is None:
                self._calls.append(call)
                return future
            try:
                counters.submitted()
                self._calls.append(call)
            except BaseException:
                # A signal handler's error (Ctrl-C), which comes as a call
                # returns: after the count. A call queued runs, and is counted
                # as it ends; one that never was is not counted.
                if not (self._calls and self._calls[-1] is call):
                    counters.unsubmitted()
                raise
        return future

    def submit_known(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Future[Any] | None:
        """Queue ``fn`` if the lane took it before and its verdict still sends it
        here (inline, not stale, no probe running); else ``None``.

        The common path for short calls: no routing, and only the lane's lock.
        The verdict is read without the verdicts' lock; one that changes
        meanwhile routes the calls after it, as it would have a moment later.
        """
        target = fn.__func__ if type(fn) is MethodType else fn  # see keep_known
        entry = self.known.get(id(target))
        if (
            entry is None
            or entry.owner() is not target
            or entry.stale
            or entry.probe is not None
        ):
            return None
        verdict = entry.verdict
        if verdict is None or verdict.backend != "inline":
            return None
        return self._queue(fn, args, kwargs, entry, known=True)

    def submitting_here(self) -> bool:
        """Whether this thread is inside a submit to the lane, holding its lock
        (a signal handler or a done-callback runs there)."""
        owned: bool = self._lock._is_owned()  # type: ignore[attr-defined]  # an RLock's
        return owned

    def close_known(self) -> None:
        """Turn :meth:`submit_known` away from now on (the executor shuts down).

        Under the lane's lock: a known call queued before it is cancelled or
        run by the close that follows, as one from the front's own path.
        """
        with self._lock:
            self._closing = True

    def remember(self, fn: Callable[..., Any], entry: Entry) -> None:
        """Let :meth:`submit_known` take ``fn`` from now on: a plain function, or
        a method by its function (see :func:`~.cache.keep_known`)."""
        keep_known(self.known, fn, entry)

    def cancel_pending(self) -> None:
        """Cancel the calls that have not started (``shutdown(cancel_futures)``)."""
        self._end_pending(None)

    def join(self) -> None:
        """Block until every call in the lane has ended. Before the pool closes:
        a blocked call's rescue needs a drainer from it."""
        with self._lock:
            self._joining = True
            while self._drainers:
                if self._stranded and self._calls:
                    # No thread could start for a rescue (3.12+ starts none at
                    # interpreter exit): this thread, which waits anyway, drains.
                    helper = _Drainer(self)
                    self._drainers.add(helper)
                    self._lock.release()
                    try:
                        self._drain(helper)
                    finally:
                        self._lock.acquire()
                    continue
                self._idle.wait(STALL_S)

    def when_idle(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once every call in the lane has ended: now, or in
        the last drainer's thread."""
        with self._lock:
            if self._drainers:
                self._joining = True
                self._on_idle = callback
                return
        callback()

    # -- drainers (lock held where named) ----------------------------------------

    def _start_drainer(self, pool: ThreadExecutor, rescue: bool = False) -> None:
        """Start one more drainer on the pool (lock held). A rescue the pool
        refuses (it is closing, or the interpreter exits) gets a thread of its
        own: the blocked call may wait for a call behind it."""
        drainer = _Drainer(self)
        try:
            # Inside the try: a Ctrl-C can land as soon as add() returns.
            self._drainers.add(drainer)
            pool._run_job(drainer)
        except BrokenThreadPool:
            self._drainers.discard(drainer)
            raise
        except RuntimeError:  # shut down, or the interpreter exits
            if not rescue:
                self._drainers.discard(drainer)
                raise
            try:
                threading.Thread(
                    target=drainer.run, name="unirun-auto-lane", daemon=False
                ).start()
            except RuntimeError:
                self._stranded = True  # see join()
                raise
        except BaseException:
            self._drainers.discard(drainer)  # if it was queued, it adds itself
            raise

    def _drain(self, drainer: _Drainer) -> None:
        """Run calls until none is left (a drainer, on a pool thread)."""
        calls, lock, perf = self._calls, self._lock, time.perf_counter
        # Two calls in a row of one callable, each far longer than a short call,
        # send it back to probing (watch_inline's bar, without a call per item).
        # Two: a drainer that loses the GIL to a busy thread mid-call (for a
        # switch interval, 5 ms) reads one long call, and then runs on.
        too_long = REVISE_INLINE * max(self._thread_s(), HANDOFF_MIN)
        with lock:
            self._drainers.add(drainer)
            # Armed here, not in submit(): a Ctrl-C in the caller's thread must
            # never land inside the timer's Condition (Python code).
            arm, self._checking = not self._checking, True
        if arm:
            try:
                self._pool()._call_at(time.monotonic() + STALL_S, self._check)
            except RuntimeError:  # no timer thread can start: join() looks instead
                self._stranded = True
        try:
            while True:
                try:
                    future, fn, args, kwargs, entry = calls.popleft()
                except IndexError:
                    with lock:
                        if calls:
                            continue
                        self._drainers.discard(drainer)
                        if self._drainers or not self._joining:
                            return
                    self._idled()
                    return
                if future._start():
                    start = perf()
                    try:
                        result = fn(*args, **kwargs)
                        if type(result) is CoroutineType:
                            result = run_awaitable(result, None)
                    except BaseException as exc:
                        # Revised before the caller hears of it: its next call
                        # then sees the revision.
                        _revise(entry, perf() - start, too_long)
                        future._set_exception_if_pending(exc)
                    else:
                        _revise(entry, perf() - start, too_long)
                        future._set_result_if_pending(result)
                        del result
                    self._ended += 1
                # No cycle through a traceback to this frame, and nothing kept.
                del future, fn, args, kwargs, entry
        except BaseException:
            # A done-callback raised SystemExit, say: the pool's worker logs it
            # and ends, as the stdlib's does; the calls behind go on without it.
            self._lost(drainer, None, replace=True)
            raise

    def _check(self) -> None:
        """Every STALL_S while busy: a lane that has not moved gets a drainer more
        (in the pool's timer thread)."""
        with self._lock:
            moved, self._seen = self._ended != self._seen, self._ended
            if not self._drainers and not self._calls:
                self._checking = False
                return
            self._still = 0 if moved or not self._calls else self._still + 1
            try:
                pool = self._pool()
                if (
                    self._still >= STILL_CHECKS
                    and len(self._drainers) < pool._max_workers
                ):
                    self._still = 0
                    self._start_drainer(pool, rescue=True)
                pool._call_at(time.monotonic() + STALL_S, self._check)
            except Exception:  # no pool to take the check: nothing is stuck
                self._checking = False
                _LOGGER.debug("short-call lane check stopped", exc_info=True)

    def _end_pending(self, exc: BaseException | None) -> None:
        """Cancel (``exc`` None) or fail every call that has not started."""
        while True:
            try:
                future = self._calls.popleft()[0]
            except IndexError:
                return
            if exc is None:
                future.cancel()
            else:
                future._set_exception_if_pending(exc)

    def _lost(
        self, drainer: _Drainer, exc: BaseException | None, replace: bool = False
    ) -> None:
        """A drainer ended without draining: cancelled or failed by the pool
        (which is stopping or broken, and so are the calls that waited for it),
        or its thread died (``replace``: another drainer takes over)."""
        with self._lock:
            self._drainers.discard(drainer)
            ending = not replace
            if replace and self._calls and not self._drainers:
                try:
                    self._start_drainer(self._pool(), rescue=True)
                except Exception as error:  # the pool broke: the calls end with it
                    ending, exc = True, error
            idle = not self._drainers and self._joining
        if ending:
            self._end_pending(exc)
        if idle:
            self._idled()

    def _idled(self) -> None:
        """The last drainer ended while someone waited for it."""
        with self._lock:
            if self._drainers:
                return
            self._idle.notify_all()
            callback, self._on_idle = self._on_idle, None
        if callback is not None:
            callback()


class _Drainer:
    """One drainer as a job of the thread pool; it stands for its own future
    (the pool cancels or fails a job's future when it stops or breaks)."""

    __slots__ = ("lane",)

    def __init__(self, lane: Lane) -> None:
        self.lane = lane

    @property
    def future(self) -> _Drainer:
        """Itself (a property: an attribute would be a reference cycle)."""
        return self

    def run(self) -> None:
        self.lane._drain(self)

    def cancel(self) -> bool:
        self.lane._lost(self, None)
        return True

    def _set_exception_if_pending(self, exception: BaseException) -> None:
        self.lane._lost(self, exception)
