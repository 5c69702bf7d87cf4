"""Dict: a mapping shared by an executor's tasks, every operation atomic.

:class:`Table` writes the mapping's methods once over a few storage hooks. In
this process (:class:`LocalDict`) the storage is a dict under a lock. Across
processes (:class:`SharedDict`) it is a log of pickled changes in a file in
``/dev/shm``, committed under a monitor's robust mutex; each process replays
what is new into its own cache of the mapping, so a read costs a dict lookup
and an unpickle, and nothing runs in a server process::

    d[k] = v   pickle k, v -> [mutex] replay others' changes, append the
               record, commit end+version [/mutex]
    d[k]       version unchanged? read the cache : [mutex] replay [/mutex]

When the log holds many records per key, a writer rewrites it as one record
per key (in space nobody reads) and commits the new start.
"""

from __future__ import annotations

import os
import pickle
import struct
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
from typing import Any, Final, NoReturn, TypeVar

from .made import MadeByExecutor
from .sending import dumps, quick_dumps, refuse_pickle
from .shared import MonitorShared

__all__ = ["Dict", "LocalDict", "SharedDict", "Table"]

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


# The log: records of (operation, key size, value size), key, value.
_RECORD = struct.Struct("<BII")
_SET, _DELETE, _CLEAR = 1, 2, 3
# Dict words: the log's start and end in its file, its size after the last
# rewrite, a version bumped by every change, a generation bumped by every rewrite.
_START, _END, _BASE, _VERSION, _GENERATION = range(5)
#: Rewrite the log once it has grown this much past twice its last rewrite's size
#: (bytes): a writer then replays what others wrote since, once per megabyte.
_SLACK: Final = 1 << 20


