"""Checked by mypy, never run by pytest: what the public signatures infer."""

from __future__ import annotations

import concurrent.futures
from typing import assert_type

import unirun


def sync_task(x: int, *, scale: int = 1) -> str:
    return str(x * scale)


async def async_task(x: int) -> int:
    return x


def check(ex: unirun.Executor, thread: unirun.ThreadExecutor) -> None:
    assert_type(thread.submit(sync_task, 1, scale=2), unirun.Future[str])
    assert_type(thread.submit(async_task, 1), unirun.Future[int])
    assert_type(ex.submit(async_task, 1), unirun.Future[int])
    assert_type(list(thread.map(sync_task, [1, 2])), list[str])
    assert_type(list(thread.map(async_task, [1, 2])), list[int])
    assert_type(thread.gather(thread.submit(sync_task, 1)), unirun.Future[list[str]])
    stdlib: concurrent.futures.Future[bytes] = concurrent.futures.Future()
    assert_type(thread.gather(stdlib), unirun.Future[list[bytes]])
    assert_type(ex.gather(ex.submit(async_task, 1)), unirun.Future[list[int]])


async def check_async(thread: unirun.ThreadExecutor) -> None:
    assert_type(await thread.submit(sync_task, 1), str)
    assert_type(await thread.submit(async_task, 1), int)


def check_factory() -> None:
    assert_type(unirun.executor("thread"), unirun.ThreadExecutor)
    assert_type(unirun.executor("process", max_workers=2), unirun.ProcessExecutor)
    assert_type(unirun.executor("coroutine", max_workers=2), unirun.CoroutineExecutor)
    assert_type(unirun.executor(), unirun.AutoExecutor)
    unirun.executor("thread", mp_context=None)  # type: ignore[call-overload]  # a process option


def check_as_completed(thread: unirun.ThreadExecutor) -> None:
    futures = [thread.submit(sync_task, 1)]
    for future in unirun.as_completed(futures):
        assert_type(future, unirun.Future[str])
