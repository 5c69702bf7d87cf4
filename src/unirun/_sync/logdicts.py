"""The :class:`unirun.Dict` shared with processes: a log of pickled changes.

The log is in a file in ``/dev/shm``, committed under a monitor's robust
mutex; each process replays what is new into its own cache of the mapping, so
a read costs a dict lookup and an unpickle, and nothing runs in a server
process::

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
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .dicts import Table, _set
from .sending import dumps, quick_dumps
from .shared import MonitorShared

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["SharedDict"]

K = TypeVar("K")
V = TypeVar("V")

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
            seen = self._generation, self._position
            position = self._append(record)
            if self._too_long():
                self._compact()
                return
        finally:
            monitor.release()
        if position is not None:  # current before: so it stays, with this change
            with self._lock:
                # Unless another thread moved the copy on meanwhile (past this
                # change, maybe into a rewritten log): it is newer then.
                if (self._generation, self._position) == seen:
                    _set(self._cache, key, stored)
                    self._position, self._version = position

    def _catch_up(self) -> None:
        """Replay what other processes wrote since this one looked (mutex held)."""
        words = self._words
        if words[_GENERATION] != self._generation:  # rewritten: start over
            with self._lock:  # with the place: see __setitem__
                self._cache.clear()
                self._generation, self._position = words[_GENERATION], words[_START]
        end, position = words[_END], self._position
        if position < end:
            self._replay(os.pread(self._log, end - position, position))
            with self._lock:
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
