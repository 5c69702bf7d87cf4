"""Module-level task functions, importable by worker processes."""

from __future__ import annotations

import builtins
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from collections.abc import Coroutine, Generator


def add(a: int, b: int = 0) -> int:
    """Return ``a + b``."""
    return a + b


def square(x: int) -> int:
    """Return ``x * x``."""
    return x * x


async def async_square(x: int) -> int:
    """Return ``x * x`` after yielding to the event loop."""
    await anyio.sleep(0)
    return x * x


def fail_if_negative(x: int) -> int:
    """Return ``x``; raise ``ValueError`` for a negative ``x``."""
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x


async def async_fail(message: str) -> None:
    """Raise ``KeyError(message)`` from a coroutine."""
    await anyio.sleep(0)
    raise KeyError(message)


def first_word(line: str) -> str:
    """The first word of ``line``; ``next()`` raises ``StopIteration`` if none."""
    return next(iter(line.split()))


def stop_async_at_zero(x: int) -> int:
    """Return ``x``; raise ``StopAsyncIteration`` for 0."""
    if x == 0:
        raise StopAsyncIteration
    return x


class Payload:
    """An argument a test holds only a weak reference to."""


def fail_with(payload: Payload) -> None:
    """Raise ``ValueError``; ``payload`` is only in this frame, not the error."""
    raise ValueError("bad input")


async def async_fail_with(payload: Payload) -> None:
    """:func:`fail_with`, from a coroutine."""
    await anyio.sleep(0)
    raise ValueError("bad input")


def echo_kwargs(*args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Return the arguments as received."""
    return args, kwargs


def getpid() -> int:
    """Return the worker's process id."""
    return os.getpid()


def thread_name() -> str:
    """Return the worker's thread name."""
    return threading.current_thread().name


def sleep_then(seconds: float, value: Any) -> Any:
    """Sleep, then return ``value`` (for tests of time-outs on stuck tasks)."""
    time.sleep(seconds)
    return value


async def async_sleep_then(seconds: float, value: Any) -> Any:
    """Await a sleep, then return ``value``."""
    await anyio.sleep(seconds)
    return value


def die(code: int) -> None:
    """End the worker process at once, as a crash would."""
    os._exit(code)


def crash_on_multiple_of_seven(x: int) -> int:
    """Return ``2 * x``, but end the worker process (exit code 3) when x % 7 == 3."""
    if x % 7 == 3:
        os._exit(3)
    return x * 2


def kill_self(signum: int) -> None:
    """Send ``signum`` to the worker process itself."""
    os.kill(os.getpid(), signum)


class Unpicklable:
    """An object that refuses to be pickled."""

    def __reduce__(self) -> Any:
        raise TypeError("Unpicklable refuses to be pickled")


class GuardedError(Exception):
    """What :class:`Guarded` raises when pickled."""


class Guarded:
    """An object that refuses to be pickled with its own exception class."""

    def __reduce__(self) -> Any:
        raise GuardedError("Guarded objects stay in their process")


def nested_lists(depth: int) -> list[Any]:
    """A list nested ``depth`` deep: too deep to pickle."""
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    return nested


class UnpicklableError(Exception):
    """An exception that holds an unpicklable object."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


class BadInitError(Exception):
    """An exception whose ``__init__`` breaks unpickling (two required args)."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}-{b}")


def raise_unpicklable(message: str) -> None:
    """Raise an exception that cannot be pickled back to the parent."""
    raise UnpicklableError(message)


def raise_bad_init() -> None:
    """Raise an exception that pickles but cannot be rebuilt."""
    raise BadInitError("x", "y")


def return_unpicklable() -> Any:
    """Return a result that cannot be pickled."""
    return threading.Lock()


def init_fail() -> None:
    """An initializer that always fails."""
    raise ValueError("error in initializer")


_init_state: dict[str, Any] = {}


def init_set(value: Any) -> None:
    """An initializer that records ``value`` for :func:`get_init_value`."""
    _init_state["value"] = value


def get_init_value() -> Any:
    """Return what :func:`init_set` recorded in this worker."""
    return _init_state.get("value")


