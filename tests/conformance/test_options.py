"""DESIGN 6: per-task options (time-out, name) through an options() view."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import unirun
from _tasks import echo_kwargs, signal_then_wait, square
from conftest import make_executor
from gates import Gate

if TYPE_CHECKING:
    from pathlib import Path

    from unirun._base import BaseExecutor


def test_options_view_is_an_executor(executor: BaseExecutor) -> None:
    view = executor.options(timeout=30, name="job")
    assert isinstance(view, unirun.Executor)
    assert view.task_options == unirun.TaskOptions(timeout=30, name="job")
    assert view.submit(square, 5).result(timeout=60) == 25
    assert list(view.map(square, [1, 2])) == [1, 4]
    assert view.gather(view.submit(square, 3)).result(timeout=60) == [9]


def test_options_do_not_steal_task_kwargs(executor: BaseExecutor) -> None:
    view = executor.options(timeout=30)
    assert view.submit(echo_kwargs, timeout=1, name="n").result(timeout=60) == (
        (),
        {"timeout": 1, "name": "n"},
    )


def test_options_timeout_fails_future(executor: BaseExecutor, tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    try:
        future = executor.options(timeout=0.2).submit(
            signal_then_wait, gate.started, gate.release, 1
        )
        with pytest.raises(unirun.TaskTimeoutError) as caught:
            future.result(timeout=60)
        assert isinstance(caught.value, TimeoutError)
    finally:
        gate.open()


def test_options_timeout_not_reached_returns(executor: BaseExecutor) -> None:
    assert executor.options(timeout=60).submit(square, 6).result(timeout=60) == 36


def test_options_negative_timeout_fails_at_once(executor: BaseExecutor) -> None:
    future = executor.options(timeout=-1).submit(square, 2)
    with pytest.raises(unirun.TaskTimeoutError):
        future.result(timeout=60)


def test_options_timeout_applies_to_map(executor: BaseExecutor, tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    try:
        results = executor.options(timeout=0.2).map(
            signal_then_wait, [gate.started], [gate.release], [1]
        )
        with pytest.raises(unirun.TaskTimeoutError):
            list(results)
    finally:
        gate.open()


def test_options_view_merges(executor: BaseExecutor) -> None:
    view = executor.options(timeout=5).options(name="later")
    assert view.task_options == unirun.TaskOptions(timeout=5, name="later")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": "soon"}, TypeError),
        ({"timeout": float("nan")}, ValueError),
        ({"name": 3}, TypeError),
    ],
)
def test_options_bad_values(
    executor: BaseExecutor, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        executor.options(**kwargs)  # type: ignore[arg-type]  # bad input on purpose


@pytest.mark.parametrize("huge", [float("inf"), 1e30, 1e10])
def test_huge_timeouts_mean_no_limit_and_break_nothing_gh12(
    kind: str, huge: float, tmp_path: Path
) -> None:
    executor = make_executor(kind)
    gate = Gate(tmp_path)
    try:
        assert executor.options(timeout=huge).submit(square, 6).result(60) == 36
        # Time-outs still work afterwards (the watcher of deadlines is alive).
        stuck = executor.options(timeout=0.2).submit(
            signal_then_wait, gate.started, gate.release, 1
        )
        with pytest.raises(unirun.TaskTimeoutError):
            stuck.result(timeout=60)
        assert executor.submit(square, 7).result(timeout=60) == 49
    finally:
        gate.open()
        executor.shutdown()


def test_timeout_cancels_an_async_task_on_every_kind_gh11(
    kind: str, tmp_path: Path
) -> None:
    from _tasks import sleep_forever_then_mark

    executor = make_executor(kind)
    marker = tmp_path / "cleaned-up"
    try:
        future = executor.options(timeout=0.2).submit(
            sleep_forever_then_mark, str(marker)
        )
        with pytest.raises(unirun.TaskTimeoutError) as caught:
            future.result(timeout=60)
    finally:
        executor.shutdown(wait=True)  # the stuck coroutine does not hold it up
    if executor.crosses_processes and executor.stops_on_timeout:
        return  # its worker process was killed: no clean-up ran
    assert marker.exists()  # cancelled for real: its finally clause ran
    assert "cancelled" in str(caught.value)


def test_timeout_of_a_plain_function_does_not_claim_it_was_cancelled_gh11(
    kind: str, tmp_path: Path
) -> None:
    executor = make_executor(kind)
    gate = Gate(tmp_path)
    try:
        future = executor.options(timeout=0.2).submit(
            signal_then_wait, gate.started, gate.release, 1
        )
        with pytest.raises(unirun.TaskTimeoutError) as caught:
            future.result(timeout=60)
        message = str(caught.value)
        if executor.crosses_processes and executor.stops_on_timeout:
            assert "killed" in message
        else:
            assert "cancelled" not in message
            assert "runs on" in message
    finally:
        gate.open()
        executor.shutdown()
