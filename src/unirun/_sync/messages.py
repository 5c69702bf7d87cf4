"""The stdlib's error messages and argument checks, for primitives it does not make.

They change between versions (3.13 reworded the negative lock time-out), so
they are read from this Python's own objects: unirun's primitives raise what
``threading`` and ``queue`` raise here.
"""

from __future__ import annotations

import math
import operator
import queue
import threading
import warnings
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MESSAGES",
    "check_lock_arguments",
    "check_number",
    "wait_timeout",
    "warn_old_name",
]


def _message(call: Callable[[], object]) -> str:
    try:
        call()
    except Exception as exc:
        return str(exc)
    raise AssertionError("the stdlib call was expected to fail")  # pragma: no cover


def _messages() -> dict[str, str]:
    held = threading.Lock()
    held.acquire()
    return {
        "nan": _message(lambda: held.acquire(True, math.nan)),
        "too_large": _message(lambda: held.acquire(True, threading.TIMEOUT_MAX * 2)),
        "too_large_int": _message(
            lambda: held.acquire(True, int(threading.TIMEOUT_MAX) * 2)
        ),
        "lock_nonblocking": _message(lambda: held.acquire(False, 1)),
        "lock_negative": _message(lambda: held.acquire(True, -2)),
        "unlocked": _message(threading.Lock().release),
        "unowned": _message(threading.RLock().release),
        "wait_unowned": _message(threading.Condition(threading.Lock()).wait),
        "notify_unowned": _message(threading.Condition(threading.Lock()).notify),
        "sem_negative": _message(lambda: threading.Semaphore(-1)),
        "sem_nonblocking": _message(lambda: threading.Semaphore().acquire(False, 1)),
        "release_n": _message(lambda: threading.Semaphore().release(0)),
        "too_many": _message(threading.BoundedSemaphore().release),
        "queue_negative": _message(lambda: queue.Queue().get(True, -1)),
        "task_done": _message(queue.Queue().task_done),
        # threading.Barrier(0) is accepted before 3.13 and then never opens;
        # every version here refuses it as 3.13 does.
        "parties": "parties must be > 0",
    }


#: Each stdlib error's message, by a short name.
MESSAGES: Final = _messages()


def check_number(timeout: object) -> None:
    """Raise what ``threading.Lock.acquire`` raises for a non-number or NaN."""
    if not isinstance(timeout, float):
        operator.index(timeout)  # type: ignore[arg-type]  # raising is the point
    elif timeout != timeout:
        raise ValueError(MESSAGES["nan"])


def _too_large(timeout: float) -> OverflowError:
    # CPython's clock words its refusal by the type of the number it was given.
    return OverflowError(
        MESSAGES["too_large_int" if type(timeout) is int else "too_large"]
    )


def wait_timeout(timeout: float) -> float:
    """``timeout`` for a wait that will block, refused where ``threading`` does."""
    if timeout > threading.TIMEOUT_MAX:
        raise _too_large(timeout)
    return timeout


def check_lock_arguments(blocking: bool, timeout: float) -> None:
    """Raise what ``threading.Lock.acquire(blocking, timeout)`` raises, if anything."""
    check_number(timeout)
    if abs(timeout) > threading.TIMEOUT_MAX:  # converted before any other check
        raise _too_large(timeout)
    if not blocking and timeout != -1:
        raise ValueError(MESSAGES["lock_nonblocking"])
    if timeout < 0 and timeout != -1:
        raise ValueError(MESSAGES["lock_negative"])


def warn_old_name(old: str, new: str) -> None:
    """Warn, as ``threading`` does, that the caller's caller used ``old()``, a
    deprecated name of ``new()``."""
    warnings.warn(
        f"{old}() is deprecated, use {new}() instead", DeprecationWarning, stacklevel=3
    )
