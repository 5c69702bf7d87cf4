"""Time each step of a coroutine; report steps that block the event loop.

A coroutine runs on the loop from one ``await`` that really suspends to the next;
that stretch (a *step*) blocks every other task on the loop. :class:`StepTimer`
wraps a coroutine's ``send``/``throw`` and times each step with the wall clock.

A long step is not always the coroutine's fault: under GIL contention the loop's
thread waits for the GIL mid-step. A *detailed* timer also reads the thread's CPU
time and voluntary context switches around each step: a step that blocks (a sync
sleep, a blocking socket) sleeps once or twice, a thread starved of the GIL wakes
every switch interval (5 ms) to ask for it. A step blocks the loop when it is long
and either computed most of the time or slept in fewer than one wait per 20 ms.
"""

from __future__ import annotations

import time
from types import CoroutineType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator

__all__ = ["LOOP_BLOCK_S", "StepReport", "StepTimer"]

_perf_counter = time.perf_counter

#: A step longer than this blocks the loop noticeably (asyncio's debug mode warns
#: at 100 ms, ``loop.slow_callback_duration``); we use the same threshold.
LOOP_BLOCK_S = 0.1
#: A GIL-starved thread wakes about every switch interval (5 ms); one blocked in
#: a call sleeps once per wait. Fewer voluntary switches than one per this many
#: seconds means the step slept in a blocking call.
SWITCH_EVERY_S = 0.02

try:
    import resource

    _RUSAGE_THREAD: int | None = resource.RUSAGE_THREAD  # Linux
except (ImportError, AttributeError):  # pragma: no cover  # not Linux
    _RUSAGE_THREAD = None


def _switches() -> int:
    if _RUSAGE_THREAD is None:
        return 0
    return resource.getrusage(_RUSAGE_THREAD).ru_nvcsw


class StepReport:
    """What a :class:`StepTimer` saw, handed to its ``on_done`` callback.

    Attributes:
        longest: wall time of the longest step.
        wall: wall time from the first step to the end.
        busy: sum of the steps' wall times.
        blocked: a step was confirmed to block the loop (detailed timers only).
        detailed: the timer measured CPU time and context switches.
    """

    __slots__ = ("blocked", "busy", "detailed", "longest", "wall")

    def __init__(
        self, longest: float, wall: float, busy: float, blocked: bool, detailed: bool
    ) -> None:
        self.longest = longest
        self.wall = wall
        self.busy = busy
        self.blocked = blocked
        self.detailed = detailed


class StepTimer:
    """Await ``awaitable`` step by step, timing each; at the end, keep the
    :class:`StepReport` in :attr:`report` and call ``on_done`` with it."""

    __slots__ = (
        "_blocked",
        "_detailed",
        "_inner",
        "_longest",
        "_on_done",
        "_start",
        "_steps",
        "report",
    )

    def __init__(
        self,
        awaitable: Awaitable[Any],
        on_done: Callable[[StepReport], None] | None = None,
        detailed: bool = False,
    ) -> None:
        # A coroutine steps as it is (its __await__() would be one more object
        # for the garbage collector to visit, as long as the call runs).
        inner: Any = awaitable
        self._inner = inner if type(inner) is CoroutineType else inner.__await__()
        self._on_done = on_done
        #: What the timer saw, once the awaitable ended (``None`` until then).
        self.report: StepReport | None = None
        self._detailed = detailed
        self._blocked = False
        self._longest = 0.0
        self._steps = 0.0
        self._start = time.perf_counter()

    def __await__(self) -> Generator[Any, Any, Any]:
        return self  # an iterator with send/throw, as a generator

    def __iter__(self) -> StepTimer:
        return self

    def _step(self, method: Callable[..., Any], *args: Any) -> Any:
        detailed = self._detailed
        cpu, switches = (time.thread_time(), _switches()) if detailed else (0.0, 0)
        start = time.perf_counter()
        try:
            result = method(*args)
        except BaseException:
            self._account(start, detailed and self._judge(start, cpu, switches))
            self._finish()
            raise
        self._account(start, detailed and self._judge(start, cpu, switches))
        return result

    def _judge(self, start: float, cpu: float, switches: int) -> bool:
        took = time.perf_counter() - start
        if took <= LOOP_BLOCK_S:
            return False
        computed = time.thread_time() - cpu >= 0.5 * took
        slept = _RUSAGE_THREAD is not None and (
            _switches() - switches < took / SWITCH_EVERY_S
        )
        return computed or slept

    def _account(self, start: float, blocked: bool) -> None:
        took = time.perf_counter() - start
        self._steps += took
        self._longest = max(self._longest, took)
        self._blocked = self._blocked or blocked

    def _finish(self) -> None:
        report = self.report = StepReport(
            self._longest,
            time.perf_counter() - self._start,
            self._steps,
            self._blocked,
            self._detailed,
        )
        if self._on_done is not None:
            self._on_done(report)

    def __next__(self) -> Any:
        """Run one step of the wrapped coroutine (what its task asks for)."""
        if self._detailed:
            return self._step(self._inner.send, None)
        # A light timer's step (most timed calls), in one frame: _step() minus
        # what only a detailed timer reads.
        start = _perf_counter()
        try:
            result = self._inner.send(None)
        except BaseException:
            self._account(start, False)
            self._finish()
            raise
        took = _perf_counter() - start
        self._steps += took
        if took > self._longest:
            self._longest = took
        return result

    def send(self, value: Any) -> Any:
        """Run one step of the wrapped coroutine, sending it ``value``."""
        if value is None:
            return self.__next__()
        return self._step(self._inner.send, value)

    def throw(self, *args: Any) -> Any:
        """Throw into the wrapped coroutine, timing the step it runs."""
        inner: Any = self._inner
        return self._step(inner.throw, *args)

    def close(self) -> None:
        """Close the wrapped coroutine."""
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()