def wait_for_file(path: str, limit: float = 60.0) -> bool:
    """Block until ``path`` exists (the test's signal); False after ``limit``."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def signal_then_wait(started: str, release: str, value: Any) -> Any:
    """Create ``started``, block until ``release`` exists, then return ``value``."""
    with open(started, "w"):
        pass
    if not wait_for_file(release):
        raise TimeoutError("the test never released this task")
    return value


def record_start(started: str, value: Any) -> Any:
    """Create ``started`` and return ``value`` (proof that the task ran)."""
    with open(started, "w"):
        pass
    return value


_queue_for_init: list[Any] = []


def init_with_queue(queue: Any) -> None:
    """An initializer that keeps a multiprocessing queue for :func:`put_on_queue`."""
    _queue_for_init.append(queue)


def put_on_queue(value: Any) -> bool:
    """Put ``value`` on the queue the initializer received."""
    _queue_for_init[0].put(value)
    return True


class ExitsWhenUnpickled:
    """A result whose unpickling calls ``sys.exit`` (a hostile ``__reduce__``)."""

    def __reduce__(self) -> Any:
        import sys

        return (sys.exit, (1,))


def make_exits_when_unpickled() -> ExitsWhenUnpickled:
    """Return an object that raises SystemExit when the parent unpickles it."""
    return ExitsWhenUnpickled()


def init_fail_logging_to(queue: Any) -> None:
    """Log through ``queue`` on the stdlib's logger, then fail (as CPython's test)."""
    import logging
    from logging.handlers import QueueHandler

    logger = logging.getLogger("concurrent.futures")
    logger.addHandler(QueueHandler(queue))
    logger.setLevel("CRITICAL")
    logger.propagate = False
    raise ValueError("error in initializer")


def use_thread_executor() -> None:
    """Create a thread executor and run a task (in a forked child)."""
    from unirun import ThreadExecutor

    with ThreadExecutor(max_workers=1) as ex:
        ex.submit(int).result()


def raise_keyboard_interrupt() -> None:
    """Raise KeyboardInterrupt from inside a task (not a real Ctrl-C)."""
    raise KeyboardInterrupt("raised by the task")


class ErrorWhenUnpickled:
    """An argument whose unpickling raises (in the worker)."""

    def __reduce__(self) -> Any:
        return (_refuse, ("ErrorWhenUnpickled cannot be rebuilt",))


def _refuse(message: str) -> None:
    raise ValueError(message)


class ExitsWhenUnpickledArg:
    """An argument whose unpickling calls ``sys.exit`` (in the worker)."""

    def __reduce__(self) -> Any:
        import sys

        return (sys.exit, (2,))


class FightsPicklingError(Exception):
    """An exception whose pickling raises SystemExit (in the worker)."""

    def __reduce__(self) -> Any:
        raise SystemExit("refusing to be pickled")


def raise_fighting() -> None:
    """Raise an exception that fights being sent back."""
    raise FightsPicklingError("hostile")


def record_then_crash(folder: str, x: int, bad: int) -> int:
    """Leave a file named after ``x`` in ``folder``; end the worker when x == bad."""
    with open(os.path.join(folder, f"ran-{x}"), "a") as marker:
        marker.write("ran\n")
    if x == bad:
        os._exit(5)
    return x * x


def environment(name: str) -> str | None:
    """Return the worker's value of environment variable ``name``."""
    return os.environ.get(name)


def stream_facts(line: str) -> dict[str, Any]:
    """What code reads of ``sys.stdout`` as a ``TextIOWrapper``; writes ``line``
    through a wrapper of its own around ``sys.stdout.buffer`` on the way."""
    import io
    import sys

    out: Any = sys.stdout  # a TextIOWrapper, or what stands in for one
    facts: dict[str, Any] = {
        "name": out.name,
        "mode": out.mode,
        "buffer": (out.buffer.name, out.buffer.mode),
        "buffer can": (out.buffer.readable(), out.buffer.writable()),
        "seekable": out.buffer.seekable(),
        "errors": type(out.errors),
        "line_buffering": type(out.line_buffering),
    }
    out.reconfigure(encoding="utf-8", errors="replace", line_buffering=True)
    facts["reconfigured"] = (out.encoding, out.errors, out.line_buffering)
    for bad in ({"encoding": 5}, {"newline": "x"}, {"encoding": "no-such-codec"}):
        try:
            out.reconfigure(**bad)
        except (TypeError, ValueError, LookupError) as exc:
            facts.setdefault("refused", []).append(type(exc))
    own = io.TextIOWrapper(out.buffer, encoding="utf-8", write_through=True)
    own.write(line + "\n")
    own.detach()  # leaves sys.stdout.buffer open
    return facts


