"""What runs inside a worker process of :class:`ProcessExecutor`.

Light imports only: the fork server preloads this module. The messages are in
:mod:`._wire`. A worker runs one task at a time::

    recv TASK -> rebuild the function (or take it from its table) and the
                 arguments -> call -> REPLY (a result or an exception)
    a chunk of map items -> each value into the result log as it is made
                 (shared memory: a crash loses none of them) -> CHUNK

What the task prints and logs travels to the parent (OUTPUT, LOG) before its
reply, when the executor forwards output.
"""

from __future__ import annotations

import logging
import mmap
import os
import pickle
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._call import call
from .._transfer import PROTOCOL, encode_exception, inherit_main, main_module
from . import _wire
from ._interpreter import InterpreterState
from ._output import install_forwarding, loggers, loggers_with_handlers

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection

    from .._transfer import SpawnArgs

__all__ = ["LIST_END", "LOG_HEADER", "WorkerSettings", "worker_main"]

#: The result log starts with the number of bytes of values written after it.
LOG_HEADER = 8
#: Environment variables that size the thread pools of native libraries.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


class WorkerSettings:
    """What a worker needs to know of its pool, sent when it starts."""

    __slots__ = (
        "environ",
        "forward_output",
        "handlers",
        "inherit_main",
        "initargs",
        "initializer",
        "interpreter",
        "levels",
        "log",
        "max_tasks",
        "native_threads",
        "stdio",
        "ttys",
    )

    def __init__(
        self,
        *,
        initializer: bytes | None,
        initargs: SpawnArgs,
        max_tasks: int | None,
        log: Any,
        native_threads: int | None,
        forward_output: bool,
        inherit_main: bool = False,
        stdio: tuple[Any, Any] | None = None,
    ) -> None:
        self.stdio = stdio
        self.inherit_main = inherit_main
        self.initializer = initializer
        self.initargs = initargs
        self.max_tasks = max_tasks
        #: The result log: its path, or (an InheritedFd) its descriptor.
        self.log = log
        self.native_threads = native_threads
        self.forward_output = forward_output
        # The caller's environment now (the fork server's may be older), and
        # its logging levels, so that a worker logs what the caller would.
        self.environ = dict(os.environ)
        self.levels = {name: lg.level for name, lg in loggers() if lg.level or not name}
        self.handlers = loggers_with_handlers()
        # Whether the caller's sys.stdout and sys.stderr are terminals: a
        # worker's say the same, as a forked worker's, inherited, do.
        self.ttys = (_isatty(sys.stdout), _isatty(sys.stderr))
        # The recursion limit, warning filters, ... a fork would inherit.
        self.interpreter = InterpreterState()

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


class _Sender:
    """Sends frames to the parent; tasks may print from several threads."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, *parts: bytes | memoryview) -> None:
        with self._lock:
            _wire.send_parts(self._conn, parts)


#: The log holds one pickle of a list being built: protocol 3 (memo indices are
#: explicit, so items pickled one by one can follow each other), the list and a
#: mark; each value's opcodes are appended as it is made; whoever reads the log
#: closes the list with LIST_END and unpickles it in one call.
LIST_START = b"\x80\x03]("
LIST_END = b"e."


class ResultLog:
    """The values of a chunk, in shared memory as each is made.

    The parent maps the same file: when the worker dies mid-chunk, the values
    made before the crash are still there (the count of bytes in use is
    updated after each value is written whole). When the log is full, its
    values are flushed to the parent as a PARTIAL message.
    """

    def __init__(self, log: Any, sender: _Sender) -> None:
        # A path, or a descriptor handed over as the worker started.
        fd = os.open(log, os.O_RDWR) if isinstance(log, str) else log.detach()
        try:
            self._map = mmap.mmap(fd, 0)
        finally:
            os.close(fd)
        self._size = len(self._map)
        self._used = memoryview(self._map)[:LOG_HEADER].cast("q")
        self._sender = sender
        self._task = 0
        self._end = LOG_HEADER

    def start(self, task_id: int) -> None:
        self._task = task_id
        self._begin()

    def _begin(self) -> None:
        end = LOG_HEADER + len(LIST_START)
        self._map[LOG_HEADER:end] = LIST_START
        self._end = end
        self._used[0] = len(LIST_START)

    def append(self, value: object) -> None:
        data = _dumps_value(value, 3)
        body = memoryview(data)[2:-1]  # without PROTO and STOP
        end = self._end + len(body)
        if end > self._size:
            self.flush()
            if self._end + len(body) > self._size:
                self._partial(LIST_START, body)
                return
            end = self._end + len(body)
        self._map[self._end : end] = body
        self._end = end
        self._used[0] = end - LOG_HEADER

    def flush(self) -> None:
        if self._end > LOG_HEADER + len(LIST_START):
            self._partial(self._map[LOG_HEADER : self._end])
            self._begin()

    def _partial(self, *parts: bytes | memoryview) -> None:
        header = _wire.PARTIAL.pack(_wire.K_PARTIAL, self._task, _wire.OK)
        self._sender.send(header, *parts, LIST_END)


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except Exception:  # None (pythonw), closed, or not a stream at all
        return False


def _dumps_value(value: Any, protocol: int = PROTOCOL) -> bytes:
    try:
        return pickle.dumps(value, protocol=protocol)
    except RecursionError:
        raise  # too deep for cloudpickle too, which would say PicklingError
    except Exception:
        return cloudpickle.dumps(value, protocol=protocol)  # type: ignore[no-any-return]


def _watch_parent(lifeline: Connection) -> None:
    """Exit this process as soon as the parent process is gone."""
    while True:
        try:
            if lifeline.poll(1.0):  # readable means EOF: the parent has died
                break
        except (EOFError, OSError):
            break
    os._exit(1)


def _prepare(settings: WorkerSettings) -> None:
    """The caller's environment, capped native threads, a clean ``__main__``."""
    if settings.stdio is not None:  # the caller's stdout and stderr, as they are now
        for target, duplicate in zip((1, 2), settings.stdio, strict=True):
            fd = duplicate.detach()
            os.dup2(fd, target)
            os.close(fd)
    os.environ.clear()
    os.environ.update(settings.environ)
    threads = settings.native_threads
    if threads is not None:
        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, str(threads))
    if settings.inherit_main:  # forked from the caller: its __main__ is here
        inherit_main()
    else:
        sys.modules["__main__"] = main_module()
    for name, level in settings.levels.items():
        logging.getLogger(name or None).setLevel(level)
    settings.interpreter.apply()


