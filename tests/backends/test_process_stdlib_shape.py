"""Code written against ``ProcessPoolExecutor``'s attributes, as CPython's suite is.

``_processes``, ``_executor_manager_thread`` and ``_call_queue`` are private, but
code outside the stdlib (its own test suite first) waits on them to see that a
pool let go of everything.
"""

from __future__ import annotations

import gc

import pytest

import unirun


@pytest.mark.parametrize("let_go", ["shutdown(wait=False)", "del executor"])
def test_pool_lets_go_of_manager_workers_and_queue(let_go: str) -> None:
    executor: unirun.ProcessExecutor | None = unirun.ProcessExecutor(max_workers=3)
    assert executor is not None
    results = executor.map(abs, range(-5, 5))
    processes = executor._processes
    call_queue = executor._call_queue
    manager = executor._executor_manager_thread
    assert manager is not None  # started by the map
    if let_go == "del executor":
        # The queue holds nothing that keeps the executor alive: collecting
        # it shuts the pool down.
        executor = None
        gc.collect()
    else:
        executor.shutdown(wait=False)
    manager.join()
    for process in processes.values():
        process.join()
    call_queue.join_thread()
    assert not manager.is_alive()
    assert processes
    assert all(p.exitcode is not None for p in processes.values())
    assert list(results) == [abs(v) for v in range(-5, 5)]


def test_join_thread_before_any_task_returns_at_once() -> None:
    with unirun.ProcessExecutor(max_workers=1) as executor:
        executor._call_queue.join_thread()  # no manager yet: nothing to wait for
        assert executor.submit(abs, -1).result() == 1


def init(value: int) -> None:
    """An initializer that does nothing."""


def test_the_settings_code_reads_are_where_the_stdlib_keeps_them() -> None:
    import concurrent.futures as cf

    kwargs: dict[str, object] = {
        "initializer": init,
        "initargs": [1],
        "max_tasks_per_child": 3,
    }
    ours = unirun.ProcessExecutor(2, **kwargs)  # type: ignore[arg-type]
    theirs = cf.ProcessPoolExecutor(2, **kwargs)  # type: ignore[call-overload]
    try:
        for name in (
            "_max_workers",
            "_initializer",
            "_initargs",
            "_max_tasks_per_child",
        ):
            assert getattr(ours, name) == getattr(theirs, name), name
    finally:
        ours.shutdown()
        theirs.shutdown()
