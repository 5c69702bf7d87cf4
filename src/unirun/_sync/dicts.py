"""Dict: a mapping shared by an executor's tasks, every operation atomic.

:class:`Table` writes the mapping's methods once over a few storage hooks. In
this process (:class:`LocalDict`) the storage is a dict under a lock; across
processes, a log in shared memory (:mod:`.logdicts`); on a Dask cluster, the
scheduler (``_backends/_dask/dicts.py``).
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import (
    Callable,
    ItemsView,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from typing import Any, Final, NoReturn, Self, TypeVar

from .made import MadeByExecutor
from .sending import refuse_pickle

__all__ = ["Dict", "LocalDict", "Table"]

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")
_MISSING: Final[Any] = object()


class Dict(MadeByExecutor, MutableMapping[K, V]):
    """A mapping shared by an executor's tasks: every operation is atomic.

    Create one with ``executor.Dict()``; pass it to tasks as an argument. It
    has :class:`dict`'s methods; ``setdefault``, ``pop``, ``popitem``,
    ``update``, ``get`` and ``clear`` are each one atomic operation, and
    ``keys()``, ``values()`` and ``items()`` are views of one consistent
    snapshot. On executors whose tasks run in other processes, keys and values
    are pickled: reading gives a copy, so change a value by storing it again.
    """

    __slots__ = ()

    @abstractmethod
    def copy(self) -> dict[K, V]:
        """Return a plain :class:`dict` with the current contents."""

    def __reversed__(self) -> Iterator[K]:
        return reversed(list(self))  # one snapshot, as __iter__

    def __or__(self, other: object) -> dict[K, V]:
        """``d | other``: a plain :class:`dict` of both, as :meth:`copy` is."""
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other: object) -> dict[K, V]:
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = dict(other)
        merged.update(self.copy())
        return merged

    def __ior__(self, other: Any) -> Self:  # type: ignore[misc]  # as dict: in place
        """``d |= other``: :meth:`update`, one atomic operation."""
        self.update(other)
        return self


class Table(Dict[K, V]):
    """The mapping's methods over storage hooks (called with ``_hold`` taken)."""

    __slots__ = ()

    @abstractmethod
    def _hold(self) -> None:
        """Take the lock for a change and bring the contents up to date."""

    @abstractmethod
    def _let_go(self) -> None:
        """Release the lock taken by :meth:`_hold`."""

    @abstractmethod
    def _reading(self) -> Callable[[], object]:
        """Take what a read needs (contents current); return its release."""

    @abstractmethod
    def _contents(self) -> dict[K, Any]:
        """Key -> stored form, current (while held or reading)."""

    @abstractmethod
    def _prepare(self, key: K, value: V) -> Any:
        """The stored form of ``value`` for ``key`` (nothing held)."""

    @abstractmethod
    def _value(self, stored: Any) -> V:
        """The value from its stored form."""

    @abstractmethod
    def _store(self, pairs: list[tuple[K, Any]]) -> None:
        """Set each key to its stored form, all at once (held)."""

    @abstractmethod
    def _remove(self, key: K) -> None:
        """Delete ``key``, which is present (held)."""

    @abstractmethod
    def _wipe(self) -> None:
        """Delete every key (held)."""

    def _look(self, read: Callable[[dict[K, Any]], R]) -> R:
        release = self._reading()
        try:
            return read(self._contents())
        finally:
            release()

    def _change(self, change: Callable[[dict[K, Any]], R]) -> R:
        self._hold()
        try:
            return change(self._contents())
        finally:
            self._let_go()

    def __getitem__(self, key: K) -> V:
        return self._value(self._look(lambda contents: contents[key]))

    def get(self, key: K, default: Any = None) -> Any:
        stored = self._look(lambda contents: contents.get(key, _MISSING))
        return default if stored is _MISSING else self._value(stored)

    def __contains__(self, key: object) -> bool:
        return self._look(lambda contents: key in contents)

    def __len__(self) -> int:
        return self._look(len)

    def __iter__(self) -> Iterator[K]:
        return iter(self._look(list))

    def copy(self) -> dict[K, V]:
        stored = self._look(lambda contents: list(contents.items()))
        return {key: self._value(value) for key, value in stored}

    def keys(self) -> KeysView[K]:
        return self.copy().keys()

    def values(self) -> ValuesView[V]:
        return self.copy().values()

    def items(self) -> ItemsView[K, V]:
        return self.copy().items()

    def __setitem__(self, key: K, value: V) -> None:
        pairs = [(key, self._prepare(key, value))]
        self._change(lambda contents: self._store(pairs))

    def __delitem__(self, key: K) -> None:
        def delete(contents: dict[K, Any]) -> None:
            if key not in contents:
                raise KeyError(key)
            self._remove(key)

        self._change(delete)

    def setdefault(self, key: K, default: Any = None) -> Any:
        pairs = [(key, self._prepare(key, default))]

        def set_default(contents: dict[K, Any]) -> Any:
            stored = contents.get(key, _MISSING)
            if stored is _MISSING:
                self._store(pairs)
                return pairs[0][1]
            return stored

        return self._value(self._change(set_default))

    def pop(self, key: K, default: Any = _MISSING) -> Any:
        def take(contents: dict[K, Any]) -> Any:
            stored = contents.get(key, _MISSING)
            if stored is not _MISSING:
                self._remove(key)
            return stored

        stored = self._change(take)
        if stored is not _MISSING:
            return self._value(stored)
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self) -> tuple[K, V]:
        def take_last(contents: dict[K, Any]) -> tuple[K, Any]:
            if not contents:
                raise KeyError("popitem(): dictionary is empty")
            key = next(reversed(contents))  # the last inserted, as dict does
            stored = contents[key]
            self._remove(key)
            return key, stored

        key, stored = self._change(take_last)
        return key, self._value(stored)

    def update(self, other: Any = (), /, **kwargs: V) -> None:
        if isinstance(other, Mapping):
            pairs = list(other.items())
        elif hasattr(other, "keys"):
            pairs = [(key, other[key]) for key in other.keys()]  # noqa: SIM118  # as dict.update
        else:
            pairs = [(key, value) for key, value in other]
        pairs += kwargs.items()
        prepared = [(key, self._prepare(key, value)) for key, value in pairs]
        if prepared:
            self._change(lambda contents: self._store(prepared))

    def clear(self) -> None:
        self._change(lambda contents: self._wipe())

    def _describe(self, where: str) -> str:
        return f"<unirun.Dict {self.copy()!r} ({where})>"


