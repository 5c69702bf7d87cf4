"""What runs on a Dask worker for :class:`unirun.DaskExecutor`.

Light imports only, as for process workers. A task arrives as the bytes that
``submit`` pickled (so what cannot travel fails in the caller) and leaves as a
``(status, bytes)`` pair: the pickled result, or the encoded exception with its
worker-side traceback, or word that an ``async def`` task passed its time-out
and was cancelled. Dask itself only ever moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import pickle
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any, Final

from distributed.diagnostics.plugin import WorkerPlugin

from ..._call import TimeoutExpired, run_awaitable
from ..._transfer import encode_exception
from .._output import _ForwardedStream, _ForwardHandler
from .._worker import _dumps_value as _dumps_result

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from distributed import Client, Worker

__all__ = [
    "FAILED",
    "OK",
    "TIMED_OUT",
    "UNREADABLE",
    "Initializer",
    "OutputForwarder",
    "off_pool",
    "quiet_expected_errors",
    "run_call",
    "scheduler_address",
]

OK: Final = 0
FAILED: Final = 1
TIMED_OUT: Final = 2
#: The call could not be unpickled on the worker: the body is the error.
UNREADABLE: Final = 3


def run_call(payload: bytes, timeout: float | None) -> tuple[int, bytes]:
    """Run one pickled call; return its outcome as ``(status, bytes)``.

    ``timeout`` cancels an ``async def`` task that runs longer; a plain function
    cannot be stopped, so the caller's deadline alone applies to it.
    """
    try:
        try:
            fn, args, kwargs = pickle.loads(payload)
        except BaseException as exc:  # even SystemExit from a hostile __reduce__
            return UNREADABLE, encode_exception(exc)
        del payload
        result = fn(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = run_awaitable(result, timeout)
        return OK, _dumps_result(result)
    except TimeoutExpired:
        return TIMED_OUT, b""
    except BaseException as exc:  # KeyboardInterrupt and SystemExit included
        return FAILED, encode_exception(exc)
    finally:
        _flush_output()


def _flush_output() -> None:
    """Send what the task printed without a newline before its result."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, _ForwardedStream):
            with contextlib.suppress(Exception):
                stream.flush()


class Initializer(WorkerPlugin):
    """A worker plugin that runs an executor's ``initializer`` in each worker.

    Dask runs it in every worker of the cluster when it is registered, and in
    every worker that joins (or is restarted) later.
    """

    def __init__(self, payload: bytes, name: str) -> None:
        self.payload = payload
        self.name = name

    def setup(self, worker: Worker) -> None:
        """Call ``initializer(*initargs)``; log and re-raise what it raises."""
        initializer, initargs = pickle.loads(self.payload)
        try:
            initializer(*initargs)
        except BaseException:
            logging.getLogger("concurrent.futures").critical(
                "Exception in initializer:", exc_info=True
            )
            raise

    def teardown(self, worker: Worker) -> None:
        """Nothing to undo: the stdlib has no finalizer either."""


#: What a worker logs, with a traceback, when a heartbeat fails.
HEARTBEAT_FAILED: Final = "Failed to communicate with scheduler during heartbeat"


