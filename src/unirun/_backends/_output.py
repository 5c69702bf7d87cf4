"""What process workers print and log, delivered to the caller's process.

In a worker, ``sys.stdout`` and ``sys.stderr`` send whole lines (and what a
flush asks for) to the parent, and a root logging handler sends each record.
In the parent, an :class:`OutputRelay` writes the lines to the *current*
``sys.stdout``/``sys.stderr`` (so ``redirect_stdout``, pytest's ``capsys`` and
notebooks see them) and hands the records to the parent's loggers, from a
thread of its own: a task that floods its output delays nobody else's result.
A task's own result waits for its output to be written::

    worker: print() -> OUTPUT ---pipe---> manager -> relay queue -> writer thread
    worker: REPLY ---------------pipe---> manager -> (output pending? via the queue)
"""

from __future__ import annotations

import codecs
import io
import logging
import pickle
import queue
import sys
import threading
from typing import TYPE_CHECKING, Any

from . import _wire

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["OutputRelay", "deliver", "install_forwarding"]


class _ForwardedBytes(io.BufferedIOBase):
    """``sys.stdout.buffer`` of a worker: bytes are decoded and forwarded."""

    def __init__(self, text: _ForwardedStream) -> None:
        super().__init__()
        self._text = text
        # A character's bytes may come in two writes: kept until it is whole.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The name of the stream it stands for: ``<stdout>`` or ``<stderr>``."""
        return self._text.name

    @property
    def mode(self) -> str:
        """``"wb"``, as the parent's own buffer."""
        return "wb"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._text.isatty()

    def fileno(self) -> int:
        return self._text.fileno()

    def write(self, data: Any) -> int:
        with self._lock:
            text = self._decoder.decode(bytes(data))
            if text:
                self._text.write(text)
        return len(data)

    def flush(self) -> None:
        self._text.flush()


class _ForwardedStream(io.TextIOBase):
    """A worker's ``sys.stdout`` or ``sys.stderr``: lines go to the parent.

    It reads as the ``TextIOWrapper`` it stands in for (name, mode, encoding,
    errors, line buffering, ``reconfigure``); what it sends, whole lines of
    text, the parent writes to its own stream, in that stream's encoding.
    """

    def __init__(
        self, send: Callable[..., None], number: int, original: object, tty: bool
    ) -> None:
        super().__init__()
        self._tty = tty
        self._send = send
        self._header = _wire.OUTPUT.pack(_wire.K_OUTPUT, number)
        self._original = original
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._name = "<stdout>" if number == 1 else "<stderr>"
        self._encoding = "utf-8"  # any text goes: the parent writes it
        # As Python set them up here (from the locale), as in the parent.
        self._errors: str = getattr(original, "errors", None) or "strict"
        #: Whole lines go out as written, as with line buffering.
        self.line_buffering = True
        self.write_through = False
        self.buffer = _ForwardedBytes(self)

    @property
    def name(self) -> str:
        """``<stdout>`` or ``<stderr>``, as the stream it stands for."""
        return self._name

    @property
    def mode(self) -> str:
        """``"w"``, as the stream it stands for."""
        return "w"

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only, as in TextIOWrapper
        return self._encoding

    @property
    def errors(self) -> str:  # type: ignore[override]  # read-only, as in TextIOWrapper
        return self._errors

    def reconfigure(
        self,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
        line_buffering: bool | None = None,
        write_through: bool | None = None,
    ) -> None:
        """Take the settings as ``TextIOWrapper.reconfigure`` does (and checks
        them as it does); the text still reaches the parent as text."""
        given: tuple[tuple[str, object], ...] = (
            ("encoding", encoding),
            ("errors", errors),
            ("newline", newline),
        )
        for name, value in given:  # checked as TextIOWrapper checks them
            if value is not None and not isinstance(value, str):
                kind = type(value).__name__
                raise TypeError(
                    f"reconfigure() argument {name!r} must be str or None, not {kind}"
                )
        if newline not in (None, "", "\n", "\r", "\r\n"):
            raise ValueError(f"illegal newline value: {newline}")
        if encoding is not None:
            codecs.lookup(encoding)  # LookupError if unknown
            self._encoding = encoding
            self._errors = "strict"
        if errors is not None:
            self._errors = errors
        self.flush()
        if line_buffering is not None:
            self.line_buffering = bool(line_buffering)
        if write_through is not None:
            self.write_through = bool(write_through)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._tty

    def fileno(self) -> int:
        # Code that writes to the descriptor itself bypasses forwarding.
        fileno: Callable[[], int] = getattr(self._original, "fileno")  # noqa: B009
        return fileno()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            if "\n" not in text:
                self._pending.append(text)
                return len(text)
            head, newline, tail = text.rpartition("\n")
            self._pending.append(head + newline)
            data = "".join(self._pending)
            self._pending = [tail] if tail else []
            self._send(self._header, data.encode("utf-8", "surrogatepass"))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                data = "".join(self._pending)
                self._pending = []
                self._send(self._header, data.encode("utf-8", "surrogatepass"))


