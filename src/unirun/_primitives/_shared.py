"""Primitives shared with worker processes: OS semaphores and shared memory.

Every blocking wait is a wait on a named POSIX semaphore, so it costs no
polling, honours time-outs in the kernel, and a Ctrl-C interrupts it without
leaving anything taken. State that is more than a counter (an event's flag, a
queue's items and counts) lives in a small shared-memory file guarded by a
semaphore used as a mutex. Nothing runs in a server process: a primitive works
for as long as any process holds it.

A primitive pickles only into tasks of the executor that created it (see
:func:`._waiting.sending_to`); a worker rebuilds it by opening the same
semaphores and mapping the same file, once per process.
"""

from __future__ import annotations

import _multiprocessing  # type: ignore[import-not-found]  # CPython's, no stubs
import atexit
import collections
import contextlib
import functools
import math
import mmap
import operator
import os
import pickle
import queue
import struct
import tempfile
import threading
import time
import uuid
import weakref
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

import cloudpickle

from .._errors import TransferError
from . import _api
from ._waiting import check_send, sending_to, take_in_thread

__all__ = [
    "SharedBoundedSemaphore",
    "SharedEvent",
    "SharedLock",
    "SharedQueue",
    "SharedSemaphore",
]

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

_SEM_MAX: Final = _multiprocessing.SemLock.SEM_VALUE_MAX
_SemLock = Any  # _multiprocessing.SemLock has no type stubs


class _Owned:
    """Owns named OS resources of this process; removes them when collected.

    Resources are named semaphores and files in ``/dev/shm``. Both are also
    registered with multiprocessing's resource tracker, which removes what a
    crashed process leaves behind. The tracker is told of a removal at once,
    except when the finalizer interrupted this thread's own call to it, which it
    does not support (it warns that the object "might leak"): then the news
    waits for the next creation or for exit. A forked child, which inherits the
    finalizer, removes nothing.
    """

    __slots__ = ("__weakref__",)

    _retired: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, semaphores: list[str], files: list[str]) -> None:
        self._forget_retired()
        tracked = [(name, "semaphore") for name in semaphores]
        tracked += [_tracked_file(path) for path in files if _tracked_file(path)[0]]
        for name, rtype in tracked:
            resource_tracker.register(name, rtype)
        weakref.finalize(self, _Owned._remove, semaphores, files, tracked, os.getpid())

    @classmethod
    def _remove(
        cls,
        semaphores: list[str],
        files: list[str],
        tracked: list[tuple[str, str]],
        pid: int,
    ) -> None:
        if os.getpid() != pid:
            return
        for name in semaphores:
            with contextlib.suppress(OSError):
                _multiprocessing.sem_unlink(name)
        for path in files:
            with contextlib.suppress(OSError):
                os.unlink(path)
        lock = getattr(resource_tracker._resource_tracker, "_lock", None)
        is_owned = getattr(lock, "_is_owned", None)
        if is_owned is None or is_owned():  # this finalizer interrupted it
            cls._retired.extend(tracked)  # list.extend is atomic: safe here
        else:
            cls._forget_retired()
            for name, rtype in tracked:
                resource_tracker.unregister(name, rtype)

    @classmethod
    def _forget_retired(cls) -> None:
        while cls._retired:
            resource_tracker.unregister(*cls._retired.pop())


atexit.register(_Owned._forget_retired)


def _tracked_file(path: str) -> tuple[str, str]:
    """The resource tracker's name for a file: only ``/dev/shm`` ones are known."""
    directory, name = os.path.split(path)
    if directory == "/dev/shm":
        return "/" + name, "shared_memory"
    return "", ""


