"""Progress for ``map``, ``as_completed`` and ``gather``: count and show finished items.

    progress=...  --make_progress-->  Progress: one thread-safe count per call
                                        | start(total), update(n), close()
                                        v
                  a display: _Hook      a ``(done, total)`` callable, once per item
                             _Bar       a tqdm-like class: cls(total=), update, close
                             _Rich      rich's bar on stderr
                             _Counter   our own one-line counter on stderr

Items are counted where they finish, by a done callback on each future (or on
each chunk of a batched map, which counts all its items), so a bar moves while
the consumer is still busy. The consumer counts a future too when it gets there
first; each future is counted once, so the count is whole when iteration ends.
"""

from __future__ import annotations

import functools
import operator
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures._base import CANCELLED, CANCELLED_AND_NOTIFIED
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ._call import ChunkResult

_CANCELLED = (CANCELLED, CANCELLED_AND_NOTIFIED)

if TYPE_CHECKING:
    import concurrent.futures as cf
    from collections.abc import Iterable, Iterator
    from typing import TextIO

__all__ = [
    "Items",
    "Progress",
    "ProgressBar",
    "ProgressHook",
    "ProgressOption",
    "TrackedFutures",
    "each_future",
    "make_progress",
    "map_chunk",
    "map_item",
    "sized",
]


class ProgressBar(Protocol):
    """What ``progress=`` takes as a class: tqdm's interface, or a subset of it."""

    def __init__(self, *, total: int | None) -> None: ...

    def update(self, n: int, /) -> object:
        """Advance by ``n`` finished items."""
        ...

    def close(self) -> object:
        """Finish the bar."""
        ...


#: Called as ``hook(done, total)``: first with 0, then once per finished item.
ProgressHook: TypeAlias = Callable[[int, "int | None"], object]

#: What ``map``, ``as_completed`` and ``gather`` take as ``progress=``.
ProgressOption: TypeAlias = (
    "bool | ProgressHook | type[ProgressBar] | functools.partial[ProgressBar] | None"
)


def make_progress(progress: ProgressOption) -> Progress | None:
    """Turn a ``progress=`` argument into a :class:`Progress`, or ``None`` for none.

    ``True`` picks tqdm (``tqdm.auto``) when it is installed, else rich, else our
    plain counter; a class (or a ``functools.partial`` of one, to pass options)
    is used as a tqdm-like bar; another callable is called as ``(done, total)``.
    Nothing is shown until :meth:`Progress.start`.

    Raises:
        TypeError: ``progress`` is none of these.
    """
    if progress is None or progress is False:
        return None
    if progress is True:
        return Progress(_default_display())
    if isinstance(progress, type) or (
        isinstance(progress, functools.partial) and isinstance(progress.func, type)
    ):
        return Progress(_Bar(progress))
    if callable(progress):
        return Progress(_Hook(progress))
    raise TypeError(
        "progress must be True, False, None, a tqdm-like class or a "
        f"(done, total) callable, got {type(progress).__name__}: {progress!r}"
    )


def sized(
    items: Iterator[Any], iterables: tuple[Iterable[Any], ...], buffersize: int | None
) -> tuple[Iterator[Any], int | None]:
    """Return ``items`` (the zipped ``iterables``) and how many there are.

    Without ``buffersize`` every item is submitted at once anyway, so they are
    counted exactly; with it, the total is what ``operator.length_hint`` says of
    every iterable (the shortest wins), or ``None`` when one cannot say.
    """
    if buffersize is None:
        listed = list(items)
        return iter(listed), len(listed)
    hints = [operator.length_hint(iterable, -1) for iterable in iterables]
    if not hints or min(hints) < 0:
        return items, None
    return items, min(hints)


class _Display(Protocol):
    def open(self, total: int | None) -> None: ...

    def advance(self, done: int, n: int) -> None: ...

    def close(self, done: int) -> None: ...


_NEW, _OPEN, _CLOSED = "new", "open", "closed"


