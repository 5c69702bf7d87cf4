"""DESIGN 3: map keeps input order and stdlib's time-out semantics; for, async for."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import itertools
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from _tasks import (
    add,
    async_square,
    fail_if_negative,
    first_word,
    raise_base_at,
    record_start,
    signal_then_wait,
    square,
    stop_async_at_zero,
)
from gates import Gate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from unirun._base import BaseExecutor


def test_map_keeps_order(executor: BaseExecutor) -> None:
    assert list(executor.map(square, range(50))) == [x * x for x in range(50)]


def test_map_several_iterables_stops_at_shortest(executor: BaseExecutor) -> None:
    assert list(executor.map(add, [1, 2, 3], [10, 20])) == [11, 22]


def test_map_async_callable(executor: BaseExecutor) -> None:
    assert list(executor.map(async_square, range(5))) == [0, 1, 4, 9, 16]


@pytest.mark.parametrize("chunksize", [1, 3, None])
def test_map_exception_at_its_place(
    executor: BaseExecutor, chunksize: int | None
) -> None:
    results = executor.map(fail_if_negative, [0, 1, 2, -1, 4], chunksize=chunksize)
    assert [next(results), next(results), next(results)] == [0, 1, 2]
    with pytest.raises(ValueError, match="negative: -1"):
        next(results)
    # As a generator does, the iterator ends after raising.
    with pytest.raises(StopIteration):
        next(results)


@pytest.mark.parametrize("chunksize", [1, 3, None])
@pytest.mark.parametrize("error", [KeyboardInterrupt, SystemExit])
def test_map_base_exception_at_its_place(
    executor: BaseExecutor, chunksize: int | None, error: type[BaseException]
) -> None:
    # Raised by a task, both are its outcome (as in the stdlib's pools), and
    # a batch still delivers the results before it.
    results = executor.map(
        raise_base_at,
        range(12),
        itertools.repeat(7),
        itertools.repeat(error.__name__),
        chunksize=chunksize,
    )
    values: list[int] = []
    with pytest.raises(error, match="raised at 7"):
        values.extend(results)
    assert values == list(range(7))


def test_map_an_input_that_raises_ends_the_map(executor: BaseExecutor) -> None:
    def items() -> Iterator[int]:
        yield from (1, 2, 3)
        raise LookupError("the input broke")

    # As 3.14's map, whose refill meets the error before the second result.
    results = executor.map(square, items(), buffersize=2)
    assert next(results) == 1
    with pytest.raises(LookupError, match="the input broke"):
        next(results)
    with pytest.raises(StopIteration):
        next(results)


@pytest.mark.parametrize("chunksize", [1, None])
@pytest.mark.parametrize("progress", [None, lambda done, total: None])
def test_map_whose_input_raises_runs_the_items_before_as_the_stdlib(
    executor: BaseExecutor,
    tmp_path: Path,
    chunksize: int | None,
    progress: Callable[[int, int | None], object] | None,
) -> None:
    marks = [str(tmp_path / str(n)) for n in range(3)]

    def paths() -> Iterator[str]:
        yield from marks
        raise LookupError("the input broke")

    # The stdlib's map submits each item as it reads it; the error leaves map().
    with pytest.raises(LookupError, match="the input broke"):
        executor.map(
            record_start, paths(), range(9), chunksize=chunksize, progress=progress
        )
    executor.shutdown(wait=True)
    assert all(os.path.exists(mark) for mark in marks)


def test_map_submits_before_iteration(executor: BaseExecutor, tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    gate.open()
    executor.map(signal_then_wait, [gate.started], [gate.release], [1])
    gate.wait_started()


def test_map_timeout_raises_and_cancels_rest(
    executor: BaseExecutor, tmp_path: Path
) -> None:
    gate = Gate(tmp_path)
    results = executor.map(
        signal_then_wait, [gate.started], [gate.release], [7], timeout=0
    )
    try:
        with pytest.raises(TimeoutError):
            next(results)
        assert isinstance(TimeoutError(), cf.TimeoutError)
    finally:
        gate.open()


def test_map_negative_timeout_behaves_as_stdlib(executor: BaseExecutor) -> None:
    # A time-out already past still returns what is done; stdlib semantics.
    with cf.ThreadPoolExecutor() as stdlib:
        expected = list(stdlib.map(square, [], timeout=-1))
    assert list(executor.map(square, [], timeout=-1)) == expected == []


def test_map_buffersize_bounds_submissions(executor: BaseExecutor) -> None:
    results = executor.map(square, itertools.count(), buffersize=4)
    assert [next(results) for _ in range(10)] == [x * x for x in range(10)]
    results.close()


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (1.5, TypeError)])
def test_map_buffersize_validation(
    executor: BaseExecutor, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match="buffersize"):
        executor.map(square, [1], buffersize=value)  # type: ignore[call-overload]  # bad input on purpose


def test_map_chunksize_validation_where_chunks_apply(executor: BaseExecutor) -> None:
    if executor.uses_chunks:
        with pytest.raises(ValueError, match=r"chunksize must be >= 1\."):
            executor.map(square, [1], chunksize=0)
    else:  # as ThreadPoolExecutor, which ignores chunksize
        assert list(executor.map(square, [3], chunksize=0)) == [9]


def test_map_fractional_chunksize_fails_as_the_stdlib_fails(
    executor: BaseExecutor,
) -> None:
    # The stdlib batches with islice (a ValueError) before 3.13, with
    # itertools.batched (a TypeError) from 3.13 on.
    if not executor.uses_chunks:
        assert list(executor.map(square, [3], chunksize=2.5)) == [9]  # type: ignore[call-overload]  # bad input on purpose
        return
    error = TypeError if sys.version_info >= (3, 13) else ValueError
    with pytest.raises(error, match="integer"):
        list(executor.map(square, [1, 2, 3], chunksize=2.5))  # type: ignore[call-overload]  # bad input on purpose


def test_map_non_callable_fails_fast(executor: BaseExecutor) -> None:
    with pytest.raises(TypeError, match="callable"):
        executor.map(None, [1])  # type: ignore[call-overload]  # bad input on purpose


@pytest.mark.parametrize("chunksize", [1, None])
def test_map_after_shutdown_raises(
    executor: BaseExecutor, chunksize: int | None
) -> None:
    executor.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.map(square, [1, 2, 3], chunksize=chunksize)


@pytest.mark.parametrize("chunksize", [1, None])
def test_a_map_made_before_shutdown_runs_every_item(
    executor: BaseExecutor, chunksize: int | None
) -> None:
    # Its items were accepted at the call, cut into chunks later or not.
    results = executor.map(square, range(300), chunksize=chunksize)
    executor.shutdown(wait=False)
    assert list(results) == [x * x for x in range(300)]


@pytest.mark.parametrize("chunksize", [1, None])
def test_map_of_nothing_after_shutdown_is_empty_as_in_the_stdlib(
    executor: BaseExecutor, chunksize: int | None
) -> None:
    executor.shutdown()
    assert list(executor.map(square, [], chunksize=chunksize)) == []


@pytest.mark.anyio
async def test_map_async_for(kind: str) -> None:
    from conftest import make_executor

    executor = make_executor(kind)
    try:
        got = [x async for x in executor.map(square, range(20), chunksize=None)]
        assert got == [x * x for x in range(20)]
        results = executor.map(fail_if_negative, [1, -1])
        assert await results.__anext__() == 1
        with pytest.raises(ValueError, match="negative"):
            await results.__anext__()
    finally:
        executor.shutdown()


@pytest.mark.anyio
async def test_map_async_for_timeout(kind: str, tmp_path: Path) -> None:
    from conftest import make_executor

    executor = make_executor(kind)
    gate = Gate(tmp_path)
    try:
        results = executor.map(
            signal_then_wait, [gate.started], [gate.release], [1], timeout=0.05
        )
        with pytest.raises(TimeoutError):
            async for _ in results:
                pass
    finally:
        gate.open()
        executor.shutdown()


@pytest.mark.anyio
@pytest.mark.parametrize("iteration", ["for", "async for"])
async def test_a_nan_time_out_is_one_that_ran_out_in_both_iterations(
    kind: str, tmp_path: Path, iteration: str
) -> None:
    # As the stdlib's map (future.result(nan) does not wait): a pending item
    # times out. `async for` raised anyio's ValueError instead.
    from conftest import make_executor

    executor = make_executor(kind)
    gate = Gate(tmp_path)
    try:
        results = executor.map(
            signal_then_wait, [gate.started], [gate.release], [1], timeout=float("nan")
        )

        async def drain() -> list[Any]:
            if iteration == "for":
                return list(results)
            return [value async for value in results]

        with pytest.raises(TimeoutError):
            await drain()
    finally:
        gate.open()
        executor.shutdown()


def test_under_a_time_out_each_item_of_a_map_is_a_task_of_its_own(
    executor: BaseExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The time-out is each task's: chunksize=None must not batch items under it
    # (a batch would share one time-out). Neither batcher may be used.
    import unirun._auto.executor
    import unirun._base

    batchers: list[str] = []

    def recorded(batcher: Any) -> Any:
        def make(*args: Any, **kwargs: Any) -> Any:
            batchers.append(batcher.__name__)
            return batcher(*args, **kwargs)

        return make

    for module, name in (
        (unirun._base, "AdaptiveBatches"),
        (unirun._auto.executor, "RoutedMap"),
    ):
        monkeypatch.setattr(module, name, recorded(getattr(module, name)))
    results = list(executor.options(timeout=60).map(square, range(50)))
    assert results == [x * x for x in range(50)]
    assert batchers == []


@pytest.mark.parametrize("chunksize", [1, 2])
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (unirun.ThreadExecutor, cf.ThreadPoolExecutor),
        (unirun.ProcessExecutor, cf.ProcessPoolExecutor),
    ],
    ids=["thread", "process"],
)
def test_map_goes_through_a_subclass_submit_as_the_stdlib_does(
    ours: type[cf.Executor], theirs: type[cf.Executor], chunksize: int
) -> None:
    # Code that wraps submit() (logging, metrics, a context) sees map's tasks.
    def calls_to_submit(base: type[cf.Executor]) -> tuple[list[int], int]:
        calls = 0

        class Counting(base):  # type: ignore[valid-type,misc]  # a parameter
            def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
                nonlocal calls
                calls += 1
                return super().submit(fn, *args, **kwargs)  # type: ignore[no-any-return]

        with Counting(2) as executor:
            results = list(executor.map(square, [1, 2, 3], chunksize=chunksize))
        return results, calls

    results, calls = calls_to_submit(ours)
    assert results == [1, 4, 9]
    assert calls > 0
    assert (results, calls) == calls_to_submit(theirs)


@pytest.mark.parametrize("chunksize", [1, None])
def test_a_task_raising_stop_iteration_does_not_end_the_map(
    executor: BaseExecutor, chunksize: int | None
) -> None:
    # The stdlib's map is a generator: the task's StopIteration comes out as the
    # RuntimeError of PEP 479, never as a quiet end with results missing.
    lines = ["alpha beta", "gamma", "", "delta"]
    results = executor.map(first_word, lines, chunksize=chunksize)
    assert [next(results), next(results)] == ["alpha", "gamma"]
    with pytest.raises(RuntimeError, match=r"^generator raised StopIteration$") as info:
        next(results)
    assert isinstance(info.value.__cause__, StopIteration)


def test_a_task_raising_stop_async_iteration_does_not_end_an_async_for(
    executor: BaseExecutor,
) -> None:
    async def read() -> list[int]:
        return [value async for value in executor.map(stop_async_at_zero, [2, 1, 0])]

    with pytest.raises(RuntimeError, match="raised StopAsyncIteration") as info:
        asyncio.run(read())
    assert isinstance(info.value.__cause__, StopAsyncIteration)


def test_closing_a_map_before_its_first_step_leaves_its_tasks_to_run() -> None:
    # As closing the stdlib's map, a generator that never ran: nothing cancelled.
    gate, ran = threading.Event(), []

    def record(x: int) -> None:
        gate.wait(60)
        ran.append(x)

    with unirun.ThreadExecutor(max_workers=1) as ex:
        results = ex.map(record, range(5))
        results.close()
        gate.set()
        assert list(results) == []
    assert ran == [0, 1, 2, 3, 4]