def _cap_loaded_libraries(threads: int | None) -> None:
    """Cap the thread pools of native libraries an initializer already loaded."""
    if threads is None or not ({"numpy", "scipy"} & sys.modules.keys()):
        return
    try:
        from threadpoolctl import (  # type: ignore[import-not-found]  # optional
            threadpool_limits,
        )
    except ImportError:
        return
    threadpool_limits(threads)


def _ignore_interrupt(signum: int, frame: object) -> None:
    """A Ctrl-C meant for the parent: nothing to do here."""


def worker_main(
    conn: Connection, lifeline: Connection, settings: WorkerSettings
) -> None:
    """Serve tasks from ``conn`` until told to stop, the limit, or parent death."""
    # One Ctrl-C in the terminal reaches every process of the group: the parent
    # handles it; workers must not each print a traceback. A handler that does
    # nothing, not SIG_IGN: a program a task starts gets the default back at
    # exec, as from a stdlib worker, where an ignored SIGINT would stay ignored.
    signal.signal(signal.SIGINT, _ignore_interrupt)
    threading.Thread(target=_watch_parent, args=(lifeline,), daemon=True).start()
    _prepare(settings)
    sender = _Sender(conn)
    if settings.forward_output:
        install_forwarding(sender.send, settings.handlers, settings.ttys)
    if settings.initializer is not None:
        try:
            pickle.loads(settings.initializer)(*settings.initargs.args)
        except BaseException as exc:
            logging.getLogger("concurrent.futures").critical(
                "Exception in initializer:", exc_info=True
            )
            _flush_output()
            header = _wire.REPLY.pack(_wire.K_INIT_FAILED, 0, _wire.FAILED)
            sender.send(header, encode_exception(exc))
            return
    _cap_loaded_libraries(settings.native_threads)
    _serve(conn, sender, ResultLog(settings.log, sender), settings.max_tasks)


def _serve(
    conn: Connection, sender: _Sender, log: ResultLog, max_tasks: int | None
) -> None:
    functions: dict[int, Callable[..., Any]] = {}
    done = 0
    while max_tasks is None or done < max_tasks:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        if message[0] == _wire.K_FORGET:
            for key in pickle.loads(memoryview(message)[_wire.FORGET.size :]):
                functions.pop(key, None)
            continue
        _run_task(memoryview(message), functions, sender, log)
        del message
        done += 1


def _run_task(
    message: memoryview,
    functions: dict[int, Callable[..., Any]],
    sender: _Sender,
    log: ResultLog,
) -> None:
    _, task_id, flags, key = _wire.TASK.unpack_from(message)
    position = _wire.TASK.size
    try:
        if flags & _wire.F_FN_BYTES:
            (size,) = _wire.LENGTH.unpack_from(message, position)
            position += _wire.LENGTH.size
            fn = pickle.loads(message[position : position + size])
            position += size
            if key >= 0:
                functions[key] = fn
        else:
            fn = functions[key]
        payload = pickle.loads(message[position:])
    except BaseException as exc:  # even SystemExit from a hostile __reduce__
        _reply(sender, _wire.K_REPLY, task_id, _wire.UNREADABLE, encode_exception(exc))
        return
    del message
    if flags & _wire.F_CHUNK:
        _run_chunk(task_id, fn, payload, sender, log)
        return
    args, kwargs = payload
    del payload
    try:
        body = _dumps_value(call(fn, args, kwargs))
        status = _wire.OK
    except BaseException as exc:
        body = encode_exception(exc)
        status = _wire.FAILED
    del fn, args, kwargs
    _reply(sender, _wire.K_REPLY, task_id, status, body)


def _run_chunk(
    task_id: int,
    fn: Callable[..., Any],
    chunk: list[tuple[Any, ...]],
    sender: _Sender,
    log: ResultLog,
) -> None:
    """Call ``fn`` on each item; stop at the first error, as builtin map does."""
    log.start(task_id)
    error = None
    start = time.perf_counter()
    for args in chunk:
        try:
            log.append(call(fn, args, {}))
        except BaseException as exc:
            error = encode_exception(exc)
            break
    body = pickle.dumps((error, time.perf_counter() - start))
    _reply(sender, _wire.K_CHUNK, task_id, _wire.OK, body)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _reply(sender: _Sender, kind: int, task_id: int, status: int, body: bytes) -> None:
    _flush_output()  # what the task printed arrives before its result
    sender.send(_wire.REPLY.pack(kind, task_id, status), body)
