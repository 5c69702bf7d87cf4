"""The coroutine path: async calls go to the coroutine backend, some timed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from _auto_tasks import async_nap, blocks_loop
from unirun._auto.coroutines import TIME_EVERY, CoroutinePath
from unirun._auto.pools import Pools
from unirun._options import NO_OPTIONS

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def path() -> Iterator[CoroutinePath]:
    pools = Pools(None, None, (), scope="test", cpus=2, name="test-coroutines")
    try:
        yield CoroutinePath(pools)
    finally:
        pools.close(wait=True, cancel_futures=True)


def test_first_call_is_timed_then_the_fast_path(path: CoroutinePath) -> None:
    assert path.submit_known(async_nap, (0,), {}, NO_OPTIONS) is None  # unknown
    assert path.submit(async_nap, (0,), {}, NO_OPTIONS).result(timeout=60) == 0
    verdict = path.explain(async_nap)
    assert verdict is not None
    assert verdict.backend == "coroutine"
    assert verdict.samples == 1
    for _ in range(TIME_EVERY):
        future = path.submit_known(async_nap, (0,), {}, NO_OPTIONS)
        assert future is not None
        assert future.result(timeout=60) == 0
    # One call in TIME_EVERY was timed again.
    again = path.explain(async_nap)
    assert again is not None
    assert again.samples == 2


def test_loop_blocking_coroutine_moves_to_a_thread(path: CoroutinePath) -> None:
    import unirun

    with pytest.warns(unirun.LoopBlockedWarning, match="blocks_loop"):
        path.submit(blocks_loop, (0.3,), {}, NO_OPTIONS).result(timeout=60)
    verdict = path.explain(blocks_loop)
    assert verdict is not None
    assert verdict.backend == "thread"
    future = path.submit_known(blocks_loop, (0.001,), {}, NO_OPTIONS)
    assert future is not None
    assert future.result(timeout=60) == 0.001
    # Still a thread verdict: the loop is not blocked again.
    assert path.explain(blocks_loop) is verdict
