"""Time each step of a coroutine; report steps that block the event loop.

A coroutine runs on the loop from one ``await`` that really suspends to the next;
that stretch (a *step*) blocks every other task on the loop. :class:`StepTimer`
wraps a coroutine's ``send``/``throw`` and times each step.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator

__all__ = ["LOOP_BLOCK_S", "StepTimer"]

#: A step longer than this blocks the loop noticeably (asyncio's debug mode warns
#: at 100 ms, ``loop.slow_callback_duration``); we use the same threshold.
LOOP_BLOCK_S = 0.1


class StepTimer:
    """Await ``awaitable`` step by step, timing each; ``on_done(longest, total,
    busy)`` is called at the end with the longest step, the wall time and the sum
    of step times."""

    __slots__ = ("_inner", "_longest", "_on_done", "_start", "_steps")

    def __init__(
        self,
        awaitable: Awaitable[Any],
        on_done: Callable[[float, float, float], None],
    ) -> None:
        self._inner = awaitable.__await__()
        self._on_done = on_done
        self._longest = 0.0
        self._steps = 0.0
        self._start = time.perf_counter()

    def __await__(self) -> Generator[Any, Any, Any]:
        return self  # an iterator with send/throw, as a generator

    def __iter__(self) -> StepTimer:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def _step(self, method: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args)
        except BaseException:
            self._finish(start)
            raise
        finally:
            took = time.perf_counter() - start
            self._steps += took
            self._longest = max(self._longest, took)

    def _finish(self, step_start: float) -> None:
        took = time.perf_counter() - step_start
        longest = max(self._longest, took)
        now = time.perf_counter()
        self._on_done(longest, now - self._start, self._steps + took)

    def send(self, value: Any) -> Any:
        """Run one step of the wrapped coroutine."""
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
