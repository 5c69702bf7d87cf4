"""The OS resources the process-shared primitives are made of.

Named POSIX semaphores (a blocking wait on one has its time-out in the kernel,
and a Ctrl-C interrupts it without taking anything) and small files in
``/dev/shm`` mapped into every process that uses the primitive. The creating
process owns both and removes them when it drops the primitive; the resource
tracker removes what a killed creator leaves behind.
"""

from __future__ import annotations

import _multiprocessing  # type: ignore[import-not-found]  # CPython's, no stubs
import atexit
import contextlib
import mmap
import os
import tempfile
import uuid
import weakref
from multiprocessing import resource_tracker
from typing import Any, ClassVar, Final

__all__ = [
    "SEM_MAX",
    "Owned",
    "Segment",
    "SemLock",
    "new_sem",
    "open_sem",
    "sem_state",
]

#: The largest value a named semaphore may hold.
SEM_MAX: Final = _multiprocessing.SemLock.SEM_VALUE_MAX
#: ``_multiprocessing.SemLock``, which has no type stubs.
SemLock = Any


class Owned:
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

    _retired: ClassVar[list[tuple[str, str, bool]]] = []

    def __init__(self, semaphores: list[str], files: list[str]) -> None:
        self.forget_retired()
        tracked = [(name, "semaphore") for name in semaphores]
        tracked += [_tracked_file(path) for path in files if _tracked_file(path)[0]]
        for name, rtype in tracked:
            resource_tracker.register(name, rtype)
        weakref.finalize(self, Owned.remove, semaphores, files, tracked, os.getpid())

    @classmethod
    def remove(
        cls,
        semaphores: list[str],
        files: list[str],
        tracked: list[tuple[str, str]],
        pid: int,
        *,
        unsure: bool = False,
    ) -> None:
        """Remove the resources (in process ``pid`` only) and tell the tracker.

        ``unsure``: some of ``tracked`` may never have reached the tracker (their
        maker was killed before it registered them). Each is registered again
        first, which changes nothing for one it has, so that it never hears of
        a name to forget that it does not know (it prints a ``KeyError``).
        """
        if os.getpid() != pid:
            return
        for name in semaphores:
            with contextlib.suppress(OSError):
                _multiprocessing.sem_unlink(name)
        for path in files:
            with contextlib.suppress(OSError):
                os.unlink(path)
        retired = [(name, rtype, unsure) for name, rtype in tracked]
        lock = getattr(resource_tracker._resource_tracker, "_lock", None)
        is_owned = getattr(lock, "_is_owned", None)
        if is_owned is None or is_owned():  # this finalizer interrupted it
            cls._retired.extend(retired)  # list.extend is atomic: safe here
        else:
            cls.forget_retired()
            for entry in retired:
                _forget(*entry)

    @classmethod
    def forget_retired(cls) -> None:
        """Tell the resource tracker of removals it has not heard of yet."""
        while cls._retired:
            _forget(*cls._retired.pop())


def _forget(name: str, rtype: str, unsure: bool) -> None:
    if unsure:
        resource_tracker.register(name, rtype)
    resource_tracker.unregister(name, rtype)


atexit.register(Owned.forget_retired)


def _tracked_file(path: str) -> tuple[str, str]:
    """The resource tracker's name for a file: only ``/dev/shm`` ones are known."""
    directory, name = os.path.split(path)
    if directory == "/dev/shm":
        return "/" + name, "shared_memory"
    return "", ""


def unique_name() -> str:
    """A name no other resource of any process has: ``unirun-<pid>-<random>``.

    Short enough for every OS's semaphore names (macOS allows 31 bytes).
    """
    return f"unirun-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def new_sem(value: int, maxvalue: int) -> tuple[Owned, SemLock]:
    """A named OS semaphore: (its owner, which unlinks it on collection; the lock)."""
    kind = 1  # multiprocessing.synchronize.SEMAPHORE: a plain counting semaphore
    while True:
        name = "/" + unique_name()
        try:
            sem = _multiprocessing.SemLock(kind, value, maxvalue, name, False)
        except FileExistsError:  # pragma: no cover  # 48 random bits collided
            continue
        return Owned([name], []), sem


