"""Moving calls, results and exceptions across a process boundary.

Functions travel by value with cloudpickle (lambdas, closures and ``__main__``
functions work), through a pickler that rebuilds ``__main__`` definitions in a
worker as a stdlib worker has them (:mod:`._rebuild`: one ``__main__`` namespace
per worker, classes set up once, code with its real file name).

A :class:`CallableCache` pickles each function once per executor, and the pool
sends it to each worker once (:mod:`._backends._pool`). Arguments take the fast
C pickler unless they refer to ``__main__``. A call that cannot travel fails
with :class:`TransferError` naming the culprit. Exceptions travel with their
worker-side traceback and a plain-text fallback.
"""

from __future__ import annotations

import functools
import io
import itertools
import pickle
import sys
import threading
import time
import traceback
import types
import weakref
from collections import ChainMap
from contextvars import ContextVar
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any

import cloudpickle

from ._errors import RemoteError, RemoteTraceback, TransferError, transfer_error_from
from ._rebuild import (
    CACHED,
    MainGlobals,
    cached_reduce,
    class_once,
    code_reducers,
    inherit_main,
    main_module,
    main_namespace,
    program,
    setstate_in_main,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "UNSENDABLE_RAISES",
    "CallableCache",
    "SharedPickler",
    "SpawnArgs",
    "call_travels",
    "decode_exception",
    "dumps",
    "dumps_args",
    "dumps_call",
    "encode_exception",
    "inherit_main",
    "loads",
    "main_module",
    "main_namespace",
    "outcome_travels",
    "transfer_error",
    "unsendable",
    "unsendable_raises",
    "unwrap",
]

loads = pickle.loads

#: Set by a caller (an AutoExecutor, which chose the backend) around one
#: ``submit`` to an executor that sends calls to other processes: if the call
#: does not pickle, that submit raises :class:`TransferError` (nothing sent or
#: counted; the caller runs it elsewhere) instead of returning a Future failed
#: with it. The executor takes the request with :func:`unsendable_raises`.
UNSENDABLE_RAISES: ContextVar[bool] = ContextVar("unsendable_raises", default=False)


def unsendable_raises() -> bool:
    """Whether this submit was asked to raise for a call that does not pickle.

    The request is cleared as it is read, first thing in the submit: a
    done-callback that the submit runs, or a thread it starts, never sees it
    (their own submits fail their Future, as they should).
    """
    if not UNSENDABLE_RAISES.get():
        return False
    UNSENDABLE_RAISES.set(False)
    return True


#: The protocol of what crosses to a process: the stdlib's (``multiprocessing``
#: pickles with the default). Protocol 5 would keep a read-only numpy array
#: read-only on the other side, where a stdlib worker gets a writable copy.
PROTOCOL = pickle.DEFAULT_PROTOCOL


def _refuse_file(file: io.TextIOWrapper) -> Any:
    """Pickle's own error for a file (cloudpickle would copy it)."""
    return file.__reduce_ex__(pickle.HIGHEST_PROTOCOL)  # raises TypeError


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle has no stubs
    """cloudpickle, with file names kept and one ``__main__`` per worker."""

    def reducer_override(self, obj: object) -> Any:
        if type(obj) is CACHED:
            reduced = cached_reduce(obj)
            if reduced is not None:
                return reduced
        if isinstance(obj, type):
            return class_once(super().reducer_override(obj))
        return super().reducer_override(obj)

    def _dynamic_function_reduce(self, func: types.FunctionType) -> tuple[Any, ...]:
        reduced: tuple[Any, ...] = super()._dynamic_function_reduce(func)
        if isinstance(self.globals_ref.get(id(func.__globals__)), MainGlobals):
            return (*reduced[:5], setstate_in_main)
        return reduced

    # cloudpickle sends an open text file as a StringIO copy of what is left to
    # read: the task would read a copy, and what it writes would be lost. The
    # stdlib's pool refuses to pickle a file, and so do we (TransferError).
    dispatch_table = ChainMap(  # noqa: RUF012  # as cloudpickle's own
        {io.TextIOWrapper: _refuse_file} | code_reducers(),
        cloudpickle.Pickler.dispatch_table,
    )

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=PROTOCOL)
        main = sys.modules.get("__main__")
        if main is not None:
            # cloudpickle gives the functions that share a globals dict one
            # shared dict when unpickled; this makes it the worker's __main__.
            self.globals_ref[id(main.__dict__)] = MainGlobals()


