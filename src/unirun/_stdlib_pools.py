"""A unirun executor as an instance of the stdlib pool it replaces.

``ThreadExecutor`` subclasses ``ThreadPoolExecutor`` (asyncio's
``set_default_executor`` takes nothing else) and ``ProcessExecutor``
``ProcessPoolExecutor``, only for ``isinstance``: what those classes define and
unirun's do not is hidden, so none of the stdlib's code runs on attributes
unirun's classes do not have. Their public methods are named after them, as the
stdlib's pools name theirs.
"""

from __future__ import annotations

import concurrent.futures as cf
from types import FunctionType
from typing import NoReturn

__all__ = ["hide_stdlib_code", "name_methods_after"]

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


def name_methods_after(cls: type) -> None:
    """Give ``cls`` its own copy of each public method it inherits from one of
    unirun's private bases, named after it: a call with a wrong signature then
    says ``ThreadExecutor.submit() missing 1 required positional argument``,
    as the stdlib says ``ThreadPoolExecutor.submit()``, never ``Front.submit()``.
    """
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next(c for c in cls.__mro__ if name in vars(c))
        method = vars(owner)[name]
        if owner is cls or type(method) is not FunctionType:
            continue
        if not owner.__module__.startswith("unirun."):
            continue  # public already (or the stdlib's): its name is right
        copy = FunctionType(
            method.__code__,
            method.__globals__,
            method.__name__,
            method.__defaults__,
            method.__closure__,
        )
        copy.__kwdefaults__ = method.__kwdefaults__
        copy.__dict__.update(method.__dict__)
        copy.__doc__ = method.__doc__
        copy.__annotations__ = method.__annotations__
        copy.__module__ = cls.__module__  # where pickle finds it by its name
        copy.__qualname__ = f"{cls.__qualname__}.{name}"
        copy.__wrapped__ = method  # type: ignore[attr-defined]  # see docs/conf.py
        setattr(cls, name, copy)