def sem_state(sem: SemLock) -> tuple[int, int, str]:
    """What another process needs to open ``sem``."""
    return (sem.kind, sem.maxvalue, sem.name)


def open_sem(state: tuple[int, int, str]) -> SemLock:
    """Open, by name, a semaphore another process described with :func:`sem_state`."""
    kind, maxvalue, name = state
    return _multiprocessing.SemLock._rebuild(0, kind, maxvalue, name)


def _shm_dir() -> str:
    # /dev/shm is memory; elsewhere the temporary directory will do.
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


class Segment:
    """A shared-memory file mapped into this process, and its overflow file.

    The file stays open (``fd``): the shared primitives lock it as their robust
    mutex, and it keeps working after its creator is gone and the name with it.
    The file is sparse: pages never written cost nothing.
    """

    __slots__ = ("__weakref__", "fd", "map", "overflow_fd", "owner", "path", "size")

    def __init__(self, path: str, size: int, *, overflow: bool, create: bool) -> None:
        self.path = path
        self.size = size
        self.owner: Owned | None = None
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT | os.O_EXCL if create else 0)
        self.fd = os.open(path, flags, 0o600)
        weakref.finalize(self, os.close, self.fd)
        _open_segments.add(self)
        if create:
            os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size)
        # Opened now, not at first use: it keeps working after its creator is
        # gone and the name with it.
        self.overflow_fd: int | None = None
        if overflow:
            self.overflow_fd = os.open(self.path + ".overflow", flags, 0o600)
            weakref.finalize(self, os.close, self.overflow_fd)

    @classmethod
    def create(cls, size: int, *, overflow: bool = False) -> Segment:
        """A new segment of ``size`` zero bytes, removed when collected here."""
        while True:
            path = os.path.join(_shm_dir(), unique_name())
            try:
                segment = cls(path, size, overflow=overflow, create=True)
            except FileExistsError:  # pragma: no cover  # 48 random bits collided
                continue
            files = [path, path + ".overflow"] if overflow else [path]
            segment.owner = Owned([], files)
            return segment

    def state(self) -> tuple[str, int, bool]:
        """What another process needs to open this segment."""
        return (self.path, self.size, self.overflow_fd is not None)

    @classmethod
    def open(cls, state: tuple[str, int, bool]) -> Segment:
        """Open a segment another process described with :meth:`state`."""
        path, size, overflow = state
        return cls(path, size, overflow=overflow, create=False)

    def words(self, start: int, count: int) -> memoryview:
        """``count`` signed 64-bit words from word ``start``: counters and flags."""
        return memoryview(self.map)[8 * start : 8 * (start + count)].cast("q")

    def reopen(self) -> None:
        """Give this process its own open files, under the same descriptor numbers.

        A forked child shares its parent's open files, and with them the file
        locks taken on them: the child must not hold its parent's mutexes.
        """
        _reopen(self.fd, self.path)
        if self.overflow_fd is not None:
            _reopen(self.overflow_fd, self.path + ".overflow")


def _reopen(fd: int, path: str) -> None:
    source = f"/proc/self/fd/{fd}"  # the same file, even once unlinked
    try:
        fresh = os.open(source if os.path.exists(source) else path, os.O_RDWR)
    except OSError:  # gone, and no /proc to reach it: the child cannot use it
        return
    os.dup2(fresh, fd, inheritable=False)
    os.close(fresh)


_open_segments: weakref.WeakSet[Segment] = weakref.WeakSet()


def _reopen_after_fork() -> None:
    for segment in list(_open_segments):
        segment.reopen()


os.register_at_fork(after_in_child=_reopen_after_fork)
