"""How the sender's ``__main__`` definitions are rebuilt in a worker process.

cloudpickle sends functions and classes of ``__main__`` by value. These pieces,
used by :mod:`._transfer`'s pickler, make what arrives behave as in a stdlib
worker, whose ``__main__`` is the script's own (forked, or imported again):

* one ``__main__`` namespace per worker, shared by every function sent to it,
  where module-level state (a cache, a counter) lives on between calls;
* a class sent again is the class already there, with its attributes as the
  worker's tasks left them (a class-level cache, a counter);
* an ``lru_cache`` function keeps its cache while its definition is the same;
* code keeps its real file name (and a notebook cell its source lines), so
  that worker tracebacks show the source line.

Light imports only: every worker process loads this module.
"""

from __future__ import annotations

import functools
import linecache
import os
import sys
import types
import weakref
from typing import Any

import cloudpickle

__all__ = [
    "CACHED",
    "MainGlobals",
    "cached_reduce",
    "class_once",
    "code_reducers",
    "inherit_main",
    "main_module",
    "main_namespace",
    "program",
    "setstate_in_main",
]

#: The module every ``__main__`` function sent to a worker is bound to.
_MAIN = "__unirun_main__"


def main_module() -> types.ModuleType:
    """The module ``__main__`` functions of the sender are bound to, here.

    In a worker process, ``sys.modules["__main__"]`` is this module too.
    """
    module = sys.modules.get(_MAIN)
    if module is None:
        module = sys.modules.setdefault(_MAIN, types.ModuleType("__main__"))
    return module


def inherit_main() -> None:
    """In a worker forked from the caller: bind the ``__main__`` functions sent
    by value to the ``__main__`` it inherited (see :func:`main_module`)."""
    sys.modules[_MAIN] = sys.modules["__main__"]


def main_namespace(program: str | None = None) -> dict[str, Any]:
    """The namespace of :func:`main_module`; with ``program`` (a token of the
    sending program), that program's own: a Dask worker serves many programs
    over its life, often at once, and each has a ``__main__`` of its own."""
    if program is None:
        return main_module().__dict__
    name = f"{_MAIN}{program}"
    module = sys.modules.get(name)
    if module is None:
        module = sys.modules.setdefault(name, types.ModuleType("__main__"))
    return module.__dict__


_PROGRAM = ""


def _new_program() -> None:
    global _PROGRAM
    _PROGRAM = os.urandom(12).hex()


_new_program()
if hasattr(os, "register_at_fork"):  # a forked child is a program of its own
    os.register_at_fork(after_in_child=_new_program)


def program() -> str:
    """A token of this program (this process, since it started or forked)."""
    return _PROGRAM


class MainGlobals(dict[str, Any]):
    """Stands for the sender's ``__main__`` namespace in a pickle: the
    receiver's one ``__main__`` (a process worker, which serves one program),
    or with ``program``, that program's own there (a Dask worker)."""

    def __init__(self, program: str | None = None) -> None:
        super().__init__()
        self.program = program

    def __reduce__(self) -> tuple[Any, ...]:
        return (main_namespace, () if self.program is None else (self.program,))


def _code_with_file(
    reduced: tuple[Any, ...], filename: str, lines: list[str] | None
) -> types.CodeType:
    rebuild, arguments = reduced[0], reduced[1]
    code: types.CodeType = rebuild(*arguments).replace(co_filename=filename)
    if lines is not None and filename not in linecache.cache:
        linecache.cache[filename] = (len(lines), None, lines, filename)
    return code


_cloudpickle_code_reduce = getattr(cloudpickle.cloudpickle, "_code_reduce", None)


def code_reducers() -> dict[type, Any]:
    """The pickler's reducer of code objects, keeping each one's file name (none
    where this cloudpickle has no code reducer of its own to build on)."""
    if _cloudpickle_code_reduce is None:
        return {}
    return {types.CodeType: _code_reduce}


