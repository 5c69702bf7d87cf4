"""A Future's way without its lock, for the one thread that drives it.

An event loop's task is started and finished on the loop's thread, wherever it
was submitted; other threads at most cancel it, wait for it or add callbacks.
Such a future has that thread as its *owner*, and the owner changes its state
without the lock for as long as no other thread has used it:

- The owner's steps (:meth:`OwnedSteps._start_owned`, ``_set_result_owned``,
  and ``add_done_callback`` on the owner's thread) are a few lines that call
  nothing. Each holds the token ``_fast`` while it runs: it deletes the
  attribute, which is atomic, and sets it again after. Where the token is gone
  the future is sealed, and the step takes the lock's way.
- Every other use takes the lock (made then, the first time: an owned future
  has none until it needs one) and first *seals* the future (:meth:`_seal`):
  it takes the token for good, waiting while the owner holds it, and from then
  on every change of state takes the lock, as in any other Future.
- Waiters (a thread in ``result()``, ``concurrent.futures.wait``) come only
  after a seal, so an unsealed future has nobody to tell but its callbacks.

A lock taken and given back costs more than the rest of a task's Future; this
path costs two attribute changes. As with the stdlib's futures, a call nested
in a step on the same thread (a signal handler that a tracer lets run between
two of its lines) and changing the same future can be overwritten by the step.
"""

from __future__ import annotations

import _thread
import concurrent.futures as cf
from _thread import get_ident
from concurrent.futures._base import (
    CANCELLED,
    CANCELLED_AND_NOTIFIED,
    FINISHED,
    PENDING,
    RUNNING,
)
from time import sleep
from typing import TYPE_CHECKING, Any, Generic

from ._call import ChunkResult
from ._types import T

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from ._future import Stopper
    from ._stats import TaskCounters

__all__ = ["DONE", "ENDLESS_WAIT", "OwnedSteps"]

#: The states of a future that is done.
DONE = (CANCELLED, CANCELLED_AND_NOTIFIED, FINISHED)

#: Held while an owned future's lock is made: one lock, whoever asks first.
_MAKING = _thread.RLock()


#: Why a wait without limit is refused on the thread of the loop that runs it.
ENDLESS_WAIT = (
    "cannot wait for a coroutine executor's future on the thread of the event "
    "loop that runs its task (it would wait for ever): await the future there"
)


class OwnedSteps(Generic[T]):
    """The owner's steps of a :class:`~unirun.Future` (a mixin; see above)."""

    # No __slots__: on 3.13 a Future with slots besides its dict reads every
    # attribute more slowly.
    _owner: int | None  # the owner's thread, until sealed
    _home: int | None = None  # the owner's thread, once sealed
    _fast: bool  # the token: set while no step of the owner's runs

    _lock: _thread.RLock | None  # None until an owned future's is made
    _state: str
    _result: T | None
    _stopper: Stopper | None
    _counters: TaskCounters | None
    _done_callbacks: list[Callable[[Any], object]]

    if TYPE_CHECKING:  # the lock's way, in Future

        def _start(self, stopper: Stopper | None = None) -> bool: ...
        def _set_result_if_pending(self, result: T) -> bool: ...

    def _make_lock(self) -> _thread.RLock:
        """The future's lock, made now if it has none yet (an owned future)."""
        made = _thread.RLock()  # first: nothing runs between the test and the set
        with _MAKING:
            lock = self._lock
            if lock is None:
                lock = self._lock = made
        return lock

    def _refuse_endless_wait(self) -> None:
        """Raise :class:`RuntimeError` where a wait without limit would never
        end: on the owner's thread, the event loop that alone ends the future."""
        owner = self._owner or self._home
        if owner is not None and owner == get_ident():
            raise RuntimeError(ENDLESS_WAIT)

    def _seal(self) -> None:
        """End the owner's way for good; call holding the lock."""
        while True:
            owner = self._owner
            if owner is None:  # by a call nested in this one (a signal handler)
                return
            try:
                del self._fast
            except AttributeError:
                # The owner holds the token: a few lines on another thread, or
                # on this one, which called this from within them (a signal
                # handler or a finalizer run there). Another sealer cannot: it
                # holds the lock until it is done.
                if owner != get_ident():
                    sleep(0)  # let it set the token again
                    continue
            self._home = owner  # the loop's thread still alone runs its task
            self._owner = None
            return

    def _start_owned(self, stopper: Stopper | None = None) -> bool:
        """``_start()``, called by the owner."""
        if self._owner is None:  # sealed
            return self._start(stopper)
        try:
            del self._fast  # the token
        except AttributeError:  # sealed meanwhile
            return self._start(stopper)
        started = self._state == PENDING
        if started:
            if stopper is not None:
                self._stopper = stopper
            self._state = RUNNING
        if self._owner is not None:  # else sealed from within: see _seal
            self._fast = True
        if not started:  # cancelled first: the lock's way tells the waiters
            return self._start(stopper)
        if self._counters is not None:
            self._counters.started()
        return True

    def _set_result_owned(self, result: T) -> bool:
        """``_set_result_if_pending()``, called by the owner."""
        if self._owner is None:  # sealed
            return self._set_result_if_pending(result)
        try:
            del self._fast  # the token
        except AttributeError:  # sealed meanwhile
            return self._set_result_if_pending(result)
        state = self._state
        if state not in DONE:
            self._result = result
            self._state = FINISHED
        if self._owner is not None:  # else sealed from within: see _seal
            self._fast = True
        if state in DONE:
            return False
        counters = self._counters
        if counters is not None:
            if state == RUNNING and type(result) is not ChunkResult:
                counters.done()
            else:  # queued, or a map's batch: see TaskCounters.returned
                counters.returned(result, running=state == RUNNING)
        callbacks = self._done_callbacks  # no waiters: they come with a seal
        for callback in callbacks:  # Future._invoke_callbacks(), inlined
            try:
                callback(self)
            except Exception:
                cf._base.LOGGER.exception("exception calling callback for %r", self)
        callbacks.clear()
        return True

    def add_done_callback(self, fn: Callable[[Self], object]) -> None:
        """As :meth:`concurrent.futures.Future.add_done_callback`."""
        pending = None
        if self._owner == get_ident():  # the owner's way
            try:
                del self._fast  # the token
            except AttributeError:
                pass  # sealed: the lock's way, below
            else:
                pending = self._state not in DONE
                if pending:
                    self._done_callbacks.append(fn)
                if self._owner is not None:  # else sealed from within: see _seal
                    self._fast = True
        if pending is None:
            lock = self._lock or self._make_lock()
            with lock:
                if self._owner is not None:
                    self._seal()
                pending = self._state not in DONE
                if pending:
                    self._done_callbacks.append(fn)
        if not pending:
            try:
                fn(self)
            except Exception:
                cf._base.LOGGER.exception("exception calling callback for %r", self)
