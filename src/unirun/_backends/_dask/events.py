"""The Dask backend's Event: a ``distributed.Event`` of the scheduler."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any, Final

import distributed

from ..._completion import wait_done
from ..._sync import Event
from ..._sync.messages import wait_timeout
from .remote import off_pool, scheduler_address
from .tokens import client_here

__all__ = ["DaskEvent"]

#: How often an async wait starts a new wait on the scheduler.
_EVENT_SLICE: Final = 1.0


class DaskEvent(Event):
    """A :class:`unirun.Event`: a ``distributed.Event`` of the Dask scheduler."""

    def __init__(self, client: distributed.Client) -> None:
        self._address = scheduler_address(client)
        self._name = f"unirun-event-{uuid.uuid4().hex}"
        self._event: distributed.Event | None = distributed.Event(
            self._name, client=client
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_event, (self._address, self._name))

    @property
    def _dask(self) -> distributed.Event:
        if self._event is None:
            client = client_here(self._address)
            self._event = distributed.Event(self._name, client=client)
        return self._event

    def is_set(self) -> bool:
        return bool(self._dask.is_set())

    def set(self) -> None:
        self._dask.set()

    def clear(self) -> None:
        self._dask.clear()

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is not None:
            if not timeout > 0:  # NaN included, as threading: just look
                return self.is_set()
            if timeout > threading.TIMEOUT_MAX:
                if self.is_set():
                    return True
                wait_timeout(timeout)  # raises OverflowError, as threading
        with off_pool():
            return bool(self._dask.wait(timeout))

    async def async_wait(self) -> bool:
        client = self._dask.client
        loop: Any = client.loop
        waiting = asyncio.run_coroutine_threadsafe(
            _wait_until_set(client.scheduler, self._name), loop.asyncio_loop
        )
        try:
            with off_pool():
                await wait_done(waiting)
        except BaseException:
            waiting.cancel()
            raise
        waiting.result()  # an error from the scheduler, if any
        return True

    def __repr__(self) -> str:
        return f"<unirun.Event (on a Dask cluster) {self._name}>"


async def _wait_until_set(scheduler: Any, name: str) -> None:
    """Return once the event is set (on the client's loop).

    Waits on the scheduler overlap: a new one starts before the last one ends,
    so a set() then clear() is never missed between two (the scheduler's wait
    wakes on set() even if clear() follows, as threading.Event.wait does), and
    a cancelled wait leaves nothing on the scheduler for long.
    """
    waits: set[asyncio.Future[bool]] = set()
    try:
        while True:
            waits.add(
                asyncio.ensure_future(
                    scheduler.event_wait(name=name, timeout=2 * _EVENT_SLICE)
                )
            )
            done, waits = await asyncio.wait(
                waits, timeout=_EVENT_SLICE, return_when=asyncio.FIRST_COMPLETED
            )
            if any(wait.result() for wait in done):
                return
    finally:
        for wait in waits:
            wait.cancel()


def _rebuild_event(address: str, name: str) -> DaskEvent:
    event = DaskEvent.__new__(DaskEvent)
    event._address, event._name, event._event = address, name, None
    return event