class QuietClose(logging.Filter):
    """Drops the error a worker logs when its own close cuts a heartbeat short.

    A worker that closes while a heartbeat is on its way closes the connection
    under it and logs that as an error, with a traceback, though nothing went
    wrong: the executor is shutting its cluster down. A heartbeat that fails
    while the worker runs is still logged.
    """

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self._worker = weakref.ref(worker)

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to keep ``record``."""
        if not str(record.msg).startswith(HEARTBEAT_FAILED):
            return True
        worker = self._worker()
        status = getattr(getattr(worker, "status", None), "name", "")
        return worker is not None and not status.startswith("clos")


class OutputForwarder(WorkerPlugin):
    """A worker plugin that sends the worker's output to the executor's client.

    For the workers of an embedded cluster. In each, the caller's logging
    levels are set (so that a worker logs what the caller would); then
    ``sys.stdout`` and ``sys.stderr`` send whole lines, and a root logging
    handler sends each record, as events of ``topic``, which travel through the
    scheduler to the client that subscribed to it. Dask's own loggers do not
    propagate to the root, so they keep writing where Dask sends them.
    """

    def __init__(self, topic: str, levels: dict[str, int]) -> None:
        self.topic = topic
        self.levels = levels
        self._streams: tuple[Any, Any] | None = None
        self._handler: logging.Handler | None = None

    def setup(self, worker: Worker) -> None:
        """Set the caller's levels; forward the streams and the root logger."""
        for name, level in self.levels.items():
            logging.getLogger(name or None).setLevel(level)
        # Kept after teardown: the record comes later in the worker's close.
        logging.getLogger("distributed.worker").addFilter(QuietClose(worker))
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = _ForwardedStream(self._sender(worker, 1), 1, sys.__stdout__, False)
        sys.stderr = _ForwardedStream(self._sender(worker, 2), 2, sys.__stderr__, False)
        self._handler = _ForwardHandler(self._sender(worker, 0))
        logging.getLogger().addHandler(self._handler)

    def teardown(self, worker: Worker) -> None:
        """Give the worker its own streams and root handlers back."""
        _flush_output()
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams

    def _sender(self, worker: Worker, stream: int) -> Callable[..., None]:
        original = sys.__stdout__ if stream == 1 else sys.__stderr__

        def send(header: bytes, data: bytes) -> None:
            try:
                worker.log_event(self.topic, [stream, bytes(data)])
            except Exception:  # the worker is closing: its own stream, then
                if stream and original is not None:
                    original.write(bytes(data).decode("utf-8", "replace"))

        return send


# -- leaving the worker's thread pool while blocked ----------------------------------

_depth = threading.local()


@contextlib.contextmanager
def off_pool() -> Iterator[None]:
    """Leave the Dask worker's thread pool while this task thread blocks.

    A task waiting on a primitive (a lock, a queue) would otherwise hold one of
    the worker's threads, and on a small cluster the task it waits for might
    never get a thread to run in. As ``distributed.worker_client`` does, the
    thread secedes (the worker starts another task in its place) and rejoins
    afterwards, waiting for a free slot. Outside a Dask task thread (the client
    process, a helper thread) it does nothing. Nested uses secede once.
    """
    from dask.context import thread_state

    depth = getattr(_depth, "value", 0)
    if depth == 0:
        try:
            thread_state.start_time  # noqa: B018  # set only in task threads
        except AttributeError:
            yield
            return
        _depth.value = 1
        seceded = _secede()
    else:
        _depth.value = depth + 1
        seceded = False
    try:
        yield
    finally:
        _depth.value -= 1
        if seceded:
            from distributed import rejoin

            rejoin()


def _secede() -> bool:
    from distributed import secede

    try:
        secede()
    except (KeyError, ValueError):  # already seceded, or no worker here
        return False
    return True


# -- the scheduler's logs ----------------------------------------------------------


class _QuietExpectedErrors(logging.Filter):
    """Drop the scheduler's error records for what the primitives expect.

    ``distributed`` logs every ``Queue.get``/``put`` that times out as an
    error with a traceback (dask/distributed#2855), though the caller receives
    and handles the ``TimeoutError``; the primitives wait in short slices, so
    each wait would log several. It also logs an event wait still pending when
    the scheduler closes (an async wait that was cancelled leaves one there for
    a second or two).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = None if record.exc_info is None else record.exc_info[1]
        if record.name == "distributed.event":
            return not isinstance(error, asyncio.CancelledError)
        expected = (
            isinstance(record.args, tuple)
            and record.args[:1] in (("queue_get",), ("queue_put",))
            and isinstance(error, TimeoutError)
        )
        return not expected


def quiet_expected_errors() -> None:
    """Install :class:`_QuietExpectedErrors` in this process (the scheduler's)."""
    for name in ("distributed.core", "distributed.event"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietExpectedErrors) for f in logger.filters):
            logger.addFilter(_QuietExpectedErrors())


def scheduler_address(client: Client) -> str:
    """The address of ``client``'s scheduler."""
    scheduler = client.scheduler
    if scheduler is None:
        raise RuntimeError(f"{client!r} is not connected to a scheduler")
    return str(scheduler.address)