class _ForwardHandler(logging.Handler):
    """A worker's logging handler: each record goes to the parent, once, however
    many loggers it is on (a record propagates through each of them)."""

    def __init__(self, send: Callable[..., None]) -> None:
        super().__init__()
        self._send = send
        self._header = _wire.LOG.pack(_wire.K_LOG, 0)

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, _SENT, False):
            return  # sent by this handler on a logger below
        try:
            setattr(record, _SENT, True)
            state = dict(record.__dict__)
            del state[_SENT]
            state["msg"] = record.getMessage()
            state["args"] = None
            if record.exc_info and not record.exc_text:
                state["exc_text"] = logging.Formatter().formatException(record.exc_info)
            state["exc_info"] = None
            state.pop("message", None)
            try:
                data = pickle.dumps(state)
            except Exception:  # an extra attribute that does not pickle
                data = pickle.dumps({key: str(value) for key, value in state.items()})
            self._send(self._header, data)
        except Exception:
            self.handleError(record)


#: The attribute that marks a record as sent (a record is sent once).
_SENT = "_unirun_forwarded"


def loggers() -> list[tuple[str, logging.Logger]]:
    """This process's loggers by name, the root's as ``""``: a snapshot of a
    table that another thread may add to meanwhile."""
    while True:
        try:
            found = list(logging.root.manager.loggerDict.items())
        except RuntimeError:  # it changed size while read: read it again
            continue
        named = [(name, lg) for name, lg in found if isinstance(lg, logging.Logger)]
        return [("", logging.root), *named]


def loggers_with_handlers() -> list[str]:
    """The names of the loggers that have a handler (other than a library's
    ``NullHandler``), the root's as ``""``: where logging is set up here."""
    return [
        name
        for name, logger in loggers()
        if any(not isinstance(h, logging.NullHandler) for h in logger.handlers)
    ]


def install_forwarding(
    send: Callable[..., None], handled: list[str], ttys: tuple[bool, bool]
) -> None:
    """Make this worker's output go to the parent, and its logging records
    too, from the loggers named in ``handled``: those that had a handler in the
    parent when the worker began, as a forked worker inherits its handlers.
    Elsewhere the worker's logging is as unset as the parent's was, for the
    worker's code to set up (``logging.basicConfig``), and Python's last-resort
    handler writes to the forwarded ``sys.stderr``, as it would in the parent.
    ``ttys``: whether the parent's ``sys.stdout`` and ``sys.stderr`` were
    terminals (for ``isatty``)."""
    sys.stdout = _ForwardedStream(send, 1, sys.__stdout__, ttys[0])
    sys.stderr = _ForwardedStream(send, 2, sys.__stderr__, ttys[1])
    if handled:
        handler = _ForwardHandler(send)
        for name in handled:
            logging.getLogger(name or None).addHandler(handler)


