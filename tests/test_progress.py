"""Issue 15, progress: map, as_completed and gather count finished items.

Every backend, with and without chunks, sync and async: a ``(done, total)``
callable sees 0, 1, ..., total exactly once each and in order; a tqdm-like class
is updated and closed; the bar is closed when iteration ends, is closed early or
fails; tqdm and rich are imported only when a bar is asked for.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import unirun
from _progress_helpers import (
    FakeBar,
    Recorder,
    the_bar,
)
from _tasks import async_square, fail_if_negative, signal_then_wait, square
from conftest import make_executor
from gates import Gate

if TYPE_CHECKING:
    from collections.abc import Iterator

    from unirun._base import BaseExecutor

ROOT = Path(__file__).resolve().parent.parent


def expect_map_progress(executor: BaseExecutor, request: pytest.FixtureRequest) -> None:
    """Expect a TypeError where the executor's own ``_map`` lacks ``progress``.

    AutoExecutor routes maps through its own ``_map``; until it takes the
    ``progress`` argument, its maps with progress fail, and this xfail is strict.
    """
    if "progress" not in inspect.signature(type(executor)._map).parameters:
        request.applymarker(
            pytest.mark.xfail(
                raises=TypeError,
                strict=True,
                reason=f"{type(executor).__name__}._map does not take progress yet",
            )
        )


@pytest.fixture
def map_executor(
    executor: BaseExecutor, request: pytest.FixtureRequest
) -> BaseExecutor:
    """The executor of each kind, for tests of ``map(progress=...)``."""
    expect_map_progress(executor, request)
    return executor


@pytest.fixture
def async_executor(kind: str) -> Iterator[BaseExecutor]:
    """An executor of each kind, for the async tests (run on asyncio and trio)."""
    executor = make_executor(kind)
    try:
        yield executor
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def async_map_executor(
    async_executor: BaseExecutor, request: pytest.FixtureRequest
) -> BaseExecutor:
    """:func:`async_executor`, for tests of ``map(progress=...)``."""
    expect_map_progress(async_executor, request)
    return async_executor


# -- map ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunksize", [1, 3, None])
def test_map_progress_counts_each_item_once_in_order(
    map_executor: BaseExecutor, chunksize: int | None
) -> None:
    recorder = Recorder()
    results = map_executor.map(
        square, range(40), chunksize=chunksize, progress=recorder
    )
    assert list(results) == [x * x for x in range(40)]
    assert recorder.counts == list(range(41))
    assert recorder.totals == {40}


@pytest.mark.parametrize("chunksize", [1, 5, None])
def test_map_progress_counts_before_the_consumer_iterates(
    map_executor: BaseExecutor, chunksize: int | None
) -> None:
    # Chunks are counted when they arrive, not when the consumer reaches them:
    # the count reaches the total while nobody iterates yet.
    recorder = Recorder()
    results = map_executor.map(
        square, range(20), chunksize=chunksize, progress=recorder
    )
    assert recorder.reached_total.wait(60)
    assert recorder.counts == list(range(21))
    assert list(results) == [x * x for x in range(20)]
    assert recorder.counts == list(range(21))


def test_map_progress_bar_class_updated_and_closed(
    map_executor: BaseExecutor, bar_class: type[FakeBar]
) -> None:
    results = map_executor.map(square, range(30), chunksize=None, progress=bar_class)
    bar = the_bar(bar_class)
    assert bar.total == 30
    assert not bar.closed.is_set()
    assert list(results) == [x * x for x in range(30)]
    assert sum(bar.updates) == 30
    assert all(n > 0 for n in bar.updates)
    assert bar.closes == 1


def test_map_progress_empty(map_executor: BaseExecutor) -> None:
    recorder = Recorder()
    assert list(map_executor.map(square, [], progress=recorder)) == []
    assert recorder.calls == [(0, 0)]


def test_map_progress_through_options_view(map_executor: BaseExecutor) -> None:
    recorder = Recorder()
    view = map_executor.options(name="squares")
    assert list(view.map(square, range(5), progress=recorder)) == [0, 1, 4, 9, 16]
    assert recorder.counts == list(range(6))


@pytest.mark.parametrize("chunksize", [1, 2, None])
def test_map_progress_closed_on_failure(
    map_executor: BaseExecutor, chunksize: int | None
) -> None:
    recorder = Recorder()
    items = [0, 1, 2, -3, 4, 5]
    results = map_executor.map(
        fail_if_negative, items, chunksize=chunksize, progress=recorder
    )
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="negative: -3"):
        next(results)
    # The failed item counts (it finished); later ones may have finished first.
    counts = recorder.counts
    assert counts == list(range(len(counts)))
    assert 4 <= counts[-1] <= len(items)
    # Closed: nothing more is reported, whatever finishes after.
    map_executor.shutdown(wait=True)
    assert recorder.counts == counts


def test_map_progress_bar_closed_on_failure(
    map_executor: BaseExecutor, bar_class: type[FakeBar]
) -> None:
    results = map_executor.map(fail_if_negative, [1, -1, 2], progress=bar_class)
    with pytest.raises(ValueError, match="negative"):
        list(results)
    assert the_bar(bar_class).closes == 1


def test_map_progress_closed_early(
    map_executor: BaseExecutor, bar_class: type[FakeBar], tmp_path: Path
) -> None:
    gate = Gate(tmp_path)
    results = map_executor.map(
        signal_then_wait, [gate.started] * 3, [gate.release] * 3, [1, 2, 3],
        progress=bar_class,
    )  # fmt: skip
    bar = the_bar(bar_class)
    results.close()
    assert bar.closes == 1
    gate.open()
    map_executor.shutdown(wait=True)
    assert bar.updates_after_close == 0
    assert bar.closes == 1


def test_map_progress_closed_when_dropped(
    map_executor: BaseExecutor, bar_class: type[FakeBar]
) -> None:
    for _ in map_executor.map(square, range(10), progress=bar_class):
        break
    # The iterator is gone with the loop: its bar is closed.
    assert the_bar(bar_class).closes == 1


def test_map_progress_timeout_closes(
    map_executor: BaseExecutor, bar_class: type[FakeBar], tmp_path: Path
) -> None:
    gate = Gate(tmp_path)
    results = map_executor.map(
        signal_then_wait, [gate.started], [gate.release], [1], timeout=0,
        progress=bar_class,
    )  # fmt: skip
    try:
        with pytest.raises(TimeoutError):
            next(results)
        bar = the_bar(bar_class)
        assert bar.closes == 1
        assert bar.updates == []
    finally:
        gate.open()


def test_map_progress_buffersize_total_from_length_hint(
    map_executor: BaseExecutor,
) -> None:
    known = Recorder()
    assert list(map_executor.map(square, range(6), buffersize=2, progress=known)) == [
        0, 1, 4, 9, 16, 25,
    ]  # fmt: skip
    assert known.counts == list(range(7))
    assert known.totals == {6}
    unknown = Recorder()
    generator = (x for x in range(4))
    results = map_executor.map(square, generator, buffersize=2, progress=unknown)
    assert list(results) == [0, 1, 4, 9]
    assert unknown.calls == [(0, None), (1, None), (2, None), (3, None), (4, None)]


def test_map_progress_unknown_length_counted_without_buffersize(
    map_executor: BaseExecutor,
) -> None:
    # Without buffersize every item is submitted at once, so the total is known.
    recorder = Recorder()
    results = map_executor.map(square, (x for x in range(5)), progress=recorder)
    assert list(results) == [0, 1, 4, 9, 16]
    assert recorder.totals == {5}


@pytest.mark.anyio
@pytest.mark.parametrize("chunksize", [1, 4, None])
async def test_map_progress_async_for(
    async_map_executor: BaseExecutor, bar_class: type[FakeBar], chunksize: int | None
) -> None:
    recorder = Recorder()
    results = async_map_executor.map(
        square, range(25), chunksize=chunksize, progress=recorder
    )
    assert [x async for x in results] == [x * x for x in range(25)]
    assert recorder.counts == list(range(26))
    results = async_map_executor.map(fail_if_negative, [1, -1, 2], progress=bar_class)
    with pytest.raises(ValueError, match="negative"):
        async for _ in results:
            pass
    assert the_bar(bar_class).closes == 1


@pytest.mark.anyio
async def test_map_progress_async_closed_early(
    async_map_executor: BaseExecutor, bar_class: type[FakeBar]
) -> None:
    results = async_map_executor.map(square, range(10), progress=bar_class)
    assert await results.__anext__() == 0
    await results.aclose()
    assert the_bar(bar_class).closes == 1


def test_map_progress_async_callable(map_executor: BaseExecutor) -> None:
    recorder = Recorder()
    assert list(map_executor.map(async_square, range(8), progress=recorder)) == [
        x * x for x in range(8)
    ]
    assert recorder.counts == list(range(9))


# -- as_completed ---------------------------------------------------------------------


def test_as_completed_progress_counts_each_future(executor: BaseExecutor) -> None:
    recorder = Recorder()
    futures = [executor.submit(square, i) for i in range(15)]
    got = {f.result() for f in unirun.as_completed(futures, progress=recorder)}
    assert got == {i * i for i in range(15)}
    assert recorder.counts == list(range(16))
    assert recorder.totals == {15}


def test_as_completed_progress_counts_failed_and_cancelled(
    bar_class: type[FakeBar],
) -> None:
    failed: cf.Future[int] = cf.Future()
    failed.set_exception(ValueError("x"))
    cancelled: cf.Future[int] = cf.Future()
    cancelled.cancel()
    cancelled.set_running_or_notify_cancel()  # as an executor does
    done: cf.Future[int] = cf.Future()
    done.set_result(1)
    futures = [failed, cancelled, done]
    assert len(list(unirun.as_completed(futures, progress=bar_class))) == 3
    bar = the_bar(bar_class)
    assert (bar.total, sum(bar.updates), bar.closes) == (3, 3, 1)


def test_as_completed_progress_timeout_closes(bar_class: type[FakeBar]) -> None:
    never: cf.Future[int] = cf.Future()
    with pytest.raises(TimeoutError):
        list(unirun.as_completed([never], timeout=0, progress=bar_class))
    assert the_bar(bar_class).closes == 1


def test_as_completed_progress_closed_early(
    executor: BaseExecutor, bar_class: type[FakeBar]
) -> None:
    futures = [executor.submit(square, i) for i in range(5)]
    iterator = unirun.as_completed(futures, progress=bar_class)
    next(iterator)
    iterator.close()
    bar = the_bar(bar_class)
    assert bar.closes == 1
    cf.wait(futures)
    assert bar.updates_after_close == 0


@pytest.mark.anyio
async def test_as_completed_progress_async_for(
    async_executor: BaseExecutor, bar_class: type[FakeBar]
) -> None:
    recorder = Recorder()
    futures = [async_executor.submit(square, i) for i in range(12)]
    got = [f.result() async for f in unirun.as_completed(futures, progress=recorder)]
    assert sorted(got) == [i * i for i in range(12)]
    assert recorder.counts == list(range(13))
    never: cf.Future[int] = cf.Future()
    with pytest.raises(TimeoutError):
        async for _ in unirun.as_completed([never], timeout=0.01, progress=bar_class):
            pass
    assert the_bar(bar_class).closes == 1


@pytest.mark.anyio
async def test_as_completed_progress_async_closed_early(
    async_executor: BaseExecutor, bar_class: type[FakeBar]
) -> None:
    futures = [async_executor.submit(square, i) for i in range(4)]
    iterator = unirun.as_completed(futures, progress=bar_class).__aiter__()
    await iterator.__anext__()
    await iterator.aclose()  # type: ignore[attr-defined]  # an async generator
    assert the_bar(bar_class).closes == 1


# -- gather ---------------------------------------------------------------------------


def test_gather_progress_counts_each_task(executor: BaseExecutor) -> None:
    recorder = Recorder()
    futures = [executor.submit(square, i) for i in range(15)]
    gathered = executor.gather(*futures, progress=recorder)
    assert gathered.result(60) == [i * i for i in range(15)]
    assert recorder.counts == list(range(16))
    assert recorder.totals == {15}


def test_gather_progress_closed_before_result(
    executor: BaseExecutor, bar_class: type[FakeBar]
) -> None:
    futures = [executor.submit(square, i) for i in range(6)]
    executor.gather(*futures, progress=bar_class).result(60)
    bar = the_bar(bar_class)
    assert (bar.total, sum(bar.updates), bar.closes) == (6, 6, 1)


def test_gather_progress_closed_on_failure(
    executor: BaseExecutor, bar_class: type[FakeBar]
) -> None:
    gathered = executor.gather(
        executor.submit(square, 2),
        executor.submit(fail_if_negative, -5),
        progress=bar_class,
    )
    with pytest.raises(ValueError, match="negative: -5"):
        gathered.result(60)
    bar = the_bar(bar_class)
    assert bar.closes == 1
    assert sum(bar.updates) >= 1


def test_gather_progress_return_exceptions_counts_failures(
    executor: BaseExecutor,
) -> None:
    recorder = Recorder()
    gathered = executor.gather(
        executor.submit(square, 3),
        executor.submit(fail_if_negative, -1),
        return_exceptions=True,
        progress=recorder,
    )
    assert len(gathered.result(60)) == 2
    assert recorder.counts == [0, 1, 2]


def test_gather_progress_closed_on_cancel(
    executor: BaseExecutor, bar_class: type[FakeBar], tmp_path: Path
) -> None:
    gate = Gate(tmp_path)
    child = executor.submit(signal_then_wait, gate.started, gate.release, 1)
    never = unirun.Future[int]()
    gathered = executor.gather(child, never, progress=bar_class)
    assert gathered.cancel()
    assert the_bar(bar_class).closes == 1
    gate.open()


def test_gather_progress_empty_and_duplicates(executor: BaseExecutor) -> None:
    empty = Recorder()
    assert executor.gather(progress=empty).result(0) == []
    assert empty.calls == [(0, 0)]
    twice = Recorder()
    future = executor.submit(square, 4)
    assert executor.gather(future, future, progress=twice).result(60) == [16, 16]
    assert twice.counts == [0, 1, 2]


@pytest.mark.anyio
async def test_gather_progress_awaited(async_executor: BaseExecutor) -> None:
    recorder = Recorder()
    futures = [async_executor.submit(square, i) for i in range(7)]
    assert await async_executor.gather(*futures, progress=recorder) == [
        i * i for i in range(7)
    ]
    assert recorder.counts == list(range(8))


def test_an_item_counted_by_its_callback_as_the_consumer_closes_is_counted() -> None:
    # The callback claimed the future, then counted it; the consumer, finding
    # it claimed, went on, reached the end and closed first: the count was lost.
    import threading

    from unirun._progress import each_future, make_progress

    seen: list[tuple[int, int | None]] = []
    progress = make_progress(lambda done, total: seen.append((done, total)))
    assert progress is not None
    progress.start(1)
    future: cf.Future[int] = cf.Future()
    future.set_result(1)
    counting, consumer_done = threading.Event(), threading.Event()

    def consumer() -> None:
        progress.arrived(future)  # finds it claimed by the callback
        progress.close()  # the map's end
        consumer_done.set()

    def slow_items(done: cf.Future[object]) -> int:
        counting.set()
        other = threading.Thread(target=consumer)
        other.start()
        other.join(0.5)  # at once, unless it waits for this count
        return each_future(done)

    callback = threading.Thread(target=progress._count_once, args=(slow_items, future))
    callback.start()
    assert counting.wait(60)
    callback.join(60)
    assert consumer_done.wait(60)
    assert seen == [(0, 1), (1, 1)]
