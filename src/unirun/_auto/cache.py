"""What auto knows about each callable, by the callable's identity, keeping none alive.

A table maps ``id(target)`` to an entry that refers back to its target weakly
(:func:`owner_ref`): a lookup checks that the entry's target is the very
object asked about, so a dead callable's id, reused by a new object, finds
nothing. A partial, closure or callable object made for one call is let go
with its calls, and what it carries with it; its entry stays (small) until the
table is full and drops its oldest.

The target of a bound method is its function (:func:`target_of`): the method
of any object shares it, and keeps no object alive.
"""

from __future__ import annotations

import weakref
from types import FunctionType, MethodType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CACHE_SIZE",
    "Owned",
    "cached",
    "keep_known",
    "lookup",
    "owner_ref",
    "target_of",
]

#: The most callables a table keeps entries for.
CACHE_SIZE = 4096


class Owned(Protocol):
    """An entry of a table: it knows its target, weakly where it can."""

    owner: Callable[[], object]


E = TypeVar("E", bound=Owned)


def target_of(fn: Callable[..., Any]) -> object:
    """What ``fn``'s entry belongs to: a bound method's function, else ``fn``."""
    func = getattr(fn, "__func__", None)
    return fn if func is None else func


def owner_ref(target: object) -> Callable[[], object]:
    """A weak reference to ``target``; a strong one for the few objects that
    take no weak reference (``operator.itemgetter``, a method descriptor)."""
    try:
        return weakref.ref(target)
    except TypeError:
        return lambda: target


def lookup(entries: dict[int, E], target: object) -> E | None:
    """``target``'s entry, if the table has one."""
    entry = entries.get(id(target))
    return entry if entry is not None and entry.owner() is target else None


def cached(entries: dict[int, E], target: object, make: Callable[[object], E]) -> E:
    """``target``'s entry, made (``make(target)``) if missing; the oldest goes
    past :data:`CACHE_SIZE` (call with the table's lock held)."""
    entry = lookup(entries, target)
    if entry is None:
        key = id(target)
        if key not in entries and len(entries) >= CACHE_SIZE:
            del entries[next(iter(entries))]
        entry = entries[key] = make(target)
    return entry


def keep_known(known: dict[int, E], fn: Callable[..., Any], entry: E) -> None:
    """Keep ``entry`` for a fast path's lookup of ``fn``: a plain function, or a
    method by its function (a partial or callable object never takes a fast
    path); ``known`` is emptied past :data:`CACHE_SIZE`. The lookup, on the
    hot path, is spelled inline::

        target = fn.__func__ if type(fn) is MethodType else fn
        entry = known.get(id(target))
        if entry is not None and entry.owner() is target: ...
    """
    target = fn.__func__ if type(fn) is MethodType else fn
    if type(target) is FunctionType:
        if len(known) >= CACHE_SIZE:
            known.clear()
        known[id(target)] = entry
