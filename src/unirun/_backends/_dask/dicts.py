"""The Dask backend's Dict: a log of pickled changes on the scheduler.

The scheduler keeps the log as bytes in a :class:`.ledger.Ledger` log and never
unpickles it; each process replays what is new into its own copy, keyed by
the unpickled keys, so keys compare as in a dict (``1``, ``1.0`` and ``True``
are one key). A change is written the way a compare-and-swap is::

    d[k] = v   pickle k, v -> apply the change to this process's copy ->
               append its record if the log is still where the copy is
               [one round trip]; if not, replay what was missed, try again
    d[k]       catch up with the log [one round trip], read the copy

No lock is held between round trips, so a process that dies mid-change leaves
nothing half done or held. When the log holds many records per key, a writer
rewrites it as one record per key (a new generation, from scratch for
readers).
"""

from __future__ import annotations

import pickle
import threading
import uuid
from typing import TYPE_CHECKING, Any, Final, TypeVar

from ..._sync.dicts import Table, _set
from .ledger import call
from .remote import scheduler_address
from .tokens import dumps_by_value

if TYPE_CHECKING:
    from collections.abc import Callable

    import distributed

__all__ = ["DaskDict"]

K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")

# A record: [operation, pickled key, pickled value].
_SET, _DELETE, _CLEAR = 1, 2, 3
#: Rewrite the log once it holds this many records more than twice the keys.
_SLACK: Final = 256

#: A change for this process's copy: (operation, key, (pickled key, value)).
_Change = tuple[int, Any, tuple[bytes, bytes]]


class DaskDict(Table[K, V]):
    """A :class:`unirun.Dict` held by the Dask scheduler as a log of changes."""

    def __init__(self, client: distributed.Client) -> None:
        self._address = scheduler_address(client)
        self._name = f"unirun-dict-{uuid.uuid4().hex}"
        self._start_copy()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_dict, (self._address, self._name))

    def _start_copy(self) -> None:
        # This process's copy: key -> (pickled key, pickled value), and where in
        # the log (generation, position) it is up to date.
        self._copy: dict[Any, tuple[bytes, bytes]] = {}
        self._generation, self._position = 0, 0
        self._lock = threading.RLock()  # a key's __eq__ may read the dict
        self._pending: list[_Change] = []

    # -- the log --------------------------------------------------------------------

    def _catch_up(self) -> bool:
        """Replay what this copy has not seen; return whether there was any."""
        answer = call(
            self._address,
            "log_read",
            name=self._name,
            generation=self._generation,
            position=self._position,
        )
        return self._replay(*answer)

    def _replay(self, generation: int, position: int, records: list[Any]) -> bool:
        fresh = generation != self._generation
        changes: list[_Change] = []
        for operation, kb, vb in records:  # unpickled first: a failure changes nothing
            key = None if operation == _CLEAR else pickle.loads(kb)
            changes.append((operation, key, (kb, vb)))
        if fresh:
            self._copy.clear()
        self._apply(changes)
        self._generation, self._position = generation, position + len(records)
        return fresh or bool(records)

    def _apply(self, changes: list[_Change]) -> None:
        copy = self._copy
        for operation, key, stored in changes:
            if operation == _SET:
                _set(copy, key, stored)
            elif operation == _DELETE:
                copy.pop(key, None)
            else:
                copy.clear()

    def _change(self, change: Callable[[dict[K, Any]], R]) -> R:
        with self._lock:
            while True:
                self._pending = []
                try:
                    result = change(self._copy)
                except Exception:
                    if not self._catch_up():  # the copy was current: it stands
                        raise
                    continue
                pending, self._pending = self._pending, []
                if not pending:  # nothing to write: right if the copy was current
                    if self._catch_up():
                        continue
                    return result
                if self._append(pending):
                    return result

    def _append(self, pending: list[_Change]) -> bool:
        """Append the changes if the log is where this copy is; else catch up."""
        records = [[operation, kb, vb] for operation, _, (kb, vb) in pending]
        answer = call(
            self._address,
            "log_append",
            name=self._name,
            generation=self._generation,
            position=self._position,
            records=records,
        )
        if not answer[0]:
            self._replay(*answer[1:])
            return False
        self._apply(pending)
        self._position += len(records)
        if self._position > 2 * len(self._copy) + _SLACK:
            self._rewrite()
        return True

    def _rewrite(self) -> None:
        """Write the log anew, one record per key, if nobody wrote meanwhile."""
        records = [[_SET, kb, vb] for kb, vb in self._copy.values()]
        if call(
            self._address,
            "log_rewrite",
            name=self._name,
            generation=self._generation,
            position=self._position,
            records=records,
        ):
            self._generation, self._position = self._generation + 1, len(records)

    # -- Table's hooks ------------------------------------------------------------

    def _hold(self) -> None:
        self._lock.acquire()
        self._catch_up()

    def _let_go(self) -> None:
        self._lock.release()

    def _reading(self) -> Callable[[], object]:
        self._hold()
        return self._let_go

    def _contents(self) -> dict[K, Any]:
        return self._copy

    def _prepare(self, key: K, value: V) -> tuple[bytes, bytes]:
        hash(key)  # an unhashable key fails here, as with dict
        what = "store {} in a dict of a Dask cluster"
        return dumps_by_value(key, what), dumps_by_value(value, what)

    def _value(self, stored: tuple[bytes, bytes]) -> V:
        value: V = pickle.loads(stored[1])
        return value

    def _store(self, pairs: list[tuple[K, Any]]) -> None:
        self._pending.extend((_SET, key, stored) for key, stored in pairs)

    def _remove(self, key: K) -> None:
        self._pending.append((_DELETE, key, (self._copy[key][0], b"")))

    def _wipe(self) -> None:
        self._pending.append((_CLEAR, None, (b"", b"")))

    def __repr__(self) -> str:
        return self._describe("on a Dask cluster")


def _rebuild_dict(address: str, name: str) -> DaskDict[Any, Any]:
    mapping: DaskDict[Any, Any] = DaskDict.__new__(DaskDict)
    mapping._address, mapping._name = address, name
    mapping._start_copy()
    return mapping
