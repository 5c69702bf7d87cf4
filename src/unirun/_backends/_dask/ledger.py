"""What the Dask backend adds to the scheduler: lines of waiters, cells and logs.

``distributed`` has queues, variables, events and leased locks, but nothing a
condition variable can wait in: a waiter that times out must leave the line
at once and atomically, or a later ``notify`` is lost on it. So the scheduler
gets a small extension, :class:`Ledger`, installed once per scheduler by
:func:`install` (``Client.run_on_scheduler``; the scheduler must be able to
import unirun, as the workers must). It only ever holds bytes and numbers: it
never unpickles what users store, so a scheduler without their modules serves
them. Its handlers run on the scheduler's event loop, one at a time, so each
is atomic:

* a *line* (``line_*``): waiters of a Condition, oldest first; ``notify``
  wakes the oldest ``n``, a waiter that times out leaves it in the same step;
* a *cell* (``cell_*``): one small value (a Barrier's state and count);
* a *log* (``log_*``): records appended only if the writer had seen them all
  (compare-and-append), replayed by every reader (a Dict).

:func:`call` is the client side: one round trip from any process of the
cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import TYPE_CHECKING, Any

from .remote import off_pool
from .tokens import client_here

if TYPE_CHECKING:
    import distributed

__all__ = ["Ledger", "call", "call_blocking", "install", "ready"]

#: Where the extension lives in ``Scheduler.extensions``.
_NAME = "unirun"


class _Line:
    """One condition's waiters, oldest first, and those woken but not yet told."""

    __slots__ = ("waiting", "woken")

    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Event] = {}
        self.woken: set[int] = set()


class Ledger:
    """The scheduler extension: lines, cells and logs, by name."""

    def __init__(self) -> None:
        self.lines: dict[str, _Line] = {}
        self.cells: dict[str, Any] = {}
        #: name -> [generation, records]; a rewrite starts a new generation.
        self.logs: dict[str, list[Any]] = {}
        self._ids = itertools.count(1)

    def handlers(self) -> dict[str, Any]:
        """The scheduler routes this extension answers, by op name."""
        methods = (
            self.line_enter,
            self.line_sleep,
            self.line_leave,
            self.line_notify,
            self.cell_get,
            self.cell_set,
            self.log_read,
            self.log_append,
            self.log_rewrite,
        )
        return {f"unirun_{method.__name__}": method for method in methods}

    # -- lines ----------------------------------------------------------------------

    def line_enter(self, name: str) -> int:
        """Add a waiter at the end of the line; return its id."""
        waiter = next(self._ids)
        self.lines.setdefault(name, _Line()).waiting[waiter] = asyncio.Event()
        return waiter

    async def line_sleep(
        self,
        name: str,
        waiter: int,
        timeout: float | None,  # noqa: ASYNC109  # the route's argument, sent by callers
        leave: bool,
    ) -> bool:
        """Wait until ``waiter`` is notified (True) or ``timeout`` passes.

        On a time-out the waiter leaves the line if ``leave``, else it stays
        (a wait in slices).
        """
        line = self.lines.get(name)
        if line is None:
            return False
        event = line.waiting.get(waiter)
        if event is not None and (timeout is None or timeout > 0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        if waiter in line.woken:
            line.woken.discard(waiter)
            self._tidy(name, line)
            return True
        if leave:
            line.waiting.pop(waiter, None)
            self._tidy(name, line)
        return False

    def line_leave(self, name: str, waiter: int, pass_on: bool) -> bool:
        """Take ``waiter`` out of the line; return whether it had been notified.

        A notified waiter that leaves without waking (cancelled) passes the
        notification on to the next one if ``pass_on``.
        """
        line = self.lines.get(name)
        if line is None:
            return False
        notified = waiter in line.woken
        line.woken.discard(waiter)
        line.waiting.pop(waiter, None)
        if notified and pass_on:
            self._wake(line, 1)
        self._tidy(name, line)
        return notified

    def line_notify(self, name: str, n: int | None) -> int:
        """Wake the oldest ``n`` waiters (None: all); return how many woke."""
        line = self.lines.get(name)
        if line is None:
            return 0
        return self._wake(line, len(line.waiting) if n is None else n)

    @staticmethod
    def _wake(line: _Line, n: int) -> int:
        woken = list(itertools.islice(line.waiting, max(0, n)))
        for waiter in woken:
            line.waiting.pop(waiter).set()
            line.woken.add(waiter)
        return len(woken)

    def _tidy(self, name: str, line: _Line) -> None:
        if not line.waiting and not line.woken:
            self.lines.pop(name, None)

    # -- cells ----------------------------------------------------------------------

    def cell_get(self, name: str, default: Any = None) -> Any:
        """The cell's value, or ``default`` if it was never set."""
        return self.cells.get(name, default)

    def cell_set(self, name: str, value: Any) -> None:
        """Set the cell."""
        self.cells[name] = value

    # -- logs -----------------------------------------------------------------------

    def log_read(self, name: str, generation: int, position: int) -> list[Any]:
        """``[generation, position, records]``: what a reader at ``position`` of
        ``generation`` has not seen (from the start, if a rewrite came since)."""
        current, records = self.logs.get(name, (0, []))
        if current != generation:
            position = 0
        return [current, position, records[position:]]

    def log_append(
        self, name: str, generation: int, position: int, records: list[Any]
    ) -> list[Any]:
        """Append ``records`` if the writer had seen the whole log.

        Returns ``[True]``, or ``[False, generation, position, records]``: what
        the writer missed, as :meth:`log_read` gives it.
        """
        log = self.logs.setdefault(name, [0, []])
        if log[0] != generation or len(log[1]) != position:
            return [False, *self.log_read(name, generation, position)]
        log[1].extend(records)
        return [True]

    def log_rewrite(
        self, name: str, generation: int, position: int, records: list[Any]
    ) -> bool:
        """Replace the log with ``records`` (a new generation) if the writer had
        seen all of it; return whether it did."""
        log = self.logs.setdefault(name, [0, []])
        if log[0] != generation or len(log[1]) != position:
            return False
        self.logs[name] = [generation + 1, list(records)]
        return True


def install(dask_scheduler: Any) -> None:
    """Add the :class:`Ledger` to this scheduler, once (run on the scheduler)."""
    if _NAME not in dask_scheduler.extensions:
        ledger = Ledger()
        dask_scheduler.extensions[_NAME] = ledger
        dask_scheduler.handlers.update(ledger.handlers())


def ready(client: distributed.Client) -> None:
    """Install the ledger on ``client``'s scheduler.

    Raises:
        RuntimeError: the scheduler cannot import unirun.
    """
    try:
        client.run_on_scheduler(install)
    except Exception as exc:
        raise RuntimeError(
            "RLock, Condition, Barrier and Dict on a Dask cluster need unirun "
            f"installed where the scheduler runs; installing it failed: {exc!r}"
        ) from exc


def call(address: str, op: str, **arguments: Any) -> Any:
    """Run the ledger's ``op`` on the scheduler at ``address``: one round trip."""
    client = client_here(address)
    return client.sync(getattr(client.scheduler, f"unirun_{op}"), **arguments)


def call_blocking(address: str, op: str, **arguments: Any) -> Any:
    """:func:`call` for an op that may wait: a task leaves its worker's pool."""
    with off_pool():
        return call(address, op, **arguments)
