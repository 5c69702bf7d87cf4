"""The one inline runner: sync and async calls, errors and time-outs, here."""

from __future__ import annotations

import threading

import pytest

import unirun
from _auto_tasks import async_nap, loop_thread, plus_one, spin
from _tasks import fail_if_negative
from unirun._auto.routing import run_inline


def test_run_inline_returns_a_finished_future() -> None:
    future, took = run_inline(plus_one, (41,), {}, None)
    assert future.done()
    assert future.result() == 42
    assert took >= 0


def test_run_inline_keeps_the_error() -> None:
    future, _ = run_inline(fail_if_negative, (-1,), {}, None)
    with pytest.raises(ValueError, match="negative"):
        future.result()


def test_run_inline_awaits_a_coroutine_on_this_threads_loop() -> None:
    future, _ = run_inline(loop_thread, (), {}, None)
    assert future.result() == threading.get_ident()
    assert run_inline(async_nap, (0,), {}, 60)[0].result() == 0


def test_run_inline_cancels_a_coroutine_at_its_time_out() -> None:
    future, _ = run_inline(async_nap, (60,), {}, 0.01)
    with pytest.raises(unirun.TaskTimeoutError, match="it was cancelled"):
        future.result()


def test_run_inline_fails_a_plain_call_past_its_time_out() -> None:
    future, took = run_inline(spin, (0.02,), {}, 0.001)
    assert took > 0.001
    with pytest.raises(unirun.TaskTimeoutError, match="could not be stopped"):
        future.result()
    expired, _ = run_inline(plus_one, (1,), {}, 0)
    with pytest.raises(unirun.TaskTimeoutError):
        expired.result()


def test_inline_hint_runs_async_and_timed_calls_here() -> None:
    with unirun.AutoExecutor() as ex:
        inline = ex.options(backend="inline")
        assert inline.submit(loop_thread).result(timeout=0) == threading.get_ident()
        timed = ex.options(backend="inline", timeout=0.01).submit(async_nap, 60)
        with pytest.raises(unirun.TaskTimeoutError):
            timed.result(timeout=0)
