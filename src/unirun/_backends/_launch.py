"""Starting worker processes that never run the user's ``__main__`` again.

``multiprocessing`` starts a ``spawn`` or ``forkserver`` child by re-running the
parent's main script (as ``__mp_main__``): a script without an
``if __name__ == "__main__":`` guard then runs its top level once per worker,
and one read from stdin (``python - < file``) cannot be re-run at all. Workers
of unirun need nothing from the user's main module (functions travel by value),
so they start from a fork server of their own, whose only preloaded module is
the worker's: it never imports ``__main__``, and the children it forks are
ready at once (no import per worker). It is still a fork server: no process
forks the caller, whose threads make ``fork`` unsafe::

    parent --Process.start()--> unirun's fork server (preloaded: _worker)
                                      | fork
                                      v
                                worker process (no __main__ of the user)

The standard ``multiprocessing`` machinery does the rest (pickling of
``initargs`` with queues and locks, sentinels, exit codes).
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.context import BaseContext, ForkServerContext, ForkServerProcess
from typing import Any

from .._exit import after_fork_in_child

__all__ = ["InheritedFd", "WorkerContext", "default_context", "start_server"]

#: The keys of spawn's preparation data that would re-run the main module.
_MAIN_KEYS = ("init_main_from_path", "init_main_from_name")


def _new_server() -> forkserver.ForkServer:
    server = forkserver.ForkServer()
    server.set_forkserver_preload(["unirun._backends._worker"])
    return server


_server = _new_server()
_ready = False  # it has started a process


def _own_server() -> None:
    """In a forked child: a fork server of its own, started on demand. The
    parent's is not the child's to wait for, and the child's copy of its alive
    pipe must close, or the server outlives the parent."""
    global _server, _ready
    alive: int | None = getattr(_server, "_forkserver_alive_fd", None)
    if alive is not None:
        with contextlib.suppress(OSError):
            os.close(alive)
    _server = _new_server()
    _ready = False


after_fork_in_child(_own_server)


def start_server() -> None:
    """Start the fork server, and wait until it has imported what it preloads
    and takes work, if it has not yet: the first worker's start otherwise
    waits for that (a few hundred milliseconds). A process that does nothing is
    started through it to tell."""
    global _ready
    if not _ready:
        process = WorkerProcess(target=_nothing, name="unirun-fork-server-check")
        process.start()
        process.join()
        _ready = True


def _nothing() -> None:
    """What the process that tells the fork server is ready does."""


class _Popen(popen_forkserver.Popen):
    """Launches a process through unirun's fork server, without ``__main__``."""

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        for key in _MAIN_KEYS:
            prep_data.pop(key, None)
        buf = io.BytesIO()
        multiprocessing.context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            multiprocessing.context.set_spawning_popen(None)
        fds: list[int] = self._fds  # type: ignore[attr-defined]  # set by the stdlib Popen
        self.sentinel, w = _server.connect_to_new_process(fds)
        # As multiprocessing does: a duplicate of the data pipe's write end
        # tells the child when the parent is gone.
        parent_w = os.dup(w)
        close_fds = util.close_fds  # type: ignore[attr-defined]  # missing from typeshed
        self.finalizer = util.Finalize(self, close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


def _same(obj: Any) -> Any:
    return obj


class InheritedFd:
    """A descriptor of this process, duplicated into the process being started.

    Pickled (as a process argument) while the process starts; in the child,
    ``detach()`` returns the duplicate.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, ...]:
        # Only while a process starts: the starter sends the descriptor along.
        return (_same, (reduction.DupFd(self.fd),))

    def detach(self) -> int:  # pragma: no cover  # replaced when unpickled
        raise RuntimeError("an InheritedFd is only usable in the started process")


class WorkerProcess(ForkServerProcess):
    """A process forked from unirun's fork server."""

    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


class WorkerContext(ForkServerContext):
    """The ``multiprocessing`` context of unirun's own workers.

    Its processes come from a fork server that never imports the user's main
    module; everything else is the ``forkserver`` start method.
    """

    Process = WorkerProcess


def default_context() -> BaseContext:
    """Return the context used when ``mp_context`` is not given.

    :class:`WorkerContext` where the platform has fork servers (Linux and most
    Unixes): safe when the parent has threads, fast to start workers, and it
    never re-runs the main module. ``spawn`` elsewhere (Windows), which needs
    the ``if __name__ == "__main__":`` guard there, as with the stdlib.
    """
    if "forkserver" in multiprocessing.get_all_start_methods():
        return WorkerContext()
    return multiprocessing.get_context("spawn")
