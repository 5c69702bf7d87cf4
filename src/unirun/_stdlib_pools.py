"""A unirun executor as an instance of the stdlib pool it replaces.

``ThreadExecutor`` subclasses ``ThreadPoolExecutor`` (asyncio's
``set_default_executor`` takes nothing else) and ``ProcessExecutor``
``ProcessPoolExecutor``, only for ``isinstance``: what those classes define and
unirun's do not is hidden, so none of the stdlib's code runs on attributes
unirun's classes do not have.
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import NoReturn

__all__ = ["hide_stdlib_code"]

_STDLIB_POOLS = frozenset({"concurrent.futures.thread", "concurrent.futures.process"})


class _Absent:
    """A name that only a stdlib pool among a backend's bases defines: reading
    it raises ``AttributeError``, as if that base were not there."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __get__(self, instance: object, owner: type | None = None) -> NoReturn:
        kind = (owner if owner is not None else type(instance)).__name__
        raise AttributeError(f"{kind!r} object has no attribute {self._name!r}")


def hide_stdlib_code(cls: type) -> None:
    """Hide from ``cls`` what a stdlib pool among its bases defines and it does
    not: that pool is a base only for ``isinstance`` (asyncio's default
    executor must be a ``ThreadPoolExecutor``), and its code would run on
    attributes unirun's class does not have."""
    for stdlib in cls.__mro__:
        if stdlib in (cf.Executor, object) or stdlib.__module__ not in _STDLIB_POOLS:
            continue
        for name in vars(stdlib):
            if name.startswith("__") and name.endswith("__"):
                continue  # the class's own bookkeeping; ours has its own
            owner = next(c for c in cls.__mro__ if name in vars(c))
            if owner is stdlib:
                setattr(cls, name, _Absent(name))