def deliver(stream: int, item: Any) -> None:
    """Hand one piece of a worker's output to this process.

    ``stream`` 0: ``item`` is a pickled logging record (as a worker's root
    handler sends it), handled by the logger of its name; 1 or 2: ``item`` is
    text, written to the current ``sys.stdout`` or ``sys.stderr``. An error is
    logged on the ``unirun`` logger, never raised.
    """
    try:
        if stream == 0:
            record = logging.makeLogRecord(pickle.loads(item))
            logging.getLogger(record.name).handle(record)
        else:
            target = sys.stdout if stream == 1 else sys.stderr
            if target is not None:
                target.write(item)
                flush = getattr(target, "flush", None)  # a write-only stand-in
                if flush is not None:  # has none: print() does without it too
                    flush()
    except Exception:
        logging.getLogger("unirun").exception("could not relay worker output")


class OutputRelay:
    """Writes workers' lines and log records in this process, off the manager.

    Called from the pool's manager thread only (no lock needed for the line
    buffers); the writer thread starts on the first output.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._partial: dict[tuple[int, int], str] = {}
        self._queue: queue.SimpleQueue[tuple[int, Any, Any] | None] = (
            queue.SimpleQueue()
        )
        self._unwritten: dict[int, int] = {}  # worker -> items not yet handled
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # No writer thread could start (the interpreter exits): write in place.
        self._in_place = False

    def output(self, worker: int, stream: int, data: bytes) -> None:
        """Take text a worker sent; queue its complete lines."""
        key = (worker, stream)
        text = self._partial.pop(key, "") + data.decode("utf-8", "surrogatepass")
        head, newline, tail = text.rpartition("\n")
        if tail:
            self._partial[key] = tail
        if newline:
            self._put(worker, stream, head + newline)

    def log(self, worker: int, data: bytes) -> None:
        """Take a logging record a worker sent."""
        self._put(worker, 0, data)

    def end_of_task(self, worker: int, deliver: Callable[[], None]) -> None:
        """Call ``deliver`` once ``worker``'s output so far has been written."""
        for stream in (1, 2):
            rest = self._partial.pop((worker, stream), None)
            if rest:
                self._put(worker, stream, rest)
        with self._lock:
            waiting = self._unwritten.get(worker, 0)
        if waiting:
            self._put(worker, -1, deliver)
        else:
            deliver()

    def close(self) -> None:
        """Write what is left and stop the writer thread."""
        for (worker, stream), rest in list(self._partial.items()):
            self._put(worker, stream, rest)
        self._partial.clear()
        thread = self._thread
        if thread is not None:
            self._queue.put(None)
            if thread is not threading.current_thread():
                thread.join()

    def _put(self, worker: int, stream: int, item: Any) -> None:
        with self._lock:
            if self._thread is None and not self._in_place:
                thread = threading.Thread(
                    target=self._write_all, name=f"{self._name}-output", daemon=True
                )
                try:
                    thread.start()
                except RuntimeError:
                    # Output that first comes at interpreter exit, when no thread
                    # may start (3.12+): nothing is queued yet, so the manager
                    # writes it, and all that follows, in order.
                    self._in_place = True
                else:
                    self._thread = thread
            in_place = self._in_place
            if not in_place:
                self._unwritten[worker] = self._unwritten.get(worker, 0) + 1
        if in_place:
            _write(stream, item)
        else:
            self._queue.put((worker, stream, item))

    def _write_all(self) -> None:
        while (entry := self._queue.get()) is not None:
            worker, stream, item = entry
            try:
                _write(stream, item)
            finally:
                with self._lock:
                    self._unwritten[worker] -= 1


def _write(stream: int, item: Any) -> None:
    """Write one item: a task's end to deliver (-1), or a stream's text or record."""
    if stream == -1:
        item()
    else:
        deliver(stream, item)
