"""Where a primitive may be sent, and how items travel between processes.

A primitive pickles only while it is being sent to tasks of the executor that
made it (:func:`sending_to`): anywhere else a pickled copy would be
disconnected from the original, so pickling it raises :class:`TypeError`
instead. In-process primitives never pickle. Items of shared queues and dicts
are pickled here too (:func:`dumps`), by the same rule.
"""

from __future__ import annotations

import pickle
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, NoReturn

import cloudpickle

from .._errors import TransferError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["check_send", "dumps", "quick_dumps", "refuse_pickle", "sending_to"]

_sending = threading.local()


@contextmanager
def sending_to(scope: str | None) -> Iterator[list[object]]:
    """Pickle, inside this block, for tasks of the executor with this scope.

    Yields the list of primitives pickled in the block: the sender keeps them
    alive until the receiver has opened them.
    """
    previous = getattr(_sending, "scope", None), getattr(_sending, "sent", None)
    sent: list[object] = []
    _sending.scope, _sending.sent = scope, sent
    try:
        yield sent
    finally:
        _sending.scope, _sending.sent = previous


def check_send(primitive: object, scope: str | None) -> None:
    """Raise :class:`TypeError` unless pickling for the primitive's own executor."""
    kind = type(primitive).__name__.removeprefix("Local").removeprefix("Shared")
    if scope is None:
        raise TypeError(
            f"this unirun.{kind} belongs to an executor whose tasks share its "
            "process, so it cannot be sent to another process; create it with "
            f"ProcessExecutor().{kind}() or AutoExecutor().{kind}() to share it "
            "across processes"
        )
    if getattr(_sending, "scope", None) != scope:
        raise TypeError(
            f"this unirun.{kind} can only be passed to tasks of the executor that "
            "created it (as an argument, or in an item of that executor's queues "
            "and dicts); anywhere else (a task's result, another executor, "
            "pickle.dumps()) a pickled copy would be disconnected from it"
        )
    _sending.sent.append(primitive)


def refuse_pickle(primitive: object) -> NoReturn:
    """``__reduce__`` of an in-process primitive: it cannot leave its process."""
    check_send(primitive, None)
    raise AssertionError("unreachable")  # pragma: no cover


def _pickled(item: object) -> bytes | None:
    try:  # the default protocol, as multiprocessing's queues
        return pickle.dumps(item, pickle.DEFAULT_PROTOCOL)
    except Exception:
        return None


#: Types whose pickle never refers to another module's objects.
_PLAIN: Final = frozenset({bytes, bytearray, str, int, float, complex, bool})


def quick_dumps(item: object) -> bytes | None:
    """``item``'s plain pickle if it surely needs no more; else None (use dumps).

    Scanning a large pickle for ``__main__`` costs more than pickling it: a
    plain bytes or str item skips the scan.
    """
    data = _pickled(item)
    if data is not None and (type(item) in _PLAIN or b"__main__" not in data):
        return data
    return None


def dumps(item: object, scope: str, action: str) -> bytes:
    """Pickle ``item`` for a primitive of the executor with ``scope``.

    Plain pickle first, without the bookkeeping of ``scope``: most items hold
    no primitive. A reference into ``__main__`` does not resolve in a worker,
    whose ``__main__`` is another module, so such items go by value through
    cloudpickle, as tasks do; so do lambdas and local classes.

    Raises:
        TransferError: the item cannot be pickled; the message says which
            ``action`` failed (``"put {} on a queue"``, with the item's type).
    """
    data = quick_dumps(item)
    if data is not None:
        return data
    with sending_to(scope):
        if data is None:  # perhaps it holds one of this executor's primitives
            data = _pickled(item)
            if data is not None and b"__main__" not in data:
                return data
        try:
            by_value: bytes = cloudpickle.dumps(item, pickle.DEFAULT_PROTOCOL)
        except Exception as exc:
            raise TransferError(
                f"cannot {action.format(type(item).__name__)} shared with other "
                f"processes: it cannot be pickled ({exc})"
            ) from exc
        return by_value