class LocalDict(Table[K, V]):
    """A :class:`unirun.Dict` for threads and coroutines: a dict under a lock.

    Values are the objects themselves, not copies.
    """

    def __init__(self) -> None:
        self._data: dict[K, V] = {}
        self._lock = threading.RLock()  # a key's __eq__ may read the dict

    def _hold(self) -> None:
        self._lock.acquire()

    def _let_go(self) -> None:
        self._lock.release()

    def _reading(self) -> Callable[[], object]:
        self._lock.acquire()
        return self._lock.release

    def _contents(self) -> dict[K, Any]:
        return self._data

    def __getitem__(self, key: K) -> V:
        with self._lock:
            return self._data[key]

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value

    def _prepare(self, key: K, value: V) -> Any:
        hash(key)  # an unhashable key fails here, as with dict
        return value

    def _value(self, stored: Any) -> V:
        return stored  # type: ignore[no-any-return]

    def _store(self, pairs: list[tuple[K, Any]]) -> None:
        self._data.update(pairs)

    def _remove(self, key: K) -> None:
        del self._data[key]

    def _wipe(self) -> None:
        self._data.clear()

    def __reduce__(self) -> NoReturn:
        refuse_pickle(self)

    def __repr__(self) -> str:
        return self._describe("threads and coroutines")


def _set(
    cache: dict[Any, tuple[bytes, bytes]], key: Any, stored: tuple[bytes, bytes]
) -> None:
    """Set ``key`` as dict does: a key already there (1 for True) stays as it was."""
    old = cache.get(key)
    cache[key] = stored if old is None else (old[0], stored[1])
