"""The whole exception hierarchy of unirun, under one base class.

Every class here survives ``pickle`` and ``cloudpickle`` because process workers
ship them back to the parent.
"""

from __future__ import annotations

import pickle
import threading
import types
from concurrent.futures import BrokenExecutor, CancelledError, InvalidStateError
from concurrent.futures.process import BrokenProcessPool
from concurrent.futures.process import _RemoteTraceback as _StdlibRemoteTraceback
from typing import Any, Literal

__all__ = [
    "BrokenExecutor",
    "CancelledError",
    "InvalidStateError",
    "LoopBlockedWarning",
    "RebuildError",
    "RemoteError",
    "RemoteTraceback",
    "TaskTimeoutError",
    "TransferError",
    "UnirunError",
    "WorkerCrashedError",
    "task_timed_out",
    "transfer_error_from",
]


class UnirunError(Exception):
    """Base class of every exception that unirun itself raises."""


class TaskTimeoutError(UnirunError, TimeoutError):
    """A task ran longer than the ``timeout`` given with :meth:`Executor.options`.

    It is also a :class:`TimeoutError`, the class ``concurrent.futures`` raises for
    time-outs since Python 3.11.
    """


#: What became of a task that passed its time-out, by backend capability.
Fate = Literal["runs on", "killed", "cancelled"]

_FATES: dict[Fate, str] = {
    "runs on": "it could not be stopped and runs on in the background",
    "killed": "its worker process was killed",
    "cancelled": "it was cancelled",
}


def task_timed_out(timeout: float | None, fate: Fate) -> TaskTimeoutError:
    """The error of a task that passed its ``options(timeout=...)``.

    Args:
        timeout: the time-out the task had, in seconds.
        fate: what happened to the task: it ``"runs on"`` (a thread cannot be
            stopped), was ``"killed"`` with its worker process, or was
            ``"cancelled"`` (a coroutine).
    """
    return TaskTimeoutError(
        f"the task did not finish within its time-out of {timeout} seconds; "
        f"{_FATES[fate]}"
    )


class WorkerCrashedError(UnirunError, BrokenProcessPool):
    """The worker process running a task died before the task finished.

    Only the task(s) that worker was running fail with it; the pool replaces the
    worker and keeps going. It is a :class:`BrokenProcessPool`, which is what
    code written for ``ProcessPoolExecutor`` already catches.
    """


class TransferError(UnirunError, pickle.PicklingError, TypeError):
    """A function, argument or result could not be pickled to cross a process.

    A task whose call cannot be pickled fails with it before anything is sent
    (its future is failed at once, as the stdlib's is), so the pool stays
    healthy. It is both a :class:`pickle.PicklingError` and a
    :class:`TypeError`, the two classes pickling failures mostly arrive as, and
    also an instance of whatever else pickling raised (a ``RuntimeError`` for a
    ``multiprocessing`` lock, an object's own error from ``__reduce__``), the
    class the stdlib's future fails with; the message names the argument that
    could not be pickled, and the original error is its ``__cause__``.
    """


def transfer_error_from(cause: BaseException, message: str) -> TransferError:
    """A :class:`TransferError` saying ``message``, caused by ``cause``.

    It is also an instance of ``cause``'s class when the two combine, as the
    stdlib fails the future with whatever pickling raised: code that catches a
    ``RuntimeError`` (a ``multiprocessing`` lock sent as an argument) or its own
    error class from ``__reduce__`` keeps catching it. Where the classes cannot
    combine, it is a plain :class:`TransferError`.
    """
    origin = cause
    if isinstance(cause, pickle.PicklingError) and isinstance(
        cause.__cause__, Exception
    ):
        origin = cause.__cause__  # as cloudpickle wraps a RecursionError
    try:
        if not isinstance(origin, Exception):
            raise TypeError  # not what `except Exception` code expects
        error = _transfer_class(type(origin))(message)
        str(error)  # a class whose instances cannot be made or printed this way
    except Exception:  # or that refuses subclasses, or cannot be a cache key
        error = TransferError(message)
    error.__cause__ = cause
    return error


#: The combined classes made so far, by the class they combine with.
_COMBINED: dict[type[Exception], type[TransferError]] = {}
_COMBINED_LOCK = threading.Lock()


def _transfer_class(kind: type[Exception]) -> type[TransferError]:
    if issubclass(TransferError, kind):  # TypeError, PicklingError, Exception...
        return TransferError
    with _COMBINED_LOCK:
        combined = _COMBINED.get(kind)
        if combined is None:
            if len(_COMBINED) >= 64:  # classes made on the fly: keep a few
                _COMBINED.clear()
            combined = _COMBINED[kind] = _combine(kind)
    return combined


def _combine(kind: type[Exception]) -> type[TransferError]:
    namespace = {
        "__module__": TransferError.__module__,
        "__qualname__": TransferError.__qualname__,
        "__doc__": TransferError.__doc__,
        # TransferError's own construction and text, never the other class's.
        "__init__": Exception.__init__,
        "__str__": Exception.__str__,
        "__reduce__": _reduce_transfer_error,
    }
    return types.new_class(
        TransferError.__name__,
        (TransferError, kind),
        exec_body=lambda body: body.update(namespace),
    )


def _reduce_transfer_error(error: TransferError) -> tuple[Any, ...]:
    # Pickled as its parts: the combined class exists only in this process.
    combined = type(error).__mro__[1:]
    kind = next(base for base in combined if not issubclass(TransferError, base))
    return (_rebuild_transfer_error, (kind, error.args), error.__dict__ or None)


def _rebuild_transfer_error(
    kind: type[Exception], args: tuple[Any, ...]
) -> TransferError:
    return _transfer_class(kind)(*args)


class RebuildError(UnirunError, BrokenProcessPool, pickle.UnpicklingError):
    """A task or its result was sent but could not be rebuilt on the other side.

    Unpickling failed (or raised ``SystemExit``) in the worker, for a task, or
    in this process, for a result. Only that task fails; the pool stays
    healthy. It is a :class:`BrokenProcessPool`, which is what code written for
    ``ProcessPoolExecutor`` catches there, and a :class:`pickle.UnpicklingError`.
    The unpickling error is its ``__cause__``.
    """


#: The ``__cause__`` attached to exceptions from worker processes: the worker-side
#: traceback as text (its ``tb`` attribute). It is the very class that
#: ``ProcessPoolExecutor`` attaches, so code written for the stdlib keeps working.
RemoteTraceback = _StdlibRemoteTraceback


class RemoteError(UnirunError):
    """An exception raised in a worker process that could not be sent back as is.

    It happens when the exception (or one of its arguments) cannot be pickled, or
    cannot be rebuilt in the parent. The original class name, message and
    worker-side traceback are kept as attributes.

    Attributes:
        type_name: the qualified name of the original exception class.
        message: ``str()`` of the original exception.
        tb: the worker-side traceback, formatted.
    """

    def __init__(self, type_name: str, message: str, tb: str = "") -> None:
        super().__init__(type_name, message, tb)
        self.type_name = type_name
        self.message = message
        self.tb = tb

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


class LoopBlockedWarning(RuntimeWarning):
    """A coroutine ran too long between two awaits and blocked its event loop.

    Issued once per function by :class:`unirun.AutoExecutor`, which then runs that
    function's later calls off the shared loop. The message names the function.
    """
