"""Barrier: the type, its algorithm written once, and where its state lives.

The algorithm is :class:`threading.Barrier`'s (filling, draining, resetting,
broken), written as steps that yield whenever they must wait
(:meth:`Cycle._steps`); a sync driver and an async one run the same steps, so
``wait`` and ``async_wait`` cannot drift apart. The steps run with the
barrier's lock held: a Condition's in this process, a monitor's mutex across
processes (robust to a holder's death, like every shared primitive's).
"""

from __future__ import annotations

import contextlib
import pickle
import threading
import time
from abc import abstractmethod
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import anyio

from .conditions import LocalCondition
from .locks import LocalLock
from .made import MadeByExecutor
from .messages import MESSAGES, wait_timeout
from .sending import dumps, refuse_pickle
from .shared import MonitorShared, deadline_of
from .waiting import take_in_thread

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Generator
    from contextlib import AbstractAsyncContextManager, AbstractContextManager

__all__ = [
    "Barrier",
    "Cycle",
    "LocalBarrier",
    "SharedBarrier",
    "async_run_steps",
    "run_steps",
]

_FILLING, _DRAINING, _RESETTING, _BROKEN = 0, 1, -1, -2


@dataclass(frozen=True, slots=True)
class _Wait:
    """A step's request: wait until ``ready()`` or ``timeout`` (None: forever)."""

    ready: Callable[[], bool]
    timeout: float | None


class Barrier(MadeByExecutor):
    """A barrier for a fixed number of parties: :class:`threading.Barrier` plus async.

    Create one with ``executor.Barrier(parties, action=None, timeout=None)``.
    Each party's ``wait`` (or ``async_wait``) blocks until ``parties`` have
    called it; one of them runs ``action`` first. A time-out, an ``abort()``,
    or an ``action`` that raises breaks it: waiters get
    :class:`threading.BrokenBarrierError` until ``reset()``.
    """

    __slots__ = ()

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int:
        """Wait for every party; return this party's index, ``0 .. parties-1``.

        ``timeout`` defaults to the barrier's own.

        Raises:
            threading.BrokenBarrierError: the barrier is or becomes broken,
                or this wait timed out (breaking it).
        """

    @abstractmethod
    async def async_wait(self) -> int:
        """:meth:`wait` without blocking the event loop, with the default
        time-out; a cancelled wait leaves the barrier as if it had not come."""

    @abstractmethod
    def reset(self) -> None:
        """Return to the empty state; current waiters get BrokenBarrierError."""

    @abstractmethod
    def abort(self) -> None:
        """Break the barrier: current and future waits raise BrokenBarrierError."""

    @property
    @abstractmethod
    def parties(self) -> int:
        """The number of parties the barrier waits for."""

    @property
    @abstractmethod
    def n_waiting(self) -> int:
        """How many parties are waiting now."""

    @property
    @abstractmethod
    def broken(self) -> bool:
        """Whether the barrier is broken."""


