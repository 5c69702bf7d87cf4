"""One background thread that fires time-outs for tasks of a thread pool."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import TYPE_CHECKING

from ._starting import HelperThread, began, join_launched, start_thread

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DeadlineWatcher"]


class DeadlineWatcher:
    """Calls ``callback()`` at a monotonic deadline unless cancelled before.

    The thread starts with the first deadline and exits once it has been closed
    and no deadline is left, so a pool that is shut down leaves no thread behind.
    Callbacks run in the watcher thread and must be quick.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        # `with` takes the bare lock (a C __enter__): a Ctrl-C landing as a
        # Condition's Python __enter__ returned would leave it held for good.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, deadline: float, callback: Callable[[], None]) -> int:
        """Schedule ``callback`` at ``deadline`` (``time.monotonic()`` clock)."""
        with self._lock:
            handle = next(self._ids)
            heapq.heappush(self._heap, (deadline, handle, callback))
            # A start that never launched (it failed, or a Ctrl-C landed before
            # it) is tried again.
            if self._thread is None or not began(self._thread):
                self._thread = HelperThread(
                    target=self._run, name=self._name, daemon=True
                )
                start_thread(self._thread)
            self._cond.notify()
        return handle

    def cancel(self, handle: int) -> None:
        """Forget a deadline; its callback will not be called."""
        with self._lock:
            self._cancelled.add(handle)
            self._cond.notify()

    def close(self, wait: bool = True) -> None:
        """Let the thread exit once no deadline is left; optionally join it."""
        with self._lock:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            join_launched(thread)

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and self._heap[0][1] in self._cancelled:
                    self._cancelled.discard(heapq.heappop(self._heap)[1])
                if not self._heap:
                    if self._closed:
                        return
                    self._cond.wait()
                    continue
                deadline, _handle, callback = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                self._cond.release()
                try:
                    callback()
                finally:
                    self._cond.acquire()
