"""What auto knows about each callable, by the callable's identity, keeping none alive.

A table maps ``id(target)`` to an entry that refers back to its target weakly
(:func:`owner_ref`): a lookup checks that the entry's target is the very
object asked about, so a dead callable's id, reused by a new object, finds
nothing. A partial or closure made for one call is let go with its calls, and
what it carries with it; its entry stays (small) until the table is full. A
full table drops the gone entries, then its oldest, down to three quarters.
A dropped entry is retired (its target reads as gone): the fast paths' copies
of it (:func:`keep_known`) then find nothing either, and the target's next call
makes it a new entry, rather than being routed by one the table no longer has.

The target is the same object at every access (:func:`target_of`): a bound
method is known by its function, a C method bound to an object
(``buf.getvalue``) by its type's; like arguments, the objects they are bound
to share the verdict. A callable object is known by itself, or by its class's
``__call__`` where it takes no weak reference (a class with ``__slots__``).
"""

from __future__ import annotations

import itertools
import weakref
from types import (
    BuiltinMethodType,
    FunctionType,
    MethodType,
    MethodWrapperType,
    ModuleType,
)
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CACHE_SIZE",
    "Owned",
    "cached",
    "keep_known",
    "lookup",
    "make_room",
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
    """What ``fn``'s entry belongs to: the same object at every access."""
    func = getattr(fn, "__func__", None)
    if func is not None:  # a bound method: its function
        return func
    kind = type(fn)
    if kind is BuiltinMethodType or kind is MethodWrapperType:
        # A C method bound to an object, new at each access (a builtin
        # function is bound to its module, and stays).
        owner = getattr(fn, "__self__", None)
        if owner is None or isinstance(owner, ModuleType):
            return fn
        return _method_of(owner, fn.__name__) or fn
    if kind.__weakrefoffset__ == 0 and not isinstance(fn, type):
        # An object that takes no weak reference (slots): by its class's
        # __call__, where written in Python, rather than kept alive.
        call = getattr(kind, "__call__", None)  # noqa: B004
        if type(call) is FunctionType:
            return call
    return fn


def _method_of(owner: object, name: str) -> object | None:
    """The method ``name`` of ``owner``'s type (of ``owner`` first, if a type)."""
    classes = type(owner).__mro__
    if isinstance(owner, type):
        classes = (*owner.__mro__, *classes)
    for cls in classes:
        method: object = vars(cls).get(name)
        if method is not None:
            return method
    return None


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
    """``target``'s entry, made (``make(target)``) if missing, as the newest
    (call with the table's lock held). A full table makes room first: see
    :func:`make_room`."""
    entry = lookup(entries, target)
    if entry is None:
        key = id(target)
        if entries.pop(key, None) is None and len(entries) >= CACHE_SIZE:
            make_room(entries)
        entry = entries[key] = make(target)  # the newest, wherever it was
    return entry


def make_room(entries: dict[int, Any]) -> None:
    """Drop the entries whose target is gone, then the oldest, down to three
    quarters of :data:`CACHE_SIZE`: the table is looked through once per
    quarter of its size of new targets, not at each. An entry whose ``probe``
    runs stays (calls wait behind it); one dropped is retired."""
    for key in [key for key, entry in entries.items() if entry.owner() is None]:
        del entries[key]
    excess = len(entries) - CACHE_SIZE * 3 // 4
    idle = (k for k, e in entries.items() if getattr(e, "probe", None) is None)
    for key in list(itertools.islice(idle, max(0, excess))):
        entries.pop(key).owner = _retired


def _retired() -> None:
    """The owner of a dropped entry: its target reads as gone."""
    return None


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