class Progress:
    """The count of finished items of one ``map``, ``as_completed`` or ``gather``.

    Thread-safe: done callbacks call it from worker and event-loop threads; one
    lock serialises them, so a display sees the counts in order. Counting may
    begin before :meth:`start`, which shows what was counted so far. After
    :meth:`close`, nothing more is shown. If the display raises, it is closed and
    the error propagates to whoever counted.
    """

    __slots__ = ("_display", "_done", "_lock", "_seen", "_state")

    def __init__(self, display: _Display) -> None:
        self._display = display
        # Reentrant: a garbage-collected iterator may close its progress from
        # inside a display call on the same thread.
        self._lock = threading.RLock()
        self._done = 0
        self._state = _NEW
        # Futures counted by one of their two counters (callback or consumer).
        self._seen: dict[cf.Future[Any], None] = {}

    @property
    def done(self) -> int:
        """Items counted so far."""
        return self._done

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._state is _CLOSED

    def start(self, total: int | None) -> None:
        """Show the progress: ``total`` items (``None``: unknown), done so far."""
        with self._lock:
            if self._state is not _NEW:
                return
            self._state = _CLOSED  # until open() succeeds
            self._display.open(total)
            self._state = _OPEN
            if self._done:
                self._show(self._done)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more finished items."""
        if n <= 0:
            return
        with self._lock:
            if self._state is _CLOSED:
                return
            self._done += n
            if self._state is _OPEN:
                self._show(n)

    def _show(self, n: int) -> None:
        try:
            self._display.advance(self._done, n)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Finish the display (a tqdm bar is closed); later counts are ignored."""
        with self._lock:
            state, self._state = self._state, _CLOSED
            self._seen.clear()
            if state is _OPEN:
                self._display.close(self._done)

    def track(self, future: cf.Future[Any], items: Items | None = None) -> None:
        """Count ``future``'s items when it finishes, unless :meth:`arrived` did.

        ``items`` says how many items a finished future stands for (default:
        one, whatever its outcome).
        """
        future.add_done_callback(self.on_done(items or each_future))

    def on_done(self, items: Items) -> Callable[[cf.Future[Any]], None]:
        """The done callback :meth:`track` adds, made once for many futures."""
        return functools.partial(self._count_once, items)

    def arrived(self, future: cf.Future[Any], items: Items | None = None) -> None:
        """Count ``future``'s items now if it is done and was not counted yet."""
        if future.done():
            self._count_once(items or each_future, future)

    def _count_once(self, items: Items, future: cf.Future[Any]) -> None:
        if self._state is _CLOSED:
            return
        # Of the two counters, the first counts and the second only forgets the
        # future; claimed and counted under the lock, so that the second (the
        # consumer, which may then close) never finds it claimed, not counted.
        with self._lock:
            if future in self._seen:
                del self._seen[future]
                return
            self._seen[future] = None
            n = items(future)
            if n > 0:
                self.update(n)

    def watch(self, future: cf.Future[Any]) -> None:
        """Count one item each time ``future`` finishes (for ``gather``)."""
        future.add_done_callback(lambda _: self.update(1))


#: How many items a finished future stands for.
Items: TypeAlias = Callable[["cf.Future[Any]"], int]


def each_future(future: cf.Future[Any]) -> int:
    """One, whatever the outcome (``as_completed`` yields cancelled futures too)."""
    return 1


def map_item(future: cf.Future[Any]) -> int:
    """One for a finished task of a map; none for a cancelled one."""
    # The state without its lock: the future is done, so it no longer changes.
    return 0 if future._state in _CANCELLED else 1


def map_chunk(future: cf.Future[Any]) -> int:
    """Every item of a finished chunk of a batched map, the failed one included."""
    if future.cancelled():
        return 0
    if future.exception() is not None:
        return 1
    result = future.result()
    if isinstance(result, ChunkResult):
        return len(result.values) + (result.error is not None)
    return 1


class TrackedFutures(deque["cf.Future[Any]"]):
    """The futures of a map, each tracked by a :class:`Progress` when appended."""

    def __init__(self, progress: Progress, items: Items) -> None:
        super().__init__()
        self._on_done = progress.on_done(items)

    def append(self, future: cf.Future[Any], /) -> None:
        """Add ``future`` on the right; its items count when it finishes."""
        super().append(future)
        future.add_done_callback(self._on_done)


