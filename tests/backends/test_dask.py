"""What only the Dask backend does: its clusters, its keys, worker death, hand-off.

The conformance suite runs on the session's cluster (see conftest); these tests
cover what it cannot: an embedded cluster that closes with the executor, a
joined cluster that stays up, Dask's retries when a worker dies.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import logging
import os
import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

import cloudpickle
import psutil
import pytest

import unirun
from _tasks import (
    ErrorWhenUnpickled,
    ExitsWhenUnpickledArg,
    async_sleep_then,
    die,
    getpid,
    init_fail,
    make_exits_when_unpickled,
    raise_bad_init,
    raise_unpicklable,
    return_unpicklable,
    signal_then_wait,
    sleep_then,
    square,
)
from conftest import HAS_DASK, dask_session, run_python_file
from gates import Gate

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.skipif(not HAS_DASK, reason="needs unirun[dask]")

# The workers of the session's cluster cannot import this module: its own task
# functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def joined() -> Iterator[unirun.DaskExecutor]:
    """An executor on the session's cluster, with room for four tasks."""
    ex = unirun.DaskExecutor(max_workers=4, client=dask_session().client)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


def count_submissions(
    ex: unirun.DaskExecutor, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Record the key of every task the executor hands to Dask."""
    keys: list[str] = []
    submit = ex.client.submit

    def recording(*args: Any, **kwargs: Any) -> Any:
        keys.append(kwargs["key"])
        return submit(*args, **kwargs)

    monkeypatch.setattr(ex.client, "submit", recording)
    return keys


# -- where it runs --------------------------------------------------------------------


def test_import_unirun_never_imports_dask() -> None:
    code = (
        "import sys, unirun\n"
        "assert not {'dask', 'distributed'} & set(sys.modules), 'imported'\n"
        "assert 'DaskExecutor' in dir(unirun)\n"
        "cls = unirun.DaskExecutor\n"
        "assert 'distributed' in sys.modules and cls.__module__ == 'unirun'\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "ok"


def test_embedded_cluster_runs_tasks_and_closes_every_process() -> None:
    me = psutil.Process()
    with unirun.executor("dask", max_workers=2) as ex:
        assert isinstance(ex, unirun.DaskExecutor)
        assert list(ex.client.nthreads().values()) == [1, 1]
        pids = set(ex.map(_pid_of, range(20))) | {ex.submit(getpid).result(60)}
        assert os.getpid() not in pids
        children = {p.pid for p in me.children(recursive=True)}
        assert pids <= children  # worker processes of this process's cluster
        assert ex.client.status == "running"
    assert ex.client.status == "closed"
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    # The leak guard checks that no thread or other process is left either.


def test_embedded_cluster_of_threads_in_this_process() -> None:
    # processes=False: Dask's in-process transport, whose addresses are no
    # hosts (the default 127.0.0.1 failed the scheduler's start).
    with unirun.DaskExecutor(max_workers=2, cluster_options={"processes": False}) as ex:
        assert ex.submit(getpid).result(60) == os.getpid()
        assert list(ex.map(abs, [-1, -2])) == [1, 2]
        queue = ex.Queue()
        queue.put(3)
        assert queue.get(timeout=60) == 3
        assert ex.statistics().workers_alive == 2
    assert ex.client.status == "closed"
    assert ex.statistics().workers_alive == 0  # its cluster is gone


def test_joined_cluster_stays_up_and_only_own_tasks_are_waited(
    tmp_path: Path,
) -> None:
    client = dask_session().client
    gate = Gate(tmp_path)
    foreign = client.submit(signal_then_wait, gate.started, gate.release, 1, pure=False)
    try:
        gate.wait_started()
        with unirun.DaskExecutor(client=client) as ex:
            assert ex.submit(square, 5).result(60) == 25
        # shutdown() neither waited for nor cancelled the other client's task.
        assert not foreign.done()
        assert client.status == "running"
    finally:
        gate.open()
    assert foreign.result(60) == 1
    assert client.submit(square, 3, pure=False).result(60) == 9


def test_calls_are_never_deduplicated(
    joined: unirun.DaskExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _tasks import record_start

    keys = count_submissions(joined, monkeypatch)
    marker = str(tmp_path / "ran")
    first = joined.submit(record_start, marker, 1)
    assert first.result(60) == 1
    os.remove(marker)
    # The very same call again runs again: Dask's default pure=True would not.
    assert joined.submit(record_start, marker, 1).result(60) == 1
    assert os.path.exists(marker)
    assert len(set(keys)) == 2


def test_task_keys_name_the_function_or_the_option(
    joined: unirun.DaskExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = count_submissions(joined, monkeypatch)
    joined.submit(square, 2).result(60)
    joined.options(name="resize").submit(square, 3).result(60)
    assert keys[0].startswith("square-")
    assert keys[1].startswith("resize-")


def test_constructor_rejects_contradictions() -> None:
    client = dask_session().client
    with pytest.raises(ValueError, match="either address or client"):
        unirun.DaskExecutor(address="tcp://127.0.0.1:1", client=client)
    with pytest.raises(ValueError, match="embedded cluster only"):
        unirun.DaskExecutor(client=client, cluster_options={"n_workers": 3})
    with pytest.raises(TypeError, match=r"synchronous distributed\.Client"):
        unirun.DaskExecutor(client="tcp://127.0.0.1:1")  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(ValueError, match="greater than 0"):
        unirun.DaskExecutor(0, client=client)


def test_default_max_workers_is_the_clusters_threads() -> None:
    with unirun.DaskExecutor(client=dask_session().client) as ex:
        assert ex._parallelism() == 2  # 2 workers, 1 thread each


# -- hand-off and map -----------------------------------------------------------------


def test_tasks_beyond_max_workers_wait_here_and_cancel_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(tmp_path)
    with unirun.DaskExecutor(max_workers=1, client=dask_session().client) as ex:
        keys = count_submissions(ex, monkeypatch)
        first = ex.submit(signal_then_wait, gate.started, gate.release, 1)
        gate.wait_started()
        waiting = [ex.submit(square, i) for i in range(3)]
        assert len(keys) == 1  # the others never reached the scheduler
        assert first.running()
        assert not any(f.running() for f in waiting)
        assert waiting[0].cancel()
        gate.open()
        assert [f.result(60) for f in waiting[1:]] == [1, 4]
        assert len(keys) == 3


def test_map_chunksize_none_batches_tiny_items(
    joined: unirun.DaskExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = count_submissions(joined, monkeypatch)
    assert list(joined.map(square, range(3000), chunksize=None)) == [
        x * x for x in range(3000)
    ]
    assert len(keys) < 300  # batched: far fewer Dask tasks than items


def test_map_buffersize_submits_lazily(
    joined: unirun.DaskExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = count_submissions(joined, monkeypatch)
    results = joined.map(square, itertools.count(), buffersize=3)
    assert [next(results) for _ in range(5)] == [0, 1, 4, 9, 16]
    assert len(keys) <= 5 + 3
    results.close()


# -- failures -------------------------------------------------------------------------


def test_argument_that_cannot_travel_fails_its_future(
    joined: unirun.DaskExecutor,
) -> None:
    import threading

    future = joined.submit(square, threading.Lock())  # type: ignore[call-overload]  # bad on purpose
    with pytest.raises(unirun.TransferError, match="positional argument 0"):
        future.result(timeout=60)
    assert joined.submit(square, 2).result(60) == 4


def test_result_and_exceptions_that_cannot_travel(joined: unirun.DaskExecutor) -> None:
    with pytest.raises(TypeError, match="lock"):
        joined.submit(return_unpicklable).result(60)
    with pytest.raises(unirun.RemoteError) as caught:
        joined.submit(raise_unpicklable, "deep trouble").result(60)
    assert caught.value.message == "deep trouble"
    assert "raise_unpicklable" in caught.value.tb
    with pytest.raises(unirun.RemoteError, match="BadInitError: x-y"):
        joined.submit(raise_bad_init).result(60)


@pytest.mark.parametrize("argument", [ErrorWhenUnpickled(), ExitsWhenUnpickledArg()])
def test_task_that_cannot_be_rebuilt_on_the_worker_is_a_broken_pool_error(
    joined: unirun.DaskExecutor, argument: object
) -> None:
    # As on processes (DESIGN 9): code written for the stdlib catches a
    # BrokenProcessPool there, and only this task fails.
    with pytest.raises(BrokenProcessPool, match="could not be unpickled on the") as got:
        joined.submit(square, argument).result(60)  # type: ignore[call-overload]  # on purpose
    assert isinstance(got.value, unirun.RebuildError)
    assert isinstance(got.value.__cause__, (ValueError, SystemExit))
    assert joined.submit(square, 3).result(60) == 9


def test_result_that_cannot_be_rebuilt_here_is_a_broken_pool_error(
    joined: unirun.DaskExecutor,
) -> None:
    with pytest.raises(BrokenProcessPool, match="could not be unpickled here") as got:
        joined.submit(make_exits_when_unpickled).result(60)
    assert isinstance(got.value, unirun.RebuildError)
    assert isinstance(got.value.__cause__, SystemExit)
    assert joined.submit(square, 4).result(60) == 16


def test_timeout_plain_task_runs_on_async_task_is_cancelled(
    joined: unirun.DaskExecutor,
) -> None:
    view = joined.options(timeout=0.2)
    with pytest.raises(unirun.TaskTimeoutError, match="runs on"):
        view.submit(sleep_then, 1.0, "late").result(60)
    with pytest.raises(unirun.TaskTimeoutError, match="was cancelled"):
        view.submit(async_sleep_then, 3600, "never").result(60)


def test_timeouts_too_long_for_a_clock_mean_no_limit(
    joined: unirun.DaskExecutor,
) -> None:
    from _tasks import async_square

    for timeout in (float("inf"), 1e30):
        view = joined.options(timeout=timeout)
        assert view.submit(async_square, 3).result(60) == 9
        assert view.submit(square, 4).result(60) == 16


def test_failing_initializer_breaks_the_executor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL, "concurrent.futures")
    ex = unirun.DaskExecutor(client=dask_session().client, initializer=init_fail)
    try:
        with pytest.raises(unirun.BrokenExecutor, match="error in initializer"):
            ex.submit(square, 2)
    finally:
        ex.shutdown()


def test_worker_death_is_retried_then_fails_only_its_task(tmp_path: Path) -> None:
    import dask

    from _tasks import crash_on_multiple_of_seven

    # One retry: a task whose worker dies runs again elsewhere, and fails with
    # the second death. Dask's default is three retries.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),
        unirun.DaskExecutor(max_workers=2) as ex,
    ):
        marker = tmp_path / "died-once"
        once = ex.submit(_die_once, str(marker))
        assert once.result(120) == "second try"
        doomed = ex.submit(die, 3)
        with pytest.raises(unirun.WorkerCrashedError) as caught:
            doomed.result(120)
        assert isinstance(caught.value, cf.process.BrokenProcessPool)
        assert "KilledWorker" in type(caught.value.__cause__).__name__
        assert ex.submit(crash_on_multiple_of_seven, 2).result(120) == 4


def _die_once(marker: str) -> str:
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os._exit(5)
    return "second try"


def _pid_of(_: object) -> int:
    return os.getpid()


def test_is_an_executor_with_the_documented_signature(
    joined: unirun.DaskExecutor,
) -> None:
    import inspect

    assert isinstance(joined, cf.Executor)
    assert isinstance(joined, unirun.Executor)
    assert isinstance(joined.options(timeout=1), unirun.Executor)
    assert list(inspect.signature(unirun.DaskExecutor).parameters) == [
        "max_workers",
        "address",
        "client",
        "initializer",
        "initargs",
        "dashboard",
        "cluster_options",
        "native_threads",
        "forward_output",
    ]
    assert "joined cluster" in repr(joined)


def test_a_main_initializer_s_globals_reach_the_tasks(tmp_path: Path) -> None:
    # As on the process backend (tests/backends/test_process_main.py): the
    # stdlib docs' initializer sets a global of the script that tasks read.
    script = tmp_path / "program.py"
    script.write_text(
        "import unirun\n"
        "SHARED = None\n"
        "def init(value):\n"
        "    global SHARED, UNSET_AT_IMPORT\n"
        "    SHARED = UNSET_AT_IMPORT = value\n"
        "def task(x):\n"
        "    return (SHARED, UNSET_AT_IMPORT, x)\n"
        "if __name__ == '__main__':\n"
        "    with unirun.DaskExecutor(1, initializer=init, initargs=('set',)) as ex:\n"
        "        print(ex.submit(task, 1).result())\n"
    )
    done = run_python_file(script)
    assert done.stdout.splitlines() == ["('set', 'set', 1)"]
