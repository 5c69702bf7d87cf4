"""What a process pool keeps of each task and each worker.

A :class:`Task` is one call (or one chunk of map items), pickled once; a
:class:`WorkerRecord` one worker process with its pipe, the functions it knows,
its clock and its result log, the shared memory where a chunk's values land as
each is made (see ``_worker.ResultLog``).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import pickle
import signal
import tempfile
import uuid
from collections import OrderedDict
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING, Any

from .._errors import RebuildError
from .._stats import WorkerClock
from . import _wire, _worker

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from .._future import Future

__all__ = [
    "KNOWN_FUNCTIONS",
    "LOG_SIZE",
    "SENT",
    "UNSENT",
    "ResultLog",
    "Task",
    "WorkerRecord",
    "describe_exit",
    "read_values",
]

#: Bytes of a worker's result log (a sparse file: unused pages cost nothing).
LOG_SIZE = 1 << 20
#: Functions a worker keeps at most; the oldest are forgotten beyond it.
KNOWN_FUNCTIONS = 256

#: A worker's task hand-over (``WorkerRecord.sending``): none under way, or
#: one not written yet; a positive number is the size of a message being written.
SENT, UNSENT = 0, -1


def describe_exit(exitcode: int | None) -> str:
    """Say in words how a worker process ended."""
    if exitcode is None:
        return "an unknown cause"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"signal {name}"
    return f"exit code {exitcode}"


class Task:
    """One call (or one chunk of map items) and its Future."""

    __slots__ = (
        "args",
        "chunk",
        "deadline",
        "fn_bytes",
        "fn_key",
        "future",
        "id",
        "queued",
        "timed_out",
        "timeout",
        "values",
    )

    def __init__(
        self,
        future: Future[Any],
        fn_key: int,
        fn_bytes: bytes,
        args: bytes,
        *,
        chunk: bool,
        timeout: float | None,
    ) -> None:
        self.id = 0
        self.future = future
        self.fn_key = fn_key
        self.fn_bytes = fn_bytes
        self.args = args
        self.chunk = chunk
        self.timeout = timeout
        self.deadline: float | None = None
        self.timed_out = False
        self.values: list[Any] = []
        #: Set right before the call that queues it (see ProcessExecutor).
        self.queued = False


class ResultLog:
    """The parent's side of a worker's result log (see _worker.ResultLog).

    ``anonymous`` (where the system has ``memfd_create``): memory with no name,
    handed to the worker as a descriptor (:attr:`fd`, as it starts): nothing is
    left to remove, however this process ends. Else a file in ``/dev/shm`` (or
    the temporary directory) that the worker opens by its name, :attr:`path`;
    the resource tracker removes it if this process dies first.
    """

    def __init__(self, anonymous: bool = False) -> None:
        self.path: str | None = None
        self._tracked: str | None = None
        if anonymous and hasattr(os, "memfd_create"):
            fd = os.memfd_create("unirun-results", os.MFD_CLOEXEC)
        else:
            directory = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
            self.path = os.path.join(
                directory or tempfile.gettempdir(),
                f"unirun-{os.getpid()}-results-{uuid.uuid4().hex[:12]}",
            )
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            if directory:
                self._tracked = "/" + os.path.basename(self.path)
        try:
            os.ftruncate(fd, LOG_SIZE)
            self._map = mmap.mmap(fd, LOG_SIZE)
        except BaseException:
            os.close(fd)
            raise
        if self.path is not None:
            os.close(fd)
            fd = -1
        #: The anonymous log's descriptor, until :meth:`started` (else -1).
        self.fd = fd
        if self._tracked:
            resource_tracker.register(self._tracked, "shared_memory")

    def started(self) -> None:
        """The worker has its own descriptor (or the name) now: let go of ours."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read(self, into: list[Any]) -> BaseException | None:
        """Append the values in the log to ``into``; the error if they fail."""
        start = _worker.LOG_HEADER
        used = memoryview(self._map)[:start].cast("q")[0]
        if not used:
            return None
        return read_values(self._map[start : start + used] + _worker.LIST_END, into)

    def close(self) -> None:
        self.started()
        self._map.close()
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        if self._tracked:
            resource_tracker.unregister(self._tracked, "shared_memory")


def read_values(data: bytes, into: list[Any]) -> BaseException | None:
    """Unpickle the list of values in ``data`` (see _worker.ResultLog)."""
    try:
        into.extend(pickle.loads(data))
    except BaseException as exc:  # even SystemExit from a hostile __reduce__
        error = RebuildError(
            f"a value of the chunk could not be unpickled: {type(exc).__name__}: {exc}"
        )
        error.__cause__ = exc
        return error
    return None


class WorkerRecord:
    """One worker process of a pool: its pipe, its task, what it knows."""

    __slots__ = (
        "abandoned",
        "clock",
        "conn",
        "done",
        "id",
        "killing",
        "known",
        "log",
        "process",
        "sending",
        "task",
    )

    def __init__(
        self, number: int, process: BaseProcess, conn: Connection, log: ResultLog
    ) -> None:
        self.clock = WorkerClock(f"process {process.pid}")
        self.id = number
        self.process = process
        self.conn = conn
        self.log = log
        self.task: Task | None = None
        self.done = 0
        self.killing = False
        self.abandoned = False  # killed because nobody awaits its task any more
        #: How far its task's hand-over went: UNSENT, SENT, or the size of the
        #: message being written (see Pool._repair).
        self.sending = SENT
        self.known: OrderedDict[int, None] = OrderedDict()

    def send(self, task: Task) -> None:
        """Send ``task`` to this worker (its function too, unless it has it).

        Changes nothing before the message is written, which ``sending``
        tells: a signal handler's error (Ctrl-C) that cuts it short leaves the
        task to send again, or shows how far the message went.
        """
        flags = _wire.F_CHUNK if task.chunk else 0
        parts: list[bytes] = []
        key = task.fn_key
        new = key < 0 or key not in self.known
        if new:
            flags |= _wire.F_FN_BYTES
            parts += (_wire.LENGTH.pack(len(task.fn_bytes)), task.fn_bytes)
        header = _wire.TASK.pack(_wire.K_TASK, task.id, flags, key)
        _wire.send_parts(self.conn, [header, *parts, task.args], self)
        self.sending = SENT
        task.args = b""  # not kept by a running or finished task
        if not new:
            self.known.move_to_end(key)
        elif key >= 0:
            self.known[key] = None
            if len(self.known) > KNOWN_FUNCTIONS:
                forget = [self.known.popitem(last=False)[0]]
                header = _wire.FORGET.pack(_wire.K_FORGET, 0)
                _wire.send_parts(self.conn, [header, pickle.dumps(forget)])
