"""Interpreter exit and ``fork``: what the executors' workers need of both.

One :class:`ExitRegistry` per backend: the live worker pools it must stop when
the interpreter exits (before daemon threads are frozen, as the stdlib pools
do), forgotten in a forked child, which owns none of its parent's workers.
:func:`after_fork_in_child` runs a callback in a forked child once every
registry has forgotten its parent's pools (so that a pool made then is kept).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ExitRegistry", "after_fork_in_child"]

K = TypeVar("K")

#: What runs in a forked child, in order: every registry's reset first.
_registries: list[ExitRegistry[Any]] = []
_child_callbacks: list[Callable[[], None]] = []


def after_fork_in_child(callback: Callable[[], None]) -> None:
    """Call ``callback`` in every child this process forks (``os.fork()``, a
    ``fork`` start method), after the registries forgot the parent's pools."""
    _child_callbacks.append(callback)


def _in_child() -> None:
    for registry in _registries:
        registry._after_fork()
    for callback in _child_callbacks:
        callback()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)


class ExitRegistry(Generic[K]):
    """Live objects to stop at interpreter exit, each with a value.

    ``on_exit`` receives every live ``(object, value)`` pair once, from the
    interpreter's thread-exit hook; ``in_child``, in a forked child, the
    parent's live objects, which the registry then forgets. :attr:`lock`
    guards :attr:`exiting`: a backend checks both under it before accepting
    work, so that nothing is accepted after the exit hook ran.
    """

    def __init__(
        self,
        on_exit: Callable[[list[tuple[K, Any]]], None],
        in_child: Callable[[list[K]], None] | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.exiting = False
        self._live: weakref.WeakKeyDictionary[K, Any] = weakref.WeakKeyDictionary()
        self._on_exit = on_exit
        self._in_child = in_child
        # Run before daemon threads are frozen, as concurrent.futures does.
        threading._register_atexit(self._at_exit)  # type: ignore[attr-defined]  # private, as stdlib uses it
        _registries.append(self)

    def add(self, obj: K, value: Any = None) -> None:
        """Stop ``obj`` at exit (unless it is collected or discarded first)."""
        self._live[obj] = value

    def discard(self, obj: K) -> None:
        """Forget ``obj``: it stopped by itself."""
        self._live.pop(obj, None)

    def _at_exit(self) -> None:
        with self.lock:
            self.exiting = True
        self._on_exit(list(self._live.items()))

    def _after_fork(self) -> None:
        # The child has none of the parent's workers, and the lock may have been
        # held by one of the parent's threads at the fork (bpo-45021).
        live = list(self._live)
        self._live = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()
        if self._in_child is not None:
            self._in_child(live)
