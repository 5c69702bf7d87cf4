"""What a worker does with one unit of work: call it, await it if async, batch it.

Shared by the thread and process backends. Light imports only: this module is
loaded by every worker process.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
import traceback
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

__all__ = [
    "ChunkResult",
    "TimeoutExpired",
    "call",
    "close_thread_loop",
    "is_async_callable",
    "run_awaitable",
    "run_chunk",
]

_local = threading.local()


class TimeoutExpired(Exception):
    """The awaitable passed the time-out :func:`run_awaitable` gave it."""


def run_awaitable(awaitable: Awaitable[Any], timeout: float | None = None) -> Any:
    """Run ``awaitable`` to completion on this thread's own event loop.

    With ``timeout``, it is cancelled after that many seconds and
    :class:`TimeoutExpired` is raised (its own ``TimeoutError`` passes through).
    """
    runner: asyncio.Runner | None = getattr(_local, "runner", None)
    if runner is None:
        runner = _local.runner = asyncio.Runner()

    async def await_it() -> Any:
        scope = None if timeout is None else asyncio.timeout(timeout)
        try:
            if scope is None:
                return await awaitable
            try:
                async with scope:
                    return await awaitable
            except TimeoutError:
                if scope.expired():
                    raise TimeoutExpired from None
                raise
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) and _cancelling():
                raise  # the runner's own cancel (Ctrl-C): it raises what it must
            # Raised out of the runner, its traceback would hold the runner's
            # frames, which hold the task, which holds it: a cycle that only
            # the cyclic collector frees, with the call's arguments. Raised as
            # is below. (The time-out holds the task, which will hold the box.)
            del scope
            return _Failed(exc)

    outcome = runner.run(await_it())
    if type(outcome) is _Failed:
        # Emptied: from 3.12 the traceback holds the frames that ran the task,
        # and the runner's holds the task, which holds the box.
        error, outcome.error = outcome.error, None
        del outcome
        try:
            raise error  # type: ignore[misc]  # set: a _Failed holds one
        finally:
            del error  # this frame, in the traceback, must not hold it
    return outcome


def _cancelling() -> bool:
    """Whether the running task is being cancelled."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _Failed:
    """What :func:`run_awaitable`'s task returns for an error."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error: BaseException | None = error


def close_thread_loop() -> None:
    """Close the event loop that :func:`call` may have opened in this thread."""
    runner: asyncio.Runner | None = getattr(_local, "runner", None)
    if runner is not None:
        _local.runner = None
        runner.close()


def call(fn: Callable[..., Any], args: Iterable[Any], kwargs: dict[str, Any]) -> Any:
    """Call ``fn``; if it is a coroutine function, run it on this thread's loop."""
    result = fn(*args, **kwargs)
    if inspect.iscoroutine(result):
        return run_awaitable(result)
    return result


def _rebuild_chunk(
    values: list[Any], error: BaseException | None, tb: str | None, elapsed: float
) -> ChunkResult:
    if error is not None and tb is not None:
        from ._errors import RemoteTraceback

        # typeshed says TracebackType; the stdlib passes (and stores) the text.
        error.__cause__ = RemoteTraceback(tb)  # type: ignore[arg-type]
    return ChunkResult(values, error, elapsed)


class ChunkResult:
    """The outcome of a batch of calls: the values in order, then maybe an error.

    As with the builtin ``map``, a call that raises ends the batch: ``values``
    holds the results before it and ``error`` the exception. ``elapsed`` is the
    time the worker spent on the batch, for sizing the next ones.
    """

    __slots__ = ("elapsed", "error", "values")

    def __init__(
        self, values: list[Any], error: BaseException | None, elapsed: float = 0.0
    ) -> None:
        self.values = values
        self.error = error
        self.elapsed = elapsed

    def __reduce__(self) -> tuple[Any, ...]:
        tb = None
        if self.error is not None:
            tb = "".join(traceback.format_exception(self.error))
            tb = f'\n"""\n{tb}"""'
        return (_rebuild_chunk, (self.values, self.error, tb, self.elapsed))


def run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> ChunkResult:
    """Call ``fn(*args)`` for each ``args`` in ``chunk``; stop at the first error."""
    values: list[Any] = []
    start = time.perf_counter()
    for args in chunk:
        try:
            values.append(call(fn, args, {}))
        except BaseException as exc:  # KeyboardInterrupt too: as a task's own
            return ChunkResult(values, exc, time.perf_counter() - start)
    return ChunkResult(values, None, time.perf_counter() - start)


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine (``async def``, or a partial of one,
    or an object whose ``__call__`` is ``async def``)."""
    if type(fn) is types.FunctionType and not fn.__dict__:
        # The common case, at submit: a plain function with no markers on it.
        return bool(fn.__code__.co_flags & inspect.CO_COROUTINE)
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call_method = getattr(type(fn), "__call__", None)  # noqa: B004
    return not inspect.isfunction(fn) and inspect.iscoroutinefunction(call_method)
