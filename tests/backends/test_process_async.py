"""A process executor used from an event loop's thread never holds up the loop."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures.process import BrokenProcessPool

import pytest

import unirun
from _tasks import square
from unirun._backends._pool import Pool


@pytest.fixture
def starters(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads that started worker processes, in order."""
    threads: list[threading.Thread] = []
    start = Pool._start_worker

    def recorded(pool: Pool) -> None:
        threads.append(threading.current_thread())
        start(pool)

    monkeypatch.setattr(Pool, "_start_worker", recorded)
    return threads


@pytest.mark.anyio
async def test_a_submit_on_the_loop_leaves_the_worker_s_start_to_the_pool(
    starters: list[threading.Thread],
) -> None:
    # The first start also starts the fork server: 150 ms of a frozen loop.
    with unirun.ProcessExecutor(max_workers=2) as ex:
        futures = [ex.submit(square, n) for n in range(3)]
        assert [await f for f in futures] == [0, 1, 4]
    assert starters
    assert threading.current_thread() not in starters


def test_run_in_executor_leaves_the_worker_s_start_to_the_pool(
    starters: list[threading.Thread],
) -> None:
    async def main(ex: unirun.ProcessExecutor) -> int:
        return await asyncio.get_running_loop().run_in_executor(ex, square, 7)

    with unirun.ProcessExecutor(max_workers=1) as ex:
        assert asyncio.run(main(ex)) == 49
    assert starters
    assert threading.current_thread() not in starters


def test_a_submit_off_any_loop_starts_the_worker_itself(
    starters: list[threading.Thread],
) -> None:
    # As the stdlib's: a worker that cannot start fails the submit that wanted it.
    with unirun.ProcessExecutor(max_workers=1) as ex:
        assert ex.submit(square, 5).result(timeout=60) == 25
    assert starters == [threading.current_thread()]


@pytest.mark.anyio
async def test_a_worker_that_cannot_start_fails_the_waiting_calls_not_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start = Pool._start_worker

    def fails(pool: Pool) -> None:
        raise OSError("no process left")

    with unirun.ProcessExecutor(max_workers=1) as ex:
        monkeypatch.setattr(Pool, "_start_worker", fails)
        future = ex.submit(square, 2)
        with pytest.raises(BrokenProcessPool, match="could not start") as caught:
            await future
        assert isinstance(caught.value.__cause__, OSError)
        monkeypatch.setattr(Pool, "_start_worker", start)
        assert await ex.submit(square, 3) == 9