class Cycle(Barrier):
    """The algorithm; subclasses store the state and provide lock and waits."""

    _parties: int
    _timeout: float | None
    _run: Callable[[], object] | None

    @abstractmethod
    def _get(self) -> tuple[int, int]:
        """The state and the number of parties inside (lock held)."""

    @abstractmethod
    def _put(self, state: int | None = None, count: int | None = None) -> None:
        """Record the state and/or the count (lock held)."""

    @abstractmethod
    def _notify_all(self) -> None:
        """Wake every waiter (lock held)."""

    @abstractmethod
    def _held(self) -> AbstractContextManager[object]:
        """The barrier's lock, held for the length of a ``with`` block."""

    @abstractmethod
    def _action(self) -> Callable[[], object] | None:
        """The action to run when the last party arrives."""

    def _configure(
        self,
        parties: int,
        action: Callable[[], object] | None,
        timeout: float | None,
    ) -> None:
        if parties < 1:
            raise ValueError(MESSAGES["parties"])
        self._parties = parties
        self._timeout = timeout
        self._run = action

    def _steps(self, timeout: float | None) -> Generator[_Wait, bool, int]:
        """One party's passage; yields to wait, with the lock held otherwise."""
        if timeout is None:
            timeout = self._timeout
        while self._get()[0] in (_DRAINING, _RESETTING):
            # The last cycle's parties are leaving. One that died never does:
            # the time-out bounds this wait too (threading's has no need to).
            if not (yield _Wait(self._settled, timeout)):
                raise threading.BrokenBarrierError
        if self._get()[0] != _FILLING:
            raise threading.BrokenBarrierError
        index = self._get()[1]
        self._put(count=index + 1)
        try:
            if index + 1 == self._parties:
                self._open_it()
            elif not (yield _Wait(self._released, timeout)):
                self._break()
                raise threading.BrokenBarrierError
            elif self._get()[0] != _DRAINING:
                raise threading.BrokenBarrierError
            return index
        finally:
            count = self._get()[1] - 1
            self._put(count=count)
            if not count and self._get()[0] in (_DRAINING, _RESETTING):
                self._put(state=_FILLING)  # the last one out
                self._notify_all()

    def _settled(self) -> bool:
        return self._get()[0] not in (_DRAINING, _RESETTING)

    def _released(self) -> bool:
        return self._get()[0] != _FILLING

    def _open_it(self) -> None:
        action = self._action()
        try:
            if action is not None:
                action()
        except BaseException:
            self._break()
            raise
        self._put(state=_DRAINING)
        self._notify_all()

    def _break(self) -> None:
        self._put(state=_BROKEN)
        self._notify_all()

    def reset(self) -> None:
        with self._held():
            state, count = self._get()
            if not count:
                self._put(state=_FILLING)
            elif state in (_FILLING, _BROKEN):
                self._put(state=_RESETTING)  # cleared by the last one out
            self._notify_all()

    def abort(self) -> None:
        with self._held():
            self._break()

    @property
    def parties(self) -> int:
        return self._parties

    def _peek(self) -> tuple[int, int]:
        """The state and the count, for a reader that does not hold the lock
        (and must not disturb one that does)."""
        return self._get()

    @property
    def n_waiting(self) -> int:
        state, count = self._peek()
        return count if state == _FILLING else 0

    @property
    def broken(self) -> bool:
        return self._peek()[0] == _BROKEN

    def _describe(self, where: str) -> str:
        if self.broken:
            return f"<unirun.Barrier broken ({where})>"
        return f"<unirun.Barrier waiters={self.n_waiting}/{self._parties} ({where})>"


def run_steps(steps: Generator[_Wait, bool, int], wait: Callable[[_Wait], bool]) -> int:
    """Run ``steps`` (lock held), answering each wait with ``wait(request)``."""
    done, value = _advance(steps, None)
    while not done:
        try:
            answer: bool | BaseException = wait(value)
        except BaseException as exc:  # the steps' finally runs, then it re-raises
            answer = exc
        done, value = _advance(steps, answer)
    return int(value)


async def async_run_steps(
    steps: Generator[_Wait, bool, int],
    wait: Callable[[_Wait], Awaitable[bool]],
    held: Callable[[], AbstractAsyncContextManager[object]],
) -> int:
    """:func:`run_steps` with an async ``wait``; each step runs inside ``held()``."""
    async with held():
        done, value = _advance(steps, None)
    while not done:
        try:
            answer: bool | BaseException = await wait(value)
        except BaseException as exc:
            answer = exc
        async with held():
            done, value = _advance(steps, answer)
    return int(value)


def _advance(steps: Generator[_Wait, bool, int], answer: object) -> tuple[bool, Any]:
    """Feed ``answer`` (a wait's result, or what it raised) into the steps."""
    try:
        if isinstance(answer, BaseException):
            return False, steps.throw(answer)
        return False, steps.send(answer)  # type: ignore[arg-type]  # None starts it
    except StopIteration as finished:
        return True, finished.value