class SharedDict(MonitorShared, Table[K, V]):
    """A :class:`unirun.Dict` shared with worker processes."""

    def __init__(self, scope: str) -> None:
        self._create_monitor(scope, overflow=True)
        self._start_cache()

    def _open_more(self, more: tuple[Any, ...]) -> None:
        self._start_cache()

    def _start_cache(self) -> None:
        segment = self._monitor.segment
        assert segment.overflow_fd is not None
        self._log = segment.overflow_fd
        self._words = self._monitor.words
        # This process's copy: key -> (pickled key, pickled value), and where in
        # the log (generation, position, version) it is up to date.
        self._cache: dict[Any, tuple[bytes, bytes]] = {}
        self._generation, self._position, self._version = 0, 0, 0
        self._lock = threading.Lock()  # this process's threads and the cache

    def _hold(self) -> None:
        self._monitor.acquire()
        self._catch_up()

    def _let_go(self) -> None:
        self._monitor.release()

    def _reading(self) -> Callable[[], object]:
        lock = self._lock
        lock.acquire()
        if self._words[_VERSION] == self._version:  # nothing new: no mutex
            return lock.release
        lock.release()
        self._hold()
        return self._let_go

    def _contents(self) -> dict[K, Any]:
        return self._cache

    def __getitem__(self, key: K) -> V:
        with self._lock:  # the common read: nothing changed since the last look
            if self._words[_VERSION] == self._version:
                stored = self._cache[key]
                return self._value(stored)
        return super().__getitem__(key)

    def __setitem__(self, key: K, value: V) -> None:
        # A write need not see what others wrote: it appends without replaying
        # their records, and this process catches up when it next reads.
        stored = self._prepare(key, value)
        kb, vb = stored
        record = _RECORD.pack(_SET, len(kb), len(vb)) + kb + vb
        monitor = self._monitor
        monitor.acquire()
        try:
            position = self._append(record)
            if self._too_long():
                self._compact()
                return
        finally:
            monitor.release()
        if position is not None:  # current before: so it stays, with this change
            with self._lock:
                # Unless another thread caught up meanwhile (this change
                # included): its copy is newer, maybe of a rewritten log.
                if self._version < position[1]:
                    _set(self._cache, key, stored)
                    self._position, self._version = position

    def _catch_up(self) -> None:
        """Replay what other processes wrote since this one looked (mutex held)."""
        words = self._words
        if words[_GENERATION] != self._generation:  # rewritten: start over
            with self._lock:
                self._cache.clear()
            self._generation, self._position = words[_GENERATION], words[_START]
        end = words[_END]
        if self._position < end:
            self._replay(os.pread(self._log, end - self._position, self._position))
            self._position = end
        self._version = words[_VERSION]

    def _replay(self, log: bytes) -> None:
        changes: list[tuple[int, Any, tuple[bytes, bytes]]] = []
        at = 0
        while at < len(log):
            operation, key_size, value_size = _RECORD.unpack_from(log, at)
            at += _RECORD.size
            key_bytes = log[at : at + key_size]
            value_bytes = log[at + key_size : at + key_size + value_size]
            at += key_size + value_size
            key = None if operation == _CLEAR else pickle.loads(key_bytes)
            changes.append((operation, key, (key_bytes, value_bytes)))
        with self._lock:  # unpickled first: a key that fails changes nothing
            cache = self._cache
            for operation, key, stored in changes:
                if operation == _SET:
                    _set(cache, key, stored)
                elif operation == _DELETE:
                    cache.pop(key, None)
                else:
                    cache.clear()

    def _prepare(self, key: K, value: V) -> tuple[bytes, bytes]:
        hash(key)  # an unhashable key fails here, as with dict
        kb, vb = quick_dumps(key), quick_dumps(value)
        if kb is None:
            kb = dumps(key, self._scope, "store {} in a dict")
        if vb is None:
            vb = dumps(value, self._scope, "store {} in a dict")
        return kb, vb

    def _value(self, stored: tuple[bytes, bytes]) -> V:
        value: V = pickle.loads(stored[1])
        return value

    def _store(self, pairs: list[tuple[K, Any]]) -> None:
        log = b"".join(
            _RECORD.pack(_SET, len(kb), len(vb)) + kb + vb for _, (kb, vb) in pairs
        )
        self._apply(self._append(log), pairs)

    def _remove(self, key: K) -> None:
        key_bytes = self._cache[key][0]
        position = self._append(_RECORD.pack(_DELETE, len(key_bytes), 0) + key_bytes)
        self._apply(position, [(key, None)])

    def _wipe(self) -> None:
        self._apply(self._append(_RECORD.pack(_CLEAR, 0, 0)), None)

    def _append(self, log: bytes) -> tuple[int, int] | None:
        """Write records after the log's end and commit them (mutex held).

        If this process's copy was current, returns the position and version
        at which it is current again once the same change is applied to it.
        """
        words = self._words
        end = words[_END]
        os.pwrite(self._log, log, end)
        version = words[_VERSION] + 1
        self._monitor.commit2(_END, end + len(log), _VERSION, version)
        if self._position != end or self._generation != words[_GENERATION]:
            return None
        return end + len(log), version

    def _apply(
        self, position: tuple[int, int] | None, pairs: list[tuple[K, Any]] | None
    ) -> None:
        """Apply this process's own change to its current copy (mutex held).

        ``pairs`` of (key, stored form), None to delete the key; None to clear.
        """
        assert position is not None  # changes other than d[k] = v catch up first
        with self._lock:
            if pairs is None:
                self._cache.clear()
            for key, stored in pairs or ():
                if stored is None:
                    del self._cache[key]
                else:
                    _set(self._cache, key, stored)
            self._position, self._version = position
        if self._too_long():
            self._compact()

    def _too_long(self) -> bool:
        """Whether the log has grown enough since its last rewrite to rewrite it."""
        words = self._words
        return bool(words[_END] - words[_START] > 2 * words[_BASE] + _SLACK)

    def _compact(self) -> None:
        """Write the log anew, one record per key (mutex held).

        The new log goes where nobody reads; the copy is brought up to date
        first if it is not.
        """
        words, monitor = self._words, self._monitor
        self._catch_up()
        log = b"".join(
            _RECORD.pack(_SET, len(kb), len(vb)) + kb + vb
            for kb, vb in self._cache.values()
        )
        start = 0 if len(log) <= words[_START] else words[_END]
        os.pwrite(self._log, log, start)
        monitor.commit(
            (_START, start),
            (_END, start + len(log)),
            (_BASE, len(log)),
            (_VERSION, words[_VERSION] + 1),
            (_GENERATION, words[_GENERATION] + 1),
        )
        if start == 0:
            os.ftruncate(self._log, len(log))
        self._generation, self._position = words[_GENERATION], start + len(log)
        self._version = words[_VERSION]

    def __repr__(self) -> str:
        return self._describe("shared with processes")


def _set(
    cache: dict[Any, tuple[bytes, bytes]], key: Any, stored: tuple[bytes, bytes]
) -> None:
    """Set ``key`` as dict does: a key already there (1 for True) stays as it was."""
    old = cache.get(key)
    cache[key] = stored if old is None else (old[0], stored[1])