def _new_sem(value: int, maxvalue: int) -> tuple[object, _SemLock]:
    """A named OS semaphore: (its owner, which unlinks it on collection; the lock)."""
    kind = 1  # multiprocessing.synchronize.SEMAPHORE: a plain counting semaphore
    while True:
        name = f"/unirun-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            sem = _multiprocessing.SemLock(kind, value, maxvalue, name, False)
        except FileExistsError:  # pragma: no cover  # 48 random bits collided
            continue
        return _Owned([name], []), sem


def _sem_state(sem: _SemLock) -> tuple[int, int, str]:
    return (sem.kind, sem.maxvalue, sem.name)


def _open_sem(state: tuple[int, int, str]) -> _SemLock:
    kind, maxvalue, name = state
    return _multiprocessing.SemLock._rebuild(0, kind, maxvalue, name)


def _stdlib_message(call: Callable[[], object]) -> str:
    try:
        call()
    except Exception as exc:
        return str(exc)
    raise AssertionError("the stdlib call was expected to fail")  # pragma: no cover


def _stdlib_messages() -> dict[str, str]:
    """The messages of the stdlib's errors, read from this Python's own objects.

    They change between versions (3.13 reworded the negative lock time-out):
    the shared primitives raise what threading and queue raise here.
    """
    held = threading.Lock()
    held.acquire()
    return {
        "nan": _stdlib_message(lambda: held.acquire(True, math.nan)),
        "too_large": _stdlib_message(
            lambda: held.acquire(True, threading.TIMEOUT_MAX * 2)
        ),
        "lock_nonblocking": _stdlib_message(lambda: held.acquire(False, 1)),
        "lock_negative": _stdlib_message(lambda: held.acquire(True, -2)),
        "unlocked": _stdlib_message(threading.Lock().release),
        "sem_negative": _stdlib_message(lambda: threading.Semaphore(-1)),
        "sem_nonblocking": _stdlib_message(
            lambda: threading.Semaphore().acquire(False, 1)
        ),
        "release_n": _stdlib_message(lambda: threading.Semaphore().release(0)),
        "too_many": _stdlib_message(threading.BoundedSemaphore().release),
        "queue_negative": _stdlib_message(lambda: queue.Queue().get(True, -1)),
        "task_done": _stdlib_message(queue.Queue().task_done),
    }


_MESSAGES: Final = _stdlib_messages()


def _check_number(timeout: object) -> None:
    """Raise the :class:`TypeError` ``threading.Lock`` raises for a non-number."""
    if not isinstance(timeout, float):
        operator.index(timeout)  # type: ignore[arg-type]  # raising is the point
    elif timeout != timeout:
        raise ValueError(_MESSAGES["nan"])


def _wait_timeout(timeout: float) -> float:
    """``timeout`` for a wait that will block, refused where ``threading`` does."""
    if timeout > threading.TIMEOUT_MAX:
        raise OverflowError(_MESSAGES["too_large"])
    return timeout


def _shm_dir() -> str | None:
    # /dev/shm is memory; elsewhere the temporary directory will do.
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