class SharedPickler(_Pickler):
    """:class:`_Pickler` for workers that serve other programs too (Dask's):
    there, this program's ``__main__`` globals are its own, never another's."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        main = sys.modules.get("__main__")
        if main is not None:
            self.globals_ref[id(main.__dict__)] = MainGlobals(program())


class _SpawnPickler(_Pickler):
    """:class:`_Pickler`, with what ``multiprocessing`` pickles only while it
    starts a process (the pipes of a queue: their descriptors are handed over)."""

    dispatch_table = ChainMap(  # noqa: RUF012  # as cloudpickle's own
        getattr(ForkingPickler, "_extra_reducers", {}), _Pickler.dispatch_table
    )


def dumps(obj: object, pickler: type[_Pickler] = _Pickler) -> bytes:
    """Pickle ``obj`` by value where needed (see the module docstring)."""
    file = io.BytesIO()
    try:
        pickler(file).dump(obj)
    except pickle.PicklingError as exc:
        if isinstance(exc.__cause__, RecursionError):
            # cloudpickle's word for it; pickle (and the stdlib's pool) raise it
            raise exc.__cause__ from None
        raise
    return file.getvalue()


def dumps_args(obj: object, inherit: bool = False) -> bytes:
    """Pickle call arguments: the C pickler unless they refer to ``__main__``
    (which, unless ``inherit``, the worker's ``__main__`` lacks)."""
    if not cloudpickle.list_registry_pickle_by_value():
        try:
            data = pickle.dumps(obj, PROTOCOL)
        except Exception:
            pass  # a lambda, a local class...: cloudpickle can
        else:
            if inherit or b"__main__" not in data:
                return data
    return dumps(obj)


class SpawnArgs:
    """Arguments that travel to a process as it starts (an initializer's).

    Pickled while the process is spawned, with what ``multiprocessing`` hands
    over only then (a queue, a lock, a value), as with the stdlib; what refers
    to ``__main__`` (an instance of a class of the script) goes by value, as
    tasks do, bound to the worker's ``__main__`` namespace. A forked process
    inherits the object itself.
    """

    __slots__ = ("args",)

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled once: what the start method's pickler hands over to the child
        # (a queue's pipe) it lists once per pickling.
        return (_spawn_args_from, (dumps(self.args, _SpawnPickler),))


def _spawn_args_from(data: bytes) -> SpawnArgs:
    return SpawnArgs(pickle.loads(data))


def unwrap(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """The same call with partials and bound methods taken apart.

    Their function then travels once, through the :class:`CallableCache`; their
    arguments and instance travel with each call, as the stdlib sends them.
    """
    while True:
        if type(fn) is functools.partial:
            args = fn.args + args
            kwargs = {**fn.keywords, **kwargs}
            fn = fn.func
        elif type(fn) is types.MethodType:
            args = (fn.__self__, *args)
            fn = fn.__func__
        else:
            return fn, args, kwargs


class CallableCache:
    """Each function pickled once, with a key workers remember it by.

    Only plain functions are cached: other callables (instances with
    ``__call__``, builtins) travel with each call, as with the stdlib. An
    entry lives as long as its function. With ``inherit`` (workers forked from
    this process, which have its ``__main__``), what pickles by name does so,
    as with the stdlib: a function of ``__main__`` then finds its globals as
    the worker inherited them, even those that do not pickle.
    """

    def __init__(self, inherit: bool = False) -> None:
        self.inherit = inherit
        self._entries: weakref.WeakKeyDictionary[Callable[..., Any], tuple[int, bytes]]
        self._entries = weakref.WeakKeyDictionary()
        self._keys = itertools.count()
        self._lock = threading.Lock()

    def lookup(self, fn: Callable[..., Any]) -> tuple[int, bytes]:
        """Return ``(key, pickled fn)``; key -1 when ``fn`` is not cached.

        Raises:
            Exception: whatever pickling ``fn`` raised.
        """
        if type(fn) is not types.FunctionType:
            return -1, self._dumps(fn)
        with self._lock:
            entry = self._entries.get(fn)
        if entry is None:
            entry = (next(self._keys), self._dumps(fn))
            with self._lock:
                entry = self._entries.setdefault(fn, entry)
        return entry

    def _dumps(self, fn: Callable[..., Any]) -> bytes:
        if self.inherit:
            try:
                return pickle.dumps(fn, pickle.HIGHEST_PROTOCOL)
            except Exception:
                pass  # a lambda, a closure...: by value
        return dumps(fn)


def _short_repr(obj: object, limit: int = 80) -> str:
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type(obj).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pickles(obj: object) -> bool:
    try:
        dumps(obj)
    except Exception:
        return False
    return True


def transfer_error(
    exc: BaseException,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> TransferError:
    """The error of a call that cannot travel, naming what cannot be pickled."""
    if not _pickles(fn):
        what = f"the function {_short_repr(fn)}"
    else:
        what = "the call"
        for index, arg in enumerate(args):
            if not _pickles(arg):
                what = f"positional argument {index} ({_short_repr(arg)})"
                break
        else:
            for key, value in kwargs.items():
                if not _pickles(value):
                    what = f"keyword argument {key!r} ({_short_repr(value)})"
                    break
    return transfer_error_from(
        exc,
        f"cannot send {what} to a worker process: {type(exc).__name__}: {exc}. "
        "Pass only objects that pickle (module-level objects, plain data), "
        "or use a thread or coroutine executor.",
    )


def dumps_call(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name_culprit: bool = True,
    pickler: type[_Pickler] = _Pickler,
) -> bytes:
    """Pickle a whole call, as a check that it can travel (with ``pickler``:
    :class:`SharedPickler` for workers that serve other programs too).

    Raises:
        unirun.TransferError: something in the call cannot be pickled; the
            message names it, unless not ``name_culprit`` (which spares
            pickling each part again to find it).
    """
    try:
        return dumps((fn, args, kwargs), pickler)
    except Exception as exc:
        if not name_culprit:
            raise unsendable(exc) from exc
        raise transfer_error(exc, fn, args, kwargs) from exc


def unsendable(exc: BaseException) -> TransferError:
    """A bare :class:`TransferError` for a call that does not pickle, for a
    caller that runs the call elsewhere (the culprit is not looked for)."""
    return transfer_error_from(exc, f"the call does not pickle: {exc!r}")


def _format(exc: BaseException) -> str:
    text = "".join(traceback.format_exception(exc))
    return f'\n"""\n{text}"""'


def _safely(call: Callable[[], str], fallback: str) -> str:
    try:
        return call()
    except BaseException:  # even SystemExit from a hostile __str__
        return fallback


def encode_exception(exc: BaseException) -> bytes:
    """Pickle ``exc`` with its traceback text and a plain-text fallback.

    Never raises: an exception that fights being pickled or printed (even with
    ``SystemExit``) is sent as its class name and whatever text could be had.
    """
    type_name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    tb = _safely(lambda: _format(exc), f'\n"""\n{type_name}\n"""')
    message = _safely(lambda: str(exc), f"<unprintable {type(exc).__name__}>")
    try:
        exc_bytes: bytes | None = cloudpickle.dumps(exc)
    except BaseException:
        exc_bytes = None
    return pickle.dumps((exc_bytes, type_name, message, tb))


def call_travels(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, str, float]:
    """Whether ``fn(*args, **kwargs)`` pickles for a process, if not why (one
    line), and how long pickling it took (seconds)."""
    start = time.perf_counter()
    try:
        dumps_call(fn, args, kwargs)
    except TransferError as exc:
        cause = exc.__cause__
        text = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
        return False, text.splitlines()[0][:120], 0.0
    return True, "", time.perf_counter() - start


def outcome_travels(outcome: object) -> tuple[bool, str]:
    """Whether a call's outcome (its result, or the exception it raised) would
    come back from a worker process as itself; if not, why."""
    if isinstance(outcome, BaseException):
        return _exception_travels(outcome)
    try:
        pickle.loads(dumps(outcome))
    except Exception as exc:
        why = f"its result does not pickle: {type(exc).__name__}: {exc}"
        return False, why.splitlines()[0][:120]
    return True, ""


def _exception_travels(exc: BaseException) -> tuple[bool, str]:
    cls = type(exc)
    if cls.__reduce_ex__ is BaseException.__reduce_ex__ and (
        cls.__reduce__ is BaseException.__reduce__
    ):
        # Rebuilt from its args, as a worker pickles it (a reducer registered
        # in this process, as tblib's that distributed installs, is not there).
        try:
            cls(*exc.args)
        except Exception:
            return False, f"its {cls.__name__} cannot be rebuilt from its args"
        return True, ""
    if type(decode_exception(encode_exception(exc))) is cls:
        return True, ""
    return False, f"its {cls.__name__} cannot be rebuilt after the trip"


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