class LocalBarrier(Cycle):
    """A :class:`unirun.Barrier` for threads and coroutines of one process."""

    def __init__(
        self,
        parties: int,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._configure(parties, action, timeout)
        self._cond = LocalCondition(LocalLock())
        self._state = _FILLING
        self._count = 0

    def _get(self) -> tuple[int, int]:
        return self._state, self._count

    def _put(self, state: int | None = None, count: int | None = None) -> None:
        if state is not None:
            self._state = state
        if count is not None:
            self._count = count

    def _notify_all(self) -> None:
        self._cond.notify_all()

    def _held(self) -> AbstractContextManager[object]:
        return self._cond

    def _action(self) -> Callable[[], object] | None:
        return self._run

    def wait(self, timeout: float | None = None) -> int:
        with self._cond:
            return run_steps(self._steps(timeout), self._wait)

    def _wait(self, request: _Wait) -> bool:
        return bool(self._cond.wait_for(request.ready, request.timeout))

    async def async_wait(self) -> int:
        async with self._cond:  # held across the waits, which release it
            return await async_run_steps(
                self._steps(None), self._async_wait, nullcontext
            )

    async def _async_wait(self, request: _Wait) -> bool:
        with anyio.move_on_after(request.timeout):
            await self._cond.async_wait_for(request.ready)
        return request.ready()

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)

    def __repr__(self) -> str:
        return self._describe("threads and coroutines")


# Shared barrier words: the state and the count; its one condition.
_STATE, _COUNT = 0, 1
_CHANGED = 0


class SharedBarrier(MonitorShared, Cycle):
    """A :class:`unirun.Barrier` shared with worker processes.

    ``action`` travels by value (cloudpickle) and runs in the process of the
    last party to arrive.
    """

    def __init__(
        self,
        scope: str,
        parties: int,
        action: Callable[[], object] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._configure(parties, action, timeout)
        self._pickled_action = (
            None if action is None else dumps(action, scope, "give {} to a barrier")
        )
        self._create_monitor(scope)

    def _more_state(self) -> tuple[Any, ...]:
        return (self._parties, self._timeout, self._pickled_action)

    def _open_more(self, more: tuple[Any, ...]) -> None:
        self._parties, self._timeout, self._pickled_action = more
        self._run = None

    def _get(self) -> tuple[int, int]:
        words = self._monitor.words
        return int(words[_STATE]), int(words[_COUNT])

    def _put(self, state: int | None = None, count: int | None = None) -> None:
        pairs = [(_STATE, state)] if state is not None else []
        if count is not None:
            pairs.append((_COUNT, count))
        self._monitor.commit(*pairs)

    def _notify_all(self) -> None:
        self._monitor.notify_all(_CHANGED)

    def _held(self) -> AbstractContextManager[object]:
        return self._monitor

    def _action(self) -> Callable[[], object] | None:
        if self._run is None and self._pickled_action is not None:
            self._run = pickle.loads(self._pickled_action)
        return self._run

    def wait(self, timeout: float | None = None) -> int:
        with self._monitor:
            return run_steps(self._steps(timeout), self._wait)

    def _wait(self, request: _Wait) -> bool:
        # As threading.Barrier: a time-out too large to wait for is refused when
        # a party would wait (an unreachable deadline never failed the wait).
        timeout = None if request.timeout is None else wait_timeout(request.timeout)
        deadline = deadline_of(timeout)
        return self._monitor.wait_for(_CHANGED, request.ready, deadline)

    async def async_wait(self) -> int:
        # Each step holds the mutex, but never across an await: the waits run
        # in a worker thread, a slice at a time.
        return await async_run_steps(
            self._steps(None), self._async_wait, self._async_held
        )

    @contextlib.asynccontextmanager
    async def _async_held(self) -> AsyncIterator[None]:
        """The mutex, taken without blocking the loop: another party may hold
        it for as long as the action it runs takes."""
        monitor = self._monitor
        if not monitor.acquire(time.monotonic()):  # free, or freed within µs
            await take_in_thread(
                lambda slice_: monitor.acquire(time.monotonic() + slice_),
                monitor.release,
            )
        try:
            yield
        finally:
            monitor.release()

    async def _async_wait(self, request: _Wait) -> bool:
        timeout = None if request.timeout is None else wait_timeout(request.timeout)
        end = None if timeout is None else time.monotonic() + timeout

        def take(slice_: float) -> bool:
            timeout = slice_ if end is None else min(slice_, end - time.monotonic())
            return timeout <= 0 or self._wait_ready(_CHANGED, request.ready, timeout)

        await take_in_thread(take)
        return request.ready()

    def __repr__(self) -> str:
        return self._describe("shared with processes")