def write_bytes_in_pieces(text: str, size: int) -> int:
    """Write ``text`` to ``sys.stdout.buffer`` as UTF-8, ``size`` bytes at a
    time (a character's bytes split between writes); return the byte count."""
    import sys

    data = text.encode("utf-8")
    for start in range(0, len(data), size):
        sys.stdout.buffer.write(data[start : start + size])
    sys.stdout.buffer.flush()
    return len(data)


def print_lines(prefix: str, count: int) -> int:
    """Print ``count`` numbered lines to stdout and one to stderr."""
    import sys

    for number in range(count):
        print(f"{prefix} {number}")
    print(f"{prefix} on stderr", file=sys.stderr)
    return count


def print_partial_then_die(text: str) -> None:
    """Print a whole line, then half of one, then end the worker abruptly."""
    import sys

    print(f"{text} whole")
    sys.stdout.write(f"{text} half")
    os._exit(7)


def log_message(name: str, level: int, message: str) -> int:
    """Log ``message`` on logger ``name``; return this worker's pid."""
    import logging

    logging.getLogger(name).log(level, message)
    return os.getpid()


class Marker:
    """A plain object a test can hold a weak reference to."""


def shut_down_from_task(executor: Any) -> None:
    """Call ``executor.shutdown(wait=True)`` from inside one of its tasks."""
    executor.shutdown(wait=True)


async def sleep_forever_then_mark(marker: str) -> None:
    """Sleep (on any event loop) until cancelled; leave ``marker`` on the way out."""
    try:
        await anyio.sleep(3600)
    finally:
        with open(marker, "w"):
            pass


def stress_task(index: int, action: str) -> int:
    """One task of the stress test: return, raise, overrun a time-out, or crash."""
    if action == "raise":
        raise ValueError(f"task {index} failed")
    if action == "slow":
        time.sleep(0.05)  # longer than its time-out; finishes all the same
    elif action == "crash":
        os._exit(9)
    return index


def raise_cancelled(message: str) -> None:
    """Raise asyncio's CancelledError itself (nobody cancelled this task)."""
    import asyncio

    raise asyncio.CancelledError(message)


async def async_raise_cancelled(message: str) -> None:
    """The same from a coroutine."""
    import asyncio

    raise asyncio.CancelledError(message)


def subtract_mean_in_place(array: Any) -> float:
    """Centre a numpy ``array`` in place (it must be writable); its new sum."""
    array -= array.mean()
    return float(array.sum())


def read_only_array(size: int) -> Any:
    """A read-only numpy array of ``size`` floats (a view of bytes)."""
    import numpy

    return numpy.frombuffer(numpy.arange(float(size)).tobytes())


def child_interrupt_handling() -> str:
    """What a Python program started by this task does on SIGINT (its handler)."""
    import subprocess
    import sys

    code = "import signal; print(signal.getsignal(signal.SIGINT).__name__)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class Handle:
    """Awaitable, but not a coroutine (a lazy query object, say)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, int]:
        yield from ()
        return self.value


def make_handle(value: int) -> Handle:
    """A plain function that returns an awaitable that is not a coroutine."""
    return Handle(value)


def start_square(x: int) -> Coroutine[Any, Any, int]:
    """A plain function that returns a coroutine (of :func:`async_square`)."""
    return async_square(x)


def raise_base_at(x: int, bad: int, name: str) -> int:
    """Return ``x``; at ``bad``, raise the builtin exception named ``name``."""
    if x == bad:
        raise getattr(builtins, name)(f"raised at {x}")
    return x