class _Segment:
    """A shared-memory file mapped into this process, and its overflow file."""

    __slots__ = ("__weakref__", "map", "overflow_fd", "owner", "path")

    def __init__(self, path: str, size: int, *, overflow: bool, create: bool) -> None:
        self.path = path
        self.owner: _Owned | None = None
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            if create:
                os.ftruncate(fd, size)
            self.map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        # Opened now, not at first use: it keeps working after its creator is
        # gone and the name with it.
        self.overflow_fd: int | None = None
        if overflow:
            self.overflow_fd = os.open(self.path + ".overflow", flags, 0o600)
            weakref.finalize(self, os.close, self.overflow_fd)

    @classmethod
    def create(cls, size: int, *, overflow: bool = False) -> _Segment:
        directory = _shm_dir() or tempfile.gettempdir()
        while True:
            path = os.path.join(
                directory, f"unirun-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            )
            try:
                segment = cls(path, size, overflow=overflow, create=True)
            except FileExistsError:  # pragma: no cover  # 48 random bits collided
                continue
            files = [path, path + ".overflow"] if overflow else [path]
            segment.owner = _Owned([], files)
            return segment

    def words(self, count: int) -> memoryview:
        """The first ``count`` signed 64-bit words, for counters and flags."""
        return memoryview(self.map)[: 8 * count].cast("q")


def _cond_wait(
    mutex: _SemLock,
    words: memoryview,
    waiters: int,
    wake: _SemLock,
    timeout: float | None,
) -> None:
    """Condition-variable wait: ``mutex`` held on entry and on return.

    Wake-ups can be spurious: callers re-check their condition in a loop.
    """
    words[waiters] += 1
    generation = words[waiters + 1]
    mutex.release()
    woken = False
    try:
        woken = wake.acquire(True, timeout) if timeout is not None else wake.acquire()
    finally:
        _reacquire(mutex)
        if not woken and words[waiters + 1] == generation:
            words[waiters] -= 1  # not woken: withdraw, no token was posted for us


def _pickled(item: object) -> bytes | None:
    try:
        return pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None


def _reacquire(mutex: _SemLock) -> None:
    """Take ``mutex`` back even if a signal handler raises meanwhile.

    The caller releases it on the way out; raising without it would release
    the mutex of whoever holds it then.
    """
    interrupted: BaseException | None = None
    while True:
        try:
            mutex.acquire()
        except BaseException as exc:  # KeyboardInterrupt, say: finish, then raise
            interrupted = exc
        else:
            break
    if interrupted is not None:
        raise interrupted


def _notify_all(words: memoryview, waiters: int, wake: _SemLock) -> None:
    """Wake every waiter of one condition; ``mutex`` held."""
    count = words[waiters]
    if count:
        words[waiters] = 0
        words[waiters + 1] += 1
        for _ in range(count):
            wake.release()


# A process opens each primitive once, however many tasks bring it; the most
# recently used stay open between tasks, so a stream of tasks that all take the
# same queue does not reopen it each time.
_attached: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_recent: collections.deque[object] = collections.deque(maxlen=64)
_attach_lock = threading.Lock()


def _attach(cls: type[_Shared], key: str, state: tuple[Any, ...]) -> _Shared:
    with _attach_lock:
        primitive = _attached.get(key)
        if primitive is None:
            primitive = cls.__new__(cls)
            primitive._key = key
            primitive._open(state)
            _attached[key] = primitive
            _recent.append(primitive)
        return primitive


class _Shared:
    """Pickling and per-process identity for the shared primitives."""

    _key: str
    _scope: str

    def _register(self, scope: str) -> None:
        self._scope = scope
        self._key = uuid.uuid4().hex
        with _attach_lock:
            _attached[self._key] = self

    def _state(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def _open(self, state: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def __reduce__(self) -> tuple[Any, ...]:
        check_send(self, self._scope)
        return (_attach, (type(self), self._key, self._state()))


class SharedLock(_Shared, _api.Lock):
    """A :class:`unirun.Lock` shared with worker processes (an OS semaphore)."""

    def __init__(self, scope: str) -> None:
        self._owner, self._sem = _new_sem(1, 1)
        self._register(scope)

    def _state(self) -> tuple[Any, ...]:
        return (self._scope, _sem_state(self._sem))

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, sem = state
        self._sem = _open_sem(sem)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if timeout == -1 and blocking:  # the common call, checked cheaply
            return bool(self._sem.acquire())
        _check_number(timeout)
        _wait_timeout(timeout)
        if not blocking:
            if timeout != -1:
                raise ValueError(_MESSAGES["lock_nonblocking"])
            return bool(self._sem.acquire(False))
        if timeout == -1:
            return bool(self._sem.acquire())
        if timeout < 0:
            raise ValueError(_MESSAGES["lock_negative"])
        return bool(self._sem.acquire(True, timeout))

    def release(self) -> None:
        try:
            self._sem.release()
        except ValueError:
            raise RuntimeError(_MESSAGES["unlocked"]) from None

    def locked(self) -> bool:
        return bool(self._sem._is_zero())

    async def async_acquire(self) -> bool:
        if not self._sem.acquire(False):
            await take_in_thread(self._take, self._sem.release)
        return True

    def _take(self, timeout: float) -> bool:
        return bool(self._sem.acquire(True, timeout))

    def __enter__(self) -> bool:
        return bool(self._sem.acquire())

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<unirun.Lock {state} (shared with processes)>"


class SharedSemaphore(_Shared, _api.Semaphore):
    """A :class:`unirun.Semaphore` shared with worker processes."""

    _bounded: ClassVar[bool] = False

    def __init__(self, scope: str, value: int = 1) -> None:
        if value < 0:
            raise ValueError(_MESSAGES["sem_negative"])
        self._owner, self._sem = _new_sem(value, value if self._bounded else _SEM_MAX)
        self._register(scope)

    def _state(self) -> tuple[Any, ...]:
        return (self._scope, _sem_state(self._sem))

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, sem = state
        self._sem = _open_sem(sem)

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if not blocking:
            if timeout is not None:
                raise ValueError(_MESSAGES["sem_nonblocking"])
            return bool(self._sem.acquire(False))
        if timeout is None:
            return bool(self._sem.acquire())
        return bool(
            self._sem.acquire(False) or self._sem.acquire(True, _wait_timeout(timeout))
        )

    def release(self, n: int = 1) -> None:
        if n < 1:
            raise ValueError(_MESSAGES["release_n"])
        if self._bounded:
            try:
                too_many = self._sem._get_value() + n > self._sem.maxvalue
            except NotImplementedError:  # no sem_getvalue (macOS): the OS checks
                too_many = False
            if too_many:
                raise ValueError(_MESSAGES["too_many"])
        for _ in range(n):
            try:
                self._sem.release()
            except ValueError:
                raise ValueError(_MESSAGES["too_many"]) from None

    async def async_acquire(self) -> bool:
        if not self._sem.acquire(False):
            await take_in_thread(self._take, self._sem.release)
        return True

    def _take(self, timeout: float) -> bool:
        return bool(self._sem.acquire(True, timeout))

    def __repr__(self) -> str:
        kind = "BoundedSemaphore" if self._bounded else "Semaphore"
        return f"<unirun.{kind} (shared with processes)>"


class SharedBoundedSemaphore(SharedSemaphore, _api.BoundedSemaphore):
    """A :class:`unirun.BoundedSemaphore` shared with worker processes."""

    _bounded = True


# Event words: the flag, how many set() calls so far, then one condition.
_FLAG, _SETS, _EVENT_WAITERS = 0, 1, 2


class SharedEvent(_Shared, _api.Event):
    """A :class:`unirun.Event` shared with worker processes."""

    def __init__(self, scope: str) -> None:
        self._mutex_owner, self._mutex = _new_sem(1, 1)
        self._wake_owner, self._wake = _new_sem(0, _SEM_MAX)
        self._segment = _Segment.create(mmap.PAGESIZE)
        self._words = self._segment.words(4)
        self._register(scope)

    def _state(self) -> tuple[Any, ...]:
        return (
            self._scope,
            _sem_state(self._mutex),
            _sem_state(self._wake),
            self._segment.path,
        )

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, mutex, wake, path = state
        self._mutex = _open_sem(mutex)
        self._wake = _open_sem(wake)
        self._segment = _Segment(path, mmap.PAGESIZE, overflow=False, create=False)
        self._words = self._segment.words(4)

    def is_set(self) -> bool:
        return bool(self._words[_FLAG])

    def set(self) -> None:
        self._mutex.acquire()
        try:
            self._words[_FLAG] = 1
            self._words[_SETS] += 1
            _notify_all(self._words, _EVENT_WAITERS, self._wake)
        finally:
            self._mutex.release()

    def clear(self) -> None:
        self._mutex.acquire()
        try:
            self._words[_FLAG] = 0
        finally:
            self._mutex.release()

    def wait(self, timeout: float | None = None) -> bool:
        words = self._words
        if words[_FLAG]:
            return True
        if timeout is not None and not timeout > 0:  # NaN included, as threading
            return False
        deadline = (
            None if timeout is None else time.monotonic() + _wait_timeout(timeout)
        )
        self._mutex.acquire()
        try:
            # Like threading.Event: a set() during the wait counts even if a
            # clear() follows before this waiter runs again.
            sets = words[_SETS]
            while not words[_FLAG] and words[_SETS] == sets:
                remaining = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                _cond_wait(self._mutex, words, _EVENT_WAITERS, self._wake, remaining)
            return True
        finally:
            self._mutex.release()

    async def async_wait(self) -> bool:
        words = self._words
        sets = words[_SETS]  # before the flag: a set() from here on is seen
        if not words[_FLAG]:
            await take_in_thread(functools.partial(self._wait_for_set, sets))
        return True

    def _wait_for_set(self, sets: int, timeout: float) -> bool:
        """Wait up to ``timeout`` for the flag, or for any set() after ``sets``."""
        words = self._words
        self._mutex.acquire()
        try:
            if not words[_FLAG] and words[_SETS] == sets:
                _cond_wait(self._mutex, words, _EVENT_WAITERS, self._wake, timeout)
            return bool(words[_FLAG]) or words[_SETS] != sets
        finally:
            self._mutex.release()

    def __repr__(self) -> str:
        state = "set" if self.is_set() else "unset"
        return f"<unirun.Event {state} (shared with processes)>"


# Queue words: ring positions (bytes, ever increasing), counts, the join
# condition, and the read and write positions in the overflow file.
_HEAD, _TAIL, _COUNT, _UNFINISHED, _JOIN_WAITERS = 0, 1, 2, 3, 4
_OVERFLOW_READ, _OVERFLOW_WRITE = 6, 7
_HEADER_WORDS: Final = 8
_HEADER_BYTES: Final = 8 * _HEADER_WORDS
_LENGTH = struct.Struct("q")
#: Bytes of shared memory for queued items. The file is sparse: pages never
#: written cost nothing. Items that do not fit go to an overflow file.
DEFAULT_CAPACITY: Final = 1 << 20


class SharedQueue(_Shared, _api.Queue[T]):
    """A :class:`unirun.Queue` shared with worker processes.

    ``put`` pickles the item into a ring buffer in shared memory itself (no
    feeder thread), so a ``get`` anywhere sees it as soon as ``put`` returns,
    and ``qsize``/``empty``/``full`` are exact, as with ``queue.Queue``. An item
    that does not fit in the free part of the ring, and every item after it
    until the reader catches up, is appended to an overflow file next to the
    ring instead: an unbounded queue never blocks or fails for lack of room.
    """

    def __init__(
        self, scope: str, maxsize: int = 0, *, capacity: int = DEFAULT_CAPACITY
    ) -> None:
        self.maxsize = maxsize
        self._capacity = capacity
        self._owners: list[object] = []
        self._mutex = self._own(_new_sem(1, 1))
        self._items = self._own(_new_sem(0, _SEM_MAX))
        # queue.Queue(2.5) holds 3 items: full once qsize() >= maxsize.
        slots = math.ceil(maxsize) if maxsize > 0 else 0
        self._slots = self._own(_new_sem(slots, slots)) if slots else None
        self._join_wake = self._own(_new_sem(0, _SEM_MAX))
        self._segment = _Segment.create(_HEADER_BYTES + capacity, overflow=True)
        self._map_views()
        self._register(scope)

    def _own(self, pair: tuple[object, _SemLock]) -> _SemLock:
        self._owners.append(pair[0])
        return pair[1]

    def _map_views(self) -> None:
        self._words = self._segment.words(_HEADER_WORDS)
        self._data = memoryview(self._segment.map)[_HEADER_BYTES:]

    def _overflow(self) -> int:
        fd = self._segment.overflow_fd
        assert fd is not None
        return fd

    def _state(self) -> tuple[Any, ...]:
        sems = (self._mutex, self._items, self._slots, self._join_wake)
        return (
            self._scope,
            self.maxsize,
            self._capacity,
            tuple(None if sem is None else _sem_state(sem) for sem in sems),
            self._segment.path,
        )

    def _open(self, state: tuple[Any, ...]) -> None:
        self._scope, self.maxsize, self._capacity, sems, path = state
        self._mutex, self._items, self._slots, self._join_wake = (
            None if sem is None else _open_sem(sem) for sem in sems
        )
        self._segment = _Segment(
            path, _HEADER_BYTES + self._capacity, overflow=True, create=False
        )
        self._map_views()

    # -- sizes -------------------------------------------------------------------

    def qsize(self) -> int:
        return int(self._words[_COUNT])

    def empty(self) -> bool:
        return not self._words[_COUNT]

    def full(self) -> bool:
        return 0 < self.maxsize <= self._words[_COUNT]

    # -- put ---------------------------------------------------------------------

    def _dumps(self, item: T) -> bytes:
        # Plain pickle first, without the bookkeeping of _scope: most items hold
        # no primitive. A reference into __main__ does not resolve in a worker,
        # whose __main__ is another module, so such items go by value through
        # cloudpickle, as tasks do; so do lambdas and local classes.
        data = _pickled(item)
        if data is not None and b"__main__" not in data:
            return data
        with sending_to(self._scope):
            if data is None:  # perhaps it holds one of this executor's primitives
                data = _pickled(item)
                if data is not None and b"__main__" not in data:
                    return data
            try:
                by_value: bytes = cloudpickle.dumps(item, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                raise TransferError(
                    f"cannot put {type(item).__name__} on a queue shared with "
                    f"other processes: it cannot be pickled ({exc})"
                ) from exc
            return by_value

    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        data = self._dumps(item)
        slots = self._slots
        if slots is not None:
            if not block:
                taken = slots.acquire(False)
            elif timeout is None:
                taken = slots.acquire()
            elif timeout < 0:
                raise ValueError(_MESSAGES["queue_negative"])
            else:
                taken = slots.acquire(False) or slots.acquire(
                    True, _wait_timeout(timeout)
                )
            if not taken:
                raise queue.Full
        self._append_or_give_back(data)

    def _append_or_give_back(self, data: bytes) -> None:
        try:
            self._append(data)
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise

    def _append(self, data: bytes) -> None:
        """Add one pickled item (its slot, if bounded, already taken)."""
        record = _LENGTH.pack(len(data)) + data
        words = self._words
        self._mutex.acquire()
        try:
            tail = words[_TAIL]
            overflowing = words[_OVERFLOW_WRITE] != words[_OVERFLOW_READ]
            if not overflowing and len(record) <= self._capacity - (
                tail - words[_HEAD]
            ):
                self._write(tail, record)
                words[_TAIL] = tail + len(record)
            else:  # after the ring's items, in order
                end = words[_OVERFLOW_WRITE]
                os.pwrite(self._overflow(), record, end)
                words[_OVERFLOW_WRITE] = end + len(record)
            words[_COUNT] += 1
            words[_UNFINISHED] += 1
        finally:
            self._mutex.release()
        self._items.release()

    def _write(self, position: int, data: bytes) -> None:
        start = position % self._capacity
        first = min(len(data), self._capacity - start)
        self._data[start : start + first] = data[:first]
        if first < len(data):
            self._data[: len(data) - first] = data[first:]

    def _read(self, position: int, size: int) -> bytes:
        start = position % self._capacity
        first = min(size, self._capacity - start)
        if first == size:
            return bytes(self._data[start : start + size])
        return bytes(self._data[start : start + first]) + bytes(
            self._data[: size - first]
        )

    # -- get ---------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        items = self._items
        if not block:
            taken = items.acquire(False)
        elif timeout is None:
            taken = items.acquire()
        elif timeout < 0:
            raise ValueError(_MESSAGES["queue_negative"])
        else:
            taken = items.acquire(False) or items.acquire(True, _wait_timeout(timeout))
        if not taken:
            raise queue.Empty
        return self._pop()

    def _pop(self) -> T:
        """Remove and return the oldest item (its ``items`` unit already taken)."""
        words = self._words
        self._mutex.acquire()
        try:
            head = words[_HEAD]
            if head != words[_TAIL]:
                (size,) = _LENGTH.unpack(self._read(head, _LENGTH.size))
                data = self._read(head + _LENGTH.size, size)
                words[_HEAD] = head + _LENGTH.size + size
            else:
                fd = self._overflow()
                start = words[_OVERFLOW_READ]
                (size,) = _LENGTH.unpack(os.pread(fd, _LENGTH.size, start))
                data = os.pread(fd, size, start + _LENGTH.size)
                end = start + _LENGTH.size + size
                if end == words[_OVERFLOW_WRITE]:  # drained: back to the ring
                    words[_OVERFLOW_READ] = words[_OVERFLOW_WRITE] = 0
                    os.ftruncate(fd, 0)
                else:
                    words[_OVERFLOW_READ] = end
            words[_COUNT] -= 1
        finally:
            self._mutex.release()
        if self._slots is not None:
            self._slots.release()
        try:
            item: T = pickle.loads(data)
        except BaseException as exc:
            # The item is gone: do not leave join() waiting for its task_done().
            self.task_done()
            exc.add_note(
                "unirun: a queue item could not be rebuilt in this process and "
                "was dropped"
            )
            raise
        return item

    # -- task_done / join -----------------------------------------------------------

    def task_done(self) -> None:
        words = self._words
        self._mutex.acquire()
        try:
            unfinished = words[_UNFINISHED] - 1
            if unfinished < 0:
                raise ValueError(_MESSAGES["task_done"])
            words[_UNFINISHED] = unfinished
            if unfinished == 0:
                _notify_all(words, _JOIN_WAITERS, self._join_wake)
        finally:
            self._mutex.release()

    def join(self) -> None:
        while not self._wait_joined(None):
            pass

    def _wait_joined(self, timeout: float | None) -> bool:
        words = self._words
        self._mutex.acquire()
        try:
            if words[_UNFINISHED]:
                _cond_wait(self._mutex, words, _JOIN_WAITERS, self._join_wake, timeout)
            return not words[_UNFINISHED]
        finally:
            self._mutex.release()

    # -- async ---------------------------------------------------------------------

    async def async_get(self) -> T:
        if not self._items.acquire(False):
            await take_in_thread(self._take_item, self._items.release)
        return self._pop()

    def _take_item(self, timeout: float) -> bool:
        return bool(self._items.acquire(True, timeout))

    async def async_put(self, item: T) -> None:
        data = self._dumps(item)
        slots = self._slots
        if slots is not None and not slots.acquire(False):
            await take_in_thread(self._take_slot, slots.release)
        self._append_or_give_back(data)

    def _take_slot(self, timeout: float) -> bool:
        assert self._slots is not None
        return bool(self._slots.acquire(True, timeout))

    async def async_join(self) -> None:
        if self._words[_UNFINISHED]:
            await take_in_thread(self._wait_joined)

    def __repr__(self) -> str:
        return (
            f"<unirun.Queue maxsize={self.maxsize} qsize={self.qsize()} "
            "(shared with processes)>"
        )
