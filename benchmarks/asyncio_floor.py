"""The least a coroutine round trip from sync code can cost on asyncio.

An asyncio loop in a thread of its own that parks on a lock while it is idle
(as the coroutine backend's own loop does), one task per call, and the result
handed back through a bare lock: no Future, no time-out, no cancellation, no
statistics, no way to shut down with calls under way. Nothing an executor
could ship: what is left of the coroutine backend's round trip from sync code
once everything it could drop is dropped. benchmarks/targets.py sets it
against the thread backend as a floor.
"""

from __future__ import annotations

import asyncio
import selectors
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ["FloorLoop"]


class _ParkedSelector(selectors.DefaultSelector):
    """Blocks on a lock, not in the system's selector: it watches no file."""

    def __init__(self) -> None:
        super().__init__()
        self.bell = threading.Lock()
        self.bell.acquire()
        self.calls: deque[Callable[[], object]] = deque()

    def ring(self) -> None:
        try:
            self.bell.release()
        except RuntimeError:  # rung already: the loop has yet to look
            pass

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        if (timeout is None or timeout > 0) and not self.calls:
            self.bell.acquire(True, -1 if timeout is None else timeout)
        while self.calls:  # inside the select, as the backend's loop does
            self.calls.popleft()()
        return []


class _Call:
    __slots__ = ("coroutine", "done", "result")

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.coroutine = coroutine
        self.done = threading.Lock()
        self.done.acquire()
        self.result: Any = None


async def _run(call: _Call) -> None:
    call.result = await call.coroutine
    call.done.release()


class FloorLoop:
    """A loop thread that runs coroutines handed to :meth:`call`, one at a time
    from one caller (a benchmark's)."""

    def __init__(self) -> None:
        self._selector = _ParkedSelector()
        self._loop = asyncio.SelectorEventLoop(self._selector)
        self._thread = threading.Thread(target=self._loop.run_forever)
        self._thread.start()

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coroutine`` as a task of the loop; its result."""
        call = _Call(coroutine)
        self._selector.calls.append(lambda: self._loop.create_task(_run(call)))
        self._selector.ring()
        call.done.acquire()
        return call.result

    def close(self) -> None:
        """Stop the loop and join its thread."""
        self._selector.calls.append(self._loop.stop)
        self._selector.ring()
        self._thread.join()
        self._loop.close()
