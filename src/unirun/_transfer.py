"""Moving calls, results and exceptions across a process boundary.

Calls are pickled with cloudpickle at ``submit`` (so lambdas, closures and
``__main__`` functions travel, and a payload that cannot travel fails there, in
the caller). Exceptions travel with their worker-side traceback and a plain-text
fallback for when they cannot be rebuilt in the parent.
"""

from __future__ import annotations

import pickle
import traceback
from typing import TYPE_CHECKING, Any

import cloudpickle

from ._errors import RemoteError, RemoteTraceback, TransferError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["decode_exception", "dumps_call", "encode_exception", "loads"]

loads = pickle.loads


def _short_repr(obj: object, limit: int = 80) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pickles(obj: object) -> bool:
    try:
        cloudpickle.dumps(obj)
    except Exception:
        return False
    return True


def _culprit(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    if not _pickles(fn):
        return f"the function {_short_repr(fn)}"
    for index, arg in enumerate(args):
        if not _pickles(arg):
            return f"positional argument {index} ({_short_repr(arg)})"
    for key, value in kwargs.items():
        if not _pickles(value):
            return f"keyword argument {key!r} ({_short_repr(value)})"
    return "the call"


def dumps_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bytes:
    """Pickle a call for a worker process.

    Raises:
        unirun.TransferError: something in the call cannot be pickled; the
            message names it.
    """
    try:
        data: bytes = cloudpickle.dumps(
            (fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL
        )
        return data
    except Exception as exc:
        what = _culprit(fn, args, kwargs)
        raise TransferError(
            f"cannot send {what} to a worker process: {type(exc).__name__}: {exc}. "
            "Pass only objects that pickle (module-level objects, plain data), "
            "or use a thread or coroutine executor."
        ) from exc


def _format(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return f'\n"""\n{text}"""'


def encode_exception(exc: BaseException) -> bytes:
    """Pickle ``exc`` with its traceback text and a plain-text fallback."""
    tb = _format(exc)
    type_name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {type(exc).__name__}>"
    try:
        exc_bytes: bytes | None = cloudpickle.dumps(exc)
    except Exception:
        exc_bytes = None
    return pickle.dumps((exc_bytes, type_name, message, tb))


def decode_exception(data: bytes) -> BaseException:
    """Rebuild an exception from :func:`encode_exception`, traceback as cause.

    An exception that cannot be rebuilt comes back as :class:`unirun.RemoteError`
    carrying its class name, message and traceback text.
    """
    exc_bytes, type_name, message, tb = pickle.loads(data)
    exc: BaseException | None = None
    if exc_bytes is not None:
        try:
            exc = pickle.loads(exc_bytes)
        except BaseException:  # even SystemExit from a hostile __reduce__
            exc = None
    if not isinstance(exc, BaseException):
        exc = RemoteError(type_name, message, tb)
    exc.__cause__ = RemoteTraceback(tb)
    return exc