def _code_reduce(code: types.CodeType) -> tuple[Any, ...]:
    assert _cloudpickle_code_reduce is not None
    filename = code.co_filename
    lines = None
    if not os.path.exists(filename):  # a notebook cell, say: send its source
        entry = linecache.cache.get(filename)
        if entry is not None and len(entry) == 4:  # not a lazy (1-tuple) entry
            lines = entry[2]
    return (_code_with_file, (_cloudpickle_code_reduce(code), filename, lines))


_DEFINITIONS = (type, types.FunctionType, types.ModuleType)


def setstate_in_main(function: types.FunctionType, state: tuple[Any, Any]) -> None:
    """cloudpickle's state setter, except for the globals of ``__main__``.

    A value already in the receiver's namespace stays (module-level state lives
    on in a worker, as in a stdlib worker); definitions (functions, classes,
    modules) are replaced, so that a function edited in a notebook is used.
    """
    attributes, slots = state
    namespace = function.__globals__
    for name, value in slots["__globals__"].items():
        if name not in namespace or isinstance(value, _DEFINITIONS):
            namespace[name] = value
    slots["__globals__"] = {}
    cloudpickle.cloudpickle._function_setstate(function, (attributes, slots))


CACHED = type(functools.lru_cache(None)(len))


def _same_function(a: types.FunctionType, b: types.FunctionType) -> bool:
    """Whether two definitions of a function are the same (a notebook cell run
    again unchanged), defaults included."""
    return (
        a.__code__ == b.__code__
        and a.__defaults__ == b.__defaults__
        and a.__kwdefaults__ == b.__kwdefaults__
    )


def _cached(
    wrapped: types.FunctionType, name: str | None, maxsize: int | None, typed: bool
) -> Any:
    """A ``functools.lru_cache`` function of ``__main__``, rebuilt in a worker.

    ``name``: the global of ``__main__`` it is (or None): the one already there
    is kept while its function is the same (its cache lives on, and every
    function that calls it by that name shares it); else a new one takes it.
    """
    namespace = wrapped.__globals__
    existing = namespace.get(name) if name is not None else None
    if (
        type(existing) is CACHED
        and _same_function(existing.__wrapped__, wrapped)  # type: ignore[arg-type]
        and existing.cache_parameters() == {"maxsize": maxsize, "typed": typed}
    ):
        return existing
    cached = functools.lru_cache(maxsize, typed)(wrapped)
    if name is not None:
        namespace[name] = cached
    return cached


def cached_reduce(obj: Any) -> tuple[Any, ...] | None:
    """How an ``lru_cache`` function of ``__main__`` travels: by value (it
    pickles by name, which a worker's ``__main__`` lacks). None for one of an
    importable module, which pickles by name."""
    if getattr(obj, "__module__", None) != "__main__":
        return None
    wrapped = obj.__wrapped__
    if type(wrapped) is not types.FunctionType:
        return None
    main = sys.modules.get("__main__")
    name: str | None = obj.__qualname__
    if name is None or getattr(main, name, None) is not obj:
        name = None  # not the global of that name (a method, another name)
    settings = obj.cache_parameters()
    return (_cached, (wrapped, name, settings["maxsize"], settings["typed"]))


_cloudpickle_class_setstate = getattr(cloudpickle.cloudpickle, "_class_setstate", None)
#: The classes rebuilt here from a sender's definition: each is set up once.
_BUILT: weakref.WeakSet[type] = weakref.WeakSet()


def class_once(reduced: Any) -> Any:
    """cloudpickle's reduction of a class, set up only once per receiver: a
    class sent again (with another function, or with an instance) is the one
    already there (cloudpickle finds it by the sender's id for it), and keeps
    its attributes as that process's code left them, as in a stdlib worker,
    where a class is defined once. A class defined anew (a notebook cell run
    again) is another class, built afresh. Anything else is returned as is."""
    if (
        type(reduced) is tuple
        and len(reduced) == 6
        and reduced[5] is _cloudpickle_class_setstate
    ):
        return (*reduced[:5], _class_setstate_once)
    return reduced


def _class_setstate_once(cls: type, state: Any) -> type:
    if cls in _BUILT:
        return cls
    assert _cloudpickle_class_setstate is not None  # else class_once left it
    built: type = _cloudpickle_class_setstate(cls, state)
    _BUILT.add(built)
    return built
