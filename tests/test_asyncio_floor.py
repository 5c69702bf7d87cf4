"""The floor that benchmarks/targets.py sets under the coroutine backend's
round trip from sync code runs each call as a task of its loop, in turn."""

from __future__ import annotations

import asyncio
import threading

from benchmarks.asyncio_floor import FloorLoop


def test_each_call_runs_as_a_task_on_the_loop_thread_and_returns_its_result() -> None:
    floor = FloorLoop()
    try:

        async def echo(x: int, pause: float) -> tuple[int, bool, bool]:
            await asyncio.sleep(pause)  # a turn (0), or a timer to wait for
            on_loop = threading.current_thread() is not threading.main_thread()
            return x, asyncio.current_task() is not None, on_loop

        pauses = [0.001 if i % 3 == 2 else 0.0 for i in range(30)]
        got = [floor.call(echo(i, pause)) for i, pause in enumerate(pauses)]
        assert got == [(i, True, True) for i in range(30)]
    finally:
        floor.close()
