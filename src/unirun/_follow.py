"""One future following another: a task run elsewhere, or an asyncio future."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from ._future import Future
from ._owned import ENDLESS_WAIT

if TYPE_CHECKING:
    import concurrent.futures as cf

__all__ = ["chain", "copy_outcome", "follow_asyncio"]


def copy_outcome(source: cf.Future[Any], target: Future[Any]) -> None:
    """Give ``target`` the outcome of the finished ``source``, unless it has one."""
    if source.cancelled():
        if not target.cancel():
            target._mark_cancelled()
    elif (error := source.exception()) is not None:
        target._set_exception_if_pending(error)
    else:
        target._set_result_if_pending(source.result())


def chain(outer: Future[Any], inner: cf.Future[Any]) -> None:
    """Make ``outer`` (not yet started) follow ``inner``, a task run elsewhere.

    ``outer`` starts running and takes ``inner``'s outcome when it comes;
    cancelling ``outer`` cancels ``inner`` (a running one only where its backend
    can), and abandoning it abandons ``inner``. If ``outer`` was cancelled
    already, ``inner`` is cancelled.
    """

    def stop(abandon: bool) -> bool:
        if abandon and isinstance(inner, Future):
            return inner._abandon()
        return inner.cancel()

    if not outer._start(stop):
        if isinstance(inner, Future):
            inner._abandon()
        else:
            inner.cancel()
        return
    inner.add_done_callback(lambda done: copy_outcome(done, outer))


class _Follower(Future[Any]):
    """Follows an asyncio future: a wait for it without limit is refused on the
    thread of that future's loop, which alone can end it (it would wait for
    ever), as for a coroutine executor's future there (see _owned.py)."""

    _loop_thread: int | None = None

    def _refuse_endless_wait(self) -> None:
        if self._loop_thread == threading.get_ident():
            raise RuntimeError(ENDLESS_WAIT)


_Follower.__name__ = _Follower.__qualname__ = "Future"  # its repr, as any future's


def follow_asyncio(source: asyncio.Future[Any]) -> Future[Any]:
    """A running Future that takes the outcome of an asyncio future or task.

    ``source`` stays on its own loop: its outcome is copied when it is done, and
    cancelling (or abandoning) the returned Future cancels ``source`` there,
    from any thread, as :func:`asyncio.gather` cancels its children.
    """
    loop = source.get_loop()

    def stop(abandon: bool) -> bool:
        loop.call_soon_threadsafe(source.cancel)
        return True

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    follower = _Follower()
    if running is loop:
        follower._loop_thread = threading.get_ident()
    follower._start(stop)

    def follow() -> None:
        source.add_done_callback(lambda done: copy_outcome(done, follower))  # type: ignore[arg-type]  # the same methods

    if running is loop:
        follow()
    else:  # asyncio futures are not thread-safe: on their own loop only
        loop.call_soon_threadsafe(follow)
    return follower
