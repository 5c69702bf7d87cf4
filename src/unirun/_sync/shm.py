"""What the process-shared primitives are made of.

Named POSIX semaphores (every blocking wait is one: no polling, time-outs in
the kernel, a Ctrl-C interrupts it without taking anything), small shared-memory
files guarded by a semaphore used as a mutex, a condition variable built from
the two, the stdlib's error messages, and the pickling rule: a primitive goes
only into tasks of the executor that created it (see :func:`.waiting.sending_to`),
and a worker opens it once, by name.
"""

from __future__ import annotations

import _multiprocessing  # type: ignore[import-not-found]  # CPython's, no stubs
import atexit
import collections
import contextlib
import math
import mmap
import operator
import os
import pickle
import queue
import tempfile
import threading
import uuid
import weakref
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING, Any, ClassVar, Final

from .waiting import (
    check_send,
)

if TYPE_CHECKING:
    from collections.abc import Callable


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
