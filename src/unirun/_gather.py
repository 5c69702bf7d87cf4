"""``gather``: many futures and awaitables as one Future of their results.

:func:`gather` is what every executor's ``gather`` does (awaitables are
submitted to it first); :func:`gather_futures` combines futures that already
exist, as ``asyncio.gather`` does: results in order, the first error fails the
whole unless ``return_exceptions``, and cancelling the whole cancels each one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import functools
import inspect
from concurrent.futures._base import FINISHED, PENDING
from typing import TYPE_CHECKING, Any

from ._follow import follow_asyncio
from ._future import Future
from ._stats import ticker

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Iterable

    from ._options import TaskOptions
    from ._progress import Progress
    from ._types import T

__all__ = ["gather", "gather_futures"]


async def _await_it(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _close_unstarted(coroutine: Coroutine[Any, Any, Any], future: Future[Any]) -> None:
    """Close a coroutine whose task ended before it ran it (cancelled first, or
    the coroutine could not be sent), as asyncio closes the coroutine of a task
    cancelled first: no "coroutine ... was never awaited" warning."""
    if inspect.getcoroutinestate(coroutine) == "CORO_CREATED":
        with contextlib.suppress(ValueError, RuntimeError):  # started meanwhile
            coroutine.close()


def gather(
    submit: Callable[
        [Callable[..., Any], tuple[Any, ...], dict[str, Any], TaskOptions], Future[Any]
    ],
    items: tuple[cf.Future[Any] | Awaitable[Any], ...],
    return_exceptions: bool,
    options: TaskOptions,
    progress: Progress | None = None,
) -> Future[list[Any]]:
    """One Future of the results of ``items``, in order.

    A future is followed as it is (a task of the caller's loop stays there);
    any other awaitable is sent through ``submit`` (an executor's ``_submit``)
    with ``options``. ``progress`` watches each one and is closed before the
    combined Future is done.
    """
    children: list[cf.Future[Any]] = []
    for item in items:
        if isinstance(item, cf.Future):
            children.append(item)
        elif isinstance(item, asyncio.Future):
            # A task (or future) of the caller's loop stays there.
            children.append(follow_asyncio(item))
        elif inspect.isawaitable(item):
            submitted = submit(_await_it, (item,), {}, options)
            if inspect.iscoroutine(item):
                submitted.add_done_callback(functools.partial(_close_unstarted, item))
            children.append(submitted)
        else:
            raise TypeError(
                f"gather() takes futures and awaitables, got {type(item).__name__}"
                f": {item!r}"
            )
    if progress is not None:
        progress.start(len(children))
        for child in children:
            progress.watch(child)
    return gather_futures(children, return_exceptions, progress)


class _Gathered(Future[list[Any]]):
    """The combined Future: a wait without limit for it is refused where one
    for a child still pending is (the thread of the event loop that alone can
    end that child: it would wait for ever)."""

    _children: Iterable[cf.Future[Any]] = ()

    def _refuse_endless_wait(self) -> None:
        for child in self._children:
            if isinstance(child, Future) and not child.done():
                child._refuse_endless_wait()

    def _on_interrupt(self) -> None:
        """A Ctrl-C in :meth:`result`: do what it does in each child's (stop a
        process pool), once per pool."""
        done: list[Callable[[], object]] = []
        for child in list(self._children):
            handler = child._on_interrupt if isinstance(child, Future) else None
            if handler is not None and not any(handler is h for h in done):
                done.append(handler)
                handler()


_Gathered.__name__ = _Gathered.__qualname__ = "Future"  # its repr, as any future's


def gather_futures(
    children: list[cf.Future[Any]],
    return_exceptions: bool,
    progress: Progress | None = None,
) -> Future[list[Any]]:
    """Combine ``children`` into one Future of their results, in order.

    ``progress`` is closed before the combined Future is done.
    """
    outer = _Gathered()
    results: list[Any] = [None] * len(children)
    # Each child's place, by identity (futures hash so): one table rather than a
    # callback object per child for the garbage collector to visit. A future
    # given twice fills each of its places.
    places: dict[cf.Future[Any], int] = {}
    repeats: dict[cf.Future[Any], list[int]] = {}
    for index, child in enumerate(children):
        if child in places:
            repeats.setdefault(child, []).append(index)
        else:
            places[child] = index
    last = len(places) - 1
    arrived = ticker()
    outer._children = places

    def finish() -> None:
        outer._children = ()  # done: its children's outcomes are not kept
        if progress is not None:
            progress.close()

    if not children:
        finish()
        outer.set_result([])
        return outer

    def on_outer_done(_: cf.Future[list[Any]]) -> None:
        if outer.cancelled():
            finish()
            outer._start()  # wake concurrent.futures.wait()
            for child in places:
                if isinstance(child, Future):
                    child._abandon()
                else:
                    child.cancel()

    def on_child_done(child: cf.Future[Any]) -> None:
        # Runs once per task: the states are read directly (a done future's
        # fields no longer change), as the stdlib's own helpers do.
        if outer._state != PENDING:
            return
        if child._state != FINISHED:
            error: BaseException | None = cf.CancelledError()
        else:
            error = child._exception
        if error is not None and not return_exceptions:
            finish()
            outer._set_exception_if_pending(error)
            return
        # Done and not failed: the result is there (read without a lock).
        value = error if error is not None else child._result
        results[places[child]] = value
        if repeats:
            for index in repeats.get(child, ()):
                results[index] = value
        # Each child counts once, after its result is in: the last one finishes.
        if arrived() == last:
            finish()
            outer._set_result_if_pending(results)

    for child in places:
        child.add_done_callback(on_child_done)
    outer.add_done_callback(on_outer_done)
    return outer
