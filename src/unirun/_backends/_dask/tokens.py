"""Tokens on the scheduler: the one building block of the Dask primitives.

A :class:`Tokens` is a ``distributed.Queue`` reachable by name from any
process of the cluster: from the executor's process through its client, from a
task through the worker's client. Taking from it blocks in the scheduler; a
task that has to wait leaves its worker's thread pool meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import pickle
import time
import weakref
from typing import TYPE_CHECKING, Any, Final

import cloudpickle
import distributed

from ..._errors import TransferError
from ..._sync.waiting import NOT_YET, take_in_thread
from .remote import off_pool, scheduler_address

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable

__all__ = [
    "TOKEN",
    "Tokens",
    "client_here",
    "dumps_by_value",
    "executor_clients",
    "take",
    "take_async",
]


#: The token a lock or semaphore unit is.
TOKEN: Final = 1
#: Token puts sent at once when a semaphore or bounded queue is filled.
_FILL_BATCH: Final = 64
#: How often an async take runs its ``check``, at most (seconds).
_CHECK_EVERY: Final = 0.25
#: The longest one wait on the scheduler lasts (seconds): see Tokens.take.
_TAKE_SLICE: Final = 2.0


#: The clients of this process's DaskExecutors: a primitive unpickled here (a
#: queue item, say) reaches its scheduler through them.
executor_clients: weakref.WeakSet[distributed.Client] = weakref.WeakSet()


def client_here(address: str) -> distributed.Client:
    """A client of the scheduler at ``address``, in this process.

    In a task, the worker's own client; elsewhere the client of an executor of
    this process, or the default client, if it talks to that scheduler.
    """
    try:
        distributed.get_worker()
    except ValueError:
        candidates = list(executor_clients)
        try:
            candidates.append(distributed.Client.current())
        except ValueError:
            pass
        for client in candidates:
            if client.status == "running" and scheduler_address(client) == address:
                return client
        raise RuntimeError(
            "this unirun primitive lives on a Dask cluster: use it in the process "
            "of the DaskExecutor that made it, or in that executor's tasks"
        ) from None
    return distributed.get_client()


#: The ``distributed.Queue`` objects opened in this process, by name.
_open_queues: weakref.WeakValueDictionary[str, distributed.Queue] = (
    weakref.WeakValueDictionary()
)


class Tokens:
    """One ``distributed.Queue`` on the scheduler, reachable from any process."""

    __slots__ = ("_queue", "address", "maxsize", "name")

    def __init__(
        self,
        name: str,
        address: str,
        maxsize: int = 0,
        client: distributed.Client | None = None,
        fill: int = 0,
    ) -> None:
        self.name = name
        self.address = address
        self.maxsize = maxsize
        self._queue: distributed.Queue | None = None
        if client is not None:  # the creator: make it now, and fill it
            self._queue = distributed.Queue(name, client=client, maxsize=maxsize)
            _open_queues[name] = self._queue
            if fill:
                client.sync(self._fill, client, fill)

    async def _fill(self, client: distributed.Client, count: int) -> None:
        scheduler: Any = client.scheduler
        for start in range(0, count, _FILL_BATCH):
            await asyncio.gather(
                *(
                    scheduler.queue_put(name=self.name, data=TOKEN)
                    for _ in range(min(_FILL_BATCH, count - start))
                )
            )

    def __reduce__(self) -> tuple[Any, ...]:
        return (Tokens, (self.name, self.address, self.maxsize))

    @property
    def queue(self) -> distributed.Queue:
        found = self._queue
        if found is None:
            found = _open_queues.get(self.name)
            if found is None:
                client = client_here(self.address)
                found = distributed.Queue(self.name, client=client)
                _open_queues[self.name] = found
            self._queue = found
        return found

    def take(self, timeout: float | None) -> Any:
        """Take the oldest item, waiting up to ``timeout`` (``None``: no limit),
        in waits of at most ``_TAKE_SLICE`` seconds on the scheduler: one whose
        process died meanwhile ends within that, instead of taking for good the
        next item put (a lock's release).

        Raises:
            TimeoutError: nothing came in time.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = _TAKE_SLICE
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            try:
                return self._take_once(wait)
            except TimeoutError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def take_now(self) -> Any:
        """Take the oldest item if there is one, else return NOT_YET."""
        try:
            return self._take_once(0)
        except TimeoutError:
            return NOT_YET

    def _take_once(self, wait: float) -> Any:
        """One wait of ``wait`` seconds on the scheduler, run on the client's
        loop. One that an exception here interrupts (Ctrl-C) runs on there, and
        gives back what it then takes: nothing is lost, as with ``threading``
        and ``queue``."""
        queue = self.queue
        loop = queue.client.loop.asyncio_loop
        if _on_thread_of(loop):  # cannot wait for the loop on its own thread
            return queue.get(timeout=wait)
        taking = asyncio.run_coroutine_threadsafe(queue._get(timeout=wait), loop)
        try:
            return taking.result()
        except BaseException:
            taking.add_done_callback(functools.partial(_give_back, queue, loop))
            raise

    def give(self, value: Any, timeout: float | None = None) -> None:
        """Add ``value``, waiting up to ``timeout`` for room (bounded queues).

        Raises:
            TimeoutError: the queue stayed full.
        """
        self.queue.put(value, timeout=timeout)

    def count(self) -> int:
        """How many items the queue holds now."""
        return int(self.queue.qsize())


def _on_thread_of(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _give_back(
    queue: distributed.Queue,
    loop: asyncio.AbstractEventLoop,
    taking: concurrent.futures.Future[Any],
) -> None:
    """Put back what an interrupted take got, once it got it."""
    if not taking.cancelled() and taking.exception() is None:
        asyncio.run_coroutine_threadsafe(queue._put(taking.result()), loop)


def take(tokens: Tokens, timeout: float | None) -> Any:
    """Take from ``tokens``: at once (``timeout`` 0), within ``timeout``, or
    whenever (``None``); NOT_YET if nothing came."""
    value = tokens.take_now()
    if value is not NOT_YET or (timeout is not None and timeout <= 0):
        return value
    with off_pool():
        try:
            return tokens.take(timeout)
        except TimeoutError:
            return NOT_YET


async def take_async(tokens: Tokens, check: Callable[[], None] | None = None) -> Any:
    """Take from ``tokens`` without blocking the event loop; a cancelled take
    puts back what it got. ``check`` runs before it waits, then between waits
    every ``_CHECK_EVERY`` seconds, and may raise to stop waiting (a queue
    shut down)."""
    value = tokens.take_now()
    if value is not NOT_YET:
        return value
    if check is not None:
        check()
    box: list[Any] = []
    checked = time.monotonic()

    def take(timeout: float) -> bool:
        nonlocal checked
        try:
            box.append(tokens.take(timeout))
        except TimeoutError:
            if check is not None and time.monotonic() - checked >= _CHECK_EVERY:
                check()
                checked = time.monotonic()
            return False
        return True

    with off_pool():
        await take_in_thread(take, lambda: tokens.give(box.pop()))
    return box.pop()


def dumps_by_value(item: object, what: str) -> bytes:
    """Pickle ``item`` for the cluster with cloudpickle, as tasks travel: by
    value where it must (lambdas, classes of ``__main__``).

    Raises:
        TransferError: it cannot be pickled; ``what`` says what failed
            (``"put {} on a queue"``, with the item's type).
    """
    try:
        by_value: bytes = cloudpickle.dumps(item, pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise TransferError(
            f"cannot {what.format(type(item).__name__)}: it cannot be pickled ({exc})"
        ) from exc
    return by_value