# -- displays ---------------------------------------------------------------------


class _Hook:
    """A ``(done, total)`` callable: called with 0, then once per item."""

    def __init__(self, hook: ProgressHook) -> None:
        self._hook = hook
        self._total: int | None = None

    def open(self, total: int | None) -> None:
        self._total = total
        self._hook(0, total)

    def advance(self, done: int, n: int) -> None:
        hook, total = self._hook, self._total
        if n == 1:
            hook(done, total)
            return
        for count in range(done - n + 1, done + 1):
            hook(count, total)

    def close(self, done: int) -> None:
        pass


class _Bar:
    """A tqdm-like class: ``cls(total=total)``, then ``update(n)`` and ``close()``."""

    def __init__(self, cls: Callable[..., ProgressBar]) -> None:
        self._cls = cls
        self._bar: ProgressBar | None = None

    def open(self, total: int | None) -> None:
        self._bar = self._cls(total=total)

    def advance(self, done: int, n: int) -> None:
        assert self._bar is not None
        self._bar.update(n)

    def close(self, done: int) -> None:
        assert self._bar is not None
        self._bar.close()


class _Rich:
    """rich's progress bar on stderr, with a done/total column."""

    def __init__(self, progress_module: Any) -> None:
        self._module = progress_module
        self._bar: Any = None
        self._task: Any = None

    def open(self, total: int | None) -> None:
        rich_progress = self._module
        from rich.console import Console

        self._bar = rich_progress.Progress(
            *rich_progress.Progress.get_default_columns(),
            rich_progress.MofNCompleteColumn(),
            console=Console(stderr=True),
        )
        self._task = self._bar.add_task("", total=total)
        self._bar.start()

    def advance(self, done: int, n: int) -> None:
        self._bar.update(self._task, completed=done)

    def close(self, done: int) -> None:
        self._bar.update(self._task, completed=done, refresh=True)
        self._bar.stop()


class _Counter:
    """Our plain counter: one line on stderr, redrawn at most ten times a second.

    ``"37/100  37% 1.2s 30.8/s"``, or ``"37 1.2s 30.8/s"`` when the total is
    unknown; the final state is drawn at close, followed by a newline.
    """

    #: Seconds between two redraws (the first and the last are always drawn).
    INTERVAL = 0.1

    def __init__(self) -> None:
        self._file: TextIO | None = None
        self._total: int | None = None
        self._start = self._last = 0.0
        self._width = 0

    def open(self, total: int | None) -> None:
        # sys.stderr as it is now, so contextlib.redirect_stderr and capsys see it.
        self._file = sys.stderr
        self._total = total
        self._start = self._last = time.monotonic()
        self._draw(0, self._start)

    def advance(self, done: int, n: int) -> None:
        now = time.monotonic()
        if now - self._last >= self.INTERVAL:
            self._last = now
            self._draw(done, now)

    def close(self, done: int) -> None:
        self._draw(done, time.monotonic(), end="\n")

    def _draw(self, done: int, now: float, end: str = "") -> None:
        file = self._file
        if file is None:  # no stderr at all (pythonw)
            return
        elapsed = now - self._start
        rate = done / elapsed if elapsed > 0 else 0.0
        total = self._total
        if total is None:
            count = f"{done}"
        else:
            percent = 100 if total == 0 else min(100, done * 100 // total)
            count = f"{done}/{total} {percent:3d}%"
        line = f"{count} {elapsed:.1f}s {rate:.1f}/s"
        padding = " " * max(0, self._width - len(line))
        self._width = len(line)
        file.write(f"\r{line}{padding}{end}")
        file.flush()


def _default_display() -> _Display:
    """tqdm's bar when installed (a widget in notebooks), else rich's, else ours."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        pass
    else:
        return _Bar(tqdm)
    try:
        import rich.progress
    except ImportError:
        return _Counter()
    return _Rich(rich.progress)
