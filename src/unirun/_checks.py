"""Argument checks shared by every executor: sizes, time-outs, callables.

Each check raises where the stdlib raises, with the stdlib's words where it has
them, so that bad input fails at once, in the caller, with a clear message.
"""

from __future__ import annotations

import math
import operator
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "check_callable",
    "check_chunksize",
    "check_initializer",
    "check_size",
    "check_timeout",
    "deadline_after",
    "describe",
    "initializer_args",
    "wait_time",
]

#: The longest a blocking wait may be given; longer time-outs mean "no limit".
MAX_WAIT = threading.TIMEOUT_MAX


def check_callable(fn: object) -> None:
    """Raise :class:`TypeError` at once if ``fn`` cannot be called."""
    if not callable(fn):
        raise TypeError(f"the task must be callable, got {type(fn).__name__}: {fn!r}")


def check_chunksize(chunksize: object) -> None:
    """Check a ``map`` chunksize where chunks apply, as ProcessPoolExecutor does.

    Below 1 is a ValueError; a size that is not an integer fails as the stdlib's
    batching fails on this Python: itertools.batched's TypeError from 3.13 on,
    islice's ValueError before.
    """
    if chunksize is None:
        return
    if chunksize < 1:  # type: ignore[operator]  # a bad type fails as in the stdlib
        raise ValueError("chunksize must be >= 1.")
    if sys.version_info >= (3, 13):
        operator.index(chunksize)
    elif not hasattr(type(chunksize), "__index__"):
        raise ValueError(
            "Stop argument for islice() must be None or an integer: "
            "0 <= x <= sys.maxsize."
        )


def check_initializer(initializer: object) -> None:
    """Raise the stdlib's :class:`TypeError` for an initializer that is not callable."""
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")


def initializer_args(initializer: object, initargs: Iterable[Any]) -> tuple[Any, ...]:
    """``initargs`` as a tuple, for an ``initializer``; with none, ``()`` whatever
    was given, as the stdlib's pools never look at ``initargs`` then."""
    return () if initializer is None else tuple(initargs)


def check_size(value: object, name: str) -> int | None:
    """Return ``value`` as an ``int`` (or ``None``), refusing what cannot be a count.

    Raises:
        TypeError: a float, a string or any other non-integer (``2.5`` workers).
        ValueError: zero or less, with the stdlib's message.
    """
    if value is None:
        return None
    if isinstance(value, float) or not hasattr(type(value), "__index__"):
        raise TypeError(
            f"{name} must be an integer or None, not {type(value).__name__}: {value!r}"
        )
    count = operator.index(value)  # type: ignore[arg-type]  # checked just above
    if count <= 0:
        raise ValueError(f"{name} must be greater than 0")
    return count


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """Return a time-out in seconds, or ``None``; refuse what is not one.

    ``inf`` and huge values are accepted and mean "no limit"; zero and negative
    values mean "already expired", as stdlib time-outs in the past do.

    Raises:
        TypeError: not a number (``bool`` included).
        ValueError: NaN.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, not {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return float(value)


def deadline_after(timeout: float | None) -> float | None:
    """The ``time.monotonic()`` deadline ``timeout`` seconds from now.

    ``None`` when there is no limit, and for time-outs too long for any clock
    wait (``inf``, ``1e30``): such a deadline never comes.
    """
    if timeout is None or timeout > MAX_WAIT:
        return None
    return time.monotonic() + timeout


def wait_time(deadline: float | None) -> float | None:
    """Seconds from now until ``deadline`` (never negative), for a blocking wait."""
    if deadline is None:
        return None
    return min(max(0.0, deadline - time.monotonic()), MAX_WAIT)


def describe(fn: Callable[..., object]) -> str:
    """A short name for a callable, for messages: ``module.qualname``."""
    while hasattr(fn, "func"):  # functools.partial
        fn = fn.func
    module = getattr(fn, "__module__", None) or "?"
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{name}"
