"""What only the process backend does: crash isolation, killing time-outs, transfer."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import unirun
from _tasks import (
    Guarded,
    GuardedError,
    Unpicklable,
    child_interrupt_handling,
    crash_on_multiple_of_seven,
    die,
    fail_if_negative,
    get_init_value,
    getpid,
    init_fail,
    init_set,
    kill_self,
    nested_lists,
    raise_bad_init,
    raise_unpicklable,
    read_only_array,
    return_unpicklable,
    signal_then_wait,
    square,
    subtract_mean_in_place,
)
from conftest import run_python_file
from gates import Gate

if TYPE_CHECKING:
    from collections.abc import Callable


def test_crash_fails_only_the_tasks_of_dead_workers() -> None:
    with unirun.ProcessExecutor(max_workers=2) as ex:
        futures = [ex.submit(crash_on_multiple_of_seven, x) for x in range(200)]
        for x, future in enumerate(futures):
            if x % 7 == 3:
                with pytest.raises(unirun.WorkerCrashedError, match="exit code 3"):
                    future.result(timeout=120)
            else:
                assert future.result(timeout=120) == x * 2
        # The pool is still healthy afterwards.
        assert ex.submit(square, 5).result(timeout=60) == 25


def test_crash_error_names_the_signal() -> None:
    with unirun.ProcessExecutor(max_workers=1) as ex:
        future = ex.submit(kill_self, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool, match="SIGKILL"):
            future.result(timeout=60)
        assert isinstance(future.exception(), unirun.WorkerCrashedError)
        assert ex.submit(square, 3).result(timeout=60) == 9


def test_crash_with_exit_zero_is_still_a_crash() -> None:
    with (
        unirun.ProcessExecutor(max_workers=1) as ex,
        pytest.raises(unirun.WorkerCrashedError, match="exit code 0"),
    ):
        ex.submit(die, 0).result(timeout=60)


def test_timeout_kills_worker_and_pool_recovers(tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    with unirun.ProcessExecutor(max_workers=1) as ex:
        first_pid = ex.submit(getpid).result(timeout=60)
        future = ex.options(timeout=0.2).submit(
            signal_then_wait, gate.started, gate.release, 1
        )
        with pytest.raises(unirun.TaskTimeoutError, match="worker process was killed"):
            future.result(timeout=60)
        # The stuck task's worker was replaced, and the task never completes.
        assert ex.submit(getpid).result(timeout=60) != first_pid
        assert not Path(gate.release).exists()


def test_unpicklable_argument_fails_its_future_naming_it_gh11() -> None:
    # As the stdlib: submit returns, and result() raises the PicklingError.
    with unirun.ProcessExecutor(max_workers=1) as ex:
        first = ex.submit(square, 1, Unpicklable())  # type: ignore[call-overload]  # bad on purpose
        second = ex.submit(square, x=Unpicklable())  # type: ignore[call-overload]  # bad on purpose
        assert first.done()
        with pytest.raises(
            unirun.TransferError, match=r"positional argument 1 .*Unpicklable"
        ):
            first.result()
        with pytest.raises(pickle.PicklingError, match=r"keyword argument 'x'"):
            second.result()
        assert ex.submit(square, 4).result(timeout=60) == 16


@pytest.mark.parametrize(
    ("make", "stdlib_error"),
    [
        pytest.param(Guarded, GuardedError, id="an error of its own"),
        pytest.param(
            lambda: multiprocessing.get_context("spawn").Semaphore(0),
            RuntimeError,
            id="a multiprocessing semaphore",
        ),
        pytest.param(lambda: nested_lists(100_000), RecursionError, id="too deep"),
    ],
)
def test_unpicklable_argument_fails_with_what_the_stdlib_raises(
    make: Callable[[], object], stdlib_error: type[Exception]
) -> None:
    # ProcessPoolExecutor fails the future with whatever pickling raised; ours is
    # also a TransferError naming the argument, and pickles as both.
    with unirun.ProcessExecutor(max_workers=1) as ex:
        future = ex.submit(square, make())  # type: ignore[call-overload]  # bad on purpose
        error = future.exception(timeout=60)
        assert isinstance(error, stdlib_error), repr(error)
        assert isinstance(error, unirun.TransferError)
        assert "positional argument 0" in str(error)
        again = pickle.loads(pickle.dumps(error))
        assert isinstance(again, stdlib_error)
        assert isinstance(again, unirun.TransferError)
        assert again.args == error.args
        assert ex.submit(square, 3).result(timeout=60) == 9


def test_a_program_a_task_starts_takes_ctrl_c_as_usual() -> None:
    # Workers leave Ctrl-C to the parent, but a program a task starts gets the
    # default back (a stdlib worker's children do): an ignored SIGINT would stay
    # ignored across exec, and `p.send_signal(SIGINT)` would do nothing.
    with unirun.ProcessExecutor(max_workers=1) as ex:
        handler = ex.submit(child_interrupt_handling).result(timeout=60)
    assert handler == "default_int_handler"


def test_a_read_only_numpy_array_arrives_writable_as_with_the_stdlib() -> None:
    # The stdlib pickles with the default protocol, which copies an array into
    # a writable one; protocol 5 would keep it read-only on the other side.
    numpy = pytest.importorskip("numpy")
    frozen = numpy.frombuffer(numpy.arange(4.0).tobytes())
    assert not frozen.flags.writeable
    with unirun.ProcessExecutor(max_workers=1) as ex:
        assert ex.submit(subtract_mean_in_place, frozen).result(timeout=60) == 0.0
        back = ex.submit(read_only_array, 4).result(timeout=60)
    back += 1  # raises ValueError if it came back read-only
    assert back.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_an_open_text_file_argument_is_refused_as_by_the_stdlib(tmp_path: Path) -> None:
    # cloudpickle would send a StringIO copy: the task would read a copy and its
    # writes would be lost. The stdlib's pool fails the future with a TypeError.
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with path.open() as file, unirun.ProcessExecutor(max_workers=1) as ex:
        error = ex.submit(str, file).exception(timeout=60)
        assert isinstance(error, TypeError), repr(error)
        assert isinstance(error, unirun.TransferError)
        assert "TextIOWrapper" in str(error)


def test_unpicklable_function_fails_its_future_gh11() -> None:
    import threading

    lock = threading.Lock()
    with unirun.ProcessExecutor(max_workers=1) as ex:
        future = ex.submit(lambda: lock.locked())
        with pytest.raises(unirun.TransferError, match="the function"):
            future.result(timeout=60)
        assert ex.submit(square, 2).result(timeout=60) == 4


def test_unpicklable_exception_arrives_as_remote_error() -> None:
    with unirun.ProcessExecutor(max_workers=1) as ex:
        with pytest.raises(unirun.RemoteError) as caught:
            ex.submit(raise_unpicklable, "deep trouble").result(timeout=60)
        assert caught.value.type_name.endswith("UnpicklableError")
        assert caught.value.message == "deep trouble"
        assert "raise_unpicklable" in caught.value.tb
        assert ex.submit(square, 3).result(timeout=60) == 9


def test_exception_that_cannot_be_rebuilt_arrives_as_remote_error() -> None:
    with (
        unirun.ProcessExecutor(max_workers=1) as ex,
        pytest.raises(unirun.RemoteError, match="BadInitError: x-y"),
    ):
        ex.submit(raise_bad_init).result(timeout=60)


def test_unpicklable_result_fails_the_task_only() -> None:
    with unirun.ProcessExecutor(max_workers=1) as ex:
        with pytest.raises(TypeError, match="lock"):
            ex.submit(return_unpicklable).result(timeout=60)
        assert ex.submit(square, 3).result(timeout=60) == 9


def test_remote_traceback_text_is_cause() -> None:
    with unirun.ProcessExecutor(max_workers=1) as ex:
        exc = ex.submit(fail_if_negative, -1).exception(timeout=60)
    assert isinstance(exc, ValueError)
    assert isinstance(exc.__cause__, unirun.RemoteTraceback)
    assert 'raise ValueError(f"negative: {x}")' in str(exc.__cause__)


def test_failing_initializer_breaks_pool(caplog: pytest.LogCaptureFixture) -> None:
    ex = unirun.ProcessExecutor(max_workers=1, initializer=init_fail)
    try:
        future = ex.submit(square, 2)
        with pytest.raises(BrokenProcessPool, match="initializer failed"):
            future.result(timeout=60)
        with pytest.raises(BrokenProcessPool):
            ex.submit(square, 2)
        assert ex._broken
    finally:
        ex.shutdown()


def test_initializer_runs_in_each_worker() -> None:
    with unirun.ProcessExecutor(
        max_workers=2, initializer=init_set, initargs=(7,)
    ) as ex:
        assert set(ex.map(lambda _: get_init_value(), range(8))) == {7}


def test_max_tasks_per_child_replaces_workers() -> None:
    with unirun.ProcessExecutor(max_workers=1, max_tasks_per_child=2) as ex:
        pids = [ex.submit(getpid).result(timeout=60) for _ in range(6)]
    assert pids[0] == pids[1]
    assert len(set(pids)) == 3


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("2", TypeError, "max_tasks_per_child must be an integer"),
        (0, ValueError, "max_tasks_per_child must be >= 1"),
    ],
)
def test_max_tasks_per_child_validation(
    value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        unirun.ProcessExecutor(max_tasks_per_child=value)  # type: ignore[arg-type]  # bad input on purpose


def test_max_tasks_per_child_rejects_fork() -> None:
    with pytest.raises(ValueError, match="incompatible with the 'fork'"):
        unirun.ProcessExecutor(
            max_tasks_per_child=1, mp_context=multiprocessing.get_context("fork")
        )


@pytest.mark.parametrize("method", ["spawn", "fork", "forkserver"])
def test_mp_context_is_used(method: str) -> None:
    context = multiprocessing.get_context(method)
    with unirun.ProcessExecutor(max_workers=1, mp_context=context) as ex:
        assert ex.submit(square, 6).result(timeout=60) == 36
        (process,) = ex._processes.values()
        assert type(process).__name__.lower().startswith(method)


def test_default_workers_are_usable_cpus() -> None:
    from unirun._cpu import usable_cpus

    ex = unirun.ProcessExecutor()
    try:
        assert ex._max_workers == usable_cpus()
    finally:
        ex.shutdown()


def test_default_start_method_is_thread_safe() -> None:
    from unirun._backends.process import default_context

    assert default_context().get_start_method() in ("forkserver", "spawn")


def test_shutdown_after_close_writes_to_no_reused_descriptor() -> None:
    # A closed pool's wake-up pipe number can be reused by anyone; a second
    # shutdown() or garbage collection must not write into it (it hung another pool).
    import gc

    ex = unirun.ProcessExecutor(max_workers=1)
    assert ex.submit(square, 2).result(timeout=60) == 4
    ex.shutdown()
    read_end, write_end = os.pipe()  # likely takes the numbers just freed
    os.set_blocking(read_end, False)
    try:
        ex.shutdown()
        del ex
        gc.collect()
        with pytest.raises(BlockingIOError):
            os.read(read_end, 1)
    finally:
        os.close(read_end)
        os.close(write_end)


def _stop_from_async(how: str, future: unirun.Future[object]) -> None:
    import asyncio

    import anyio

    async def with_asyncio() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.ensure_future(_awaited(future)), 0.1)

    async def with_anyio() -> None:
        if how == "fail_after":
            with pytest.raises(TimeoutError), anyio.fail_after(0.1):
                await future
        else:  # a task group cancelled from a sibling task
            async with anyio.create_task_group() as tg:

                async def wait_for_it() -> None:
                    await future

                tg.start_soon(wait_for_it)
                await anyio.sleep(0.1)
                tg.cancel_scope.cancel()

    if how == "wait_for":
        asyncio.run(with_asyncio())
    else:
        anyio.run(with_anyio)


async def _awaited(future: unirun.Future[object]) -> object:
    return await future


@pytest.mark.parametrize("how", ["wait_for", "fail_after", "task_group"])
def test_cancelled_awaiter_kills_the_running_task(how: str, tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    with unirun.ProcessExecutor(max_workers=1) as ex:
        first_pid = ex.submit(getpid).result(timeout=60)
        future = ex.submit(signal_then_wait, gate.started, gate.release, 1)
        gate.wait_started()
        _stop_from_async(how, future)
        assert future.cancelled()
        # Its worker was killed and replaced; the task never finished.
        assert ex.submit(getpid).result(timeout=60) != first_pid
    assert not Path(gate.release).exists()


def test_main_module_functions_and_lambdas_travel() -> None:
    # Code typed at `python -c` (or a REPL) lives in __main__ and has no file to
    # import: cloudpickle sends it by value.
    import subprocess
    import sys

    code = (
        "import unirun\n"
        "def triple(x):\n"
        "    return 3 * x\n"
        "if __name__ == '__main__':\n"
        "    with unirun.ProcessExecutor(max_workers=1) as ex:\n"
        "        doubled = list(ex.map(lambda y: y - 1, [5]))\n"
        "        print(ex.submit(triple, 4).result(), doubled)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["12", "[4]"]


def test_map_auto_chunking_batches_tiny_items() -> None:
    with unirun.ProcessExecutor(max_workers=2) as ex:
        calls = 0
        submit = ex._submit

        def counting_submit(*args: object) -> unirun.Future[object]:
            nonlocal calls
            calls += 1
            return submit(*args)  # type: ignore[arg-type]  # forwarding as is

        ex._submit = counting_submit  # type: ignore[method-assign,assignment]  # a spy
        assert list(ex.map(square, range(5000), chunksize=None)) == [
            x * x for x in range(5000)
        ]
    # Measured batching sends a handful of chunks, not one task per item.
    assert calls < 100


def test_map_auto_chunking_honours_timeout(tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    with unirun.ProcessExecutor(max_workers=1) as ex:
        results = ex.map(
            signal_then_wait,
            [gate.started],
            [gate.release],
            [1],
            timeout=0.1,
            chunksize=None,
        )
        with pytest.raises(TimeoutError):
            list(results)
        gate.open()


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_initargs_may_hold_multiprocessing_queues(method: str) -> None:
    # As with the stdlib, initargs are pickled while spawning, the only time a
    # multiprocessing queue, lock or value may travel (a logging queue, say).
    from _tasks import init_with_queue, put_on_queue

    context = multiprocessing.get_context(method)
    queue = context.Queue()
    try:
        with unirun.ProcessExecutor(
            max_workers=1,
            mp_context=context,
            initializer=init_with_queue,
            initargs=(queue,),
        ) as ex:
            assert ex.submit(put_on_queue, "hello").result(timeout=60)
            assert queue.get(timeout=60) == "hello"
    finally:
        queue.close()
        queue.join_thread()


def test_max_tasks_per_child_uses_fresh_processes_not_forks_gh11() -> None:
    # The stdlib picks spawn here so that no worker is a fork of the threaded
    # parent; unirun's fork server gives the same guarantee without re-running
    # the main module.
    from unirun._backends._launch import WorkerContext

    ex = unirun.ProcessExecutor(max_workers=1, max_tasks_per_child=3)
    try:
        assert isinstance(ex._mp_context, WorkerContext)
        pids = {ex.submit(getpid).result(timeout=60) for _ in range(6)}
        assert len(pids) == 2  # replaced after three tasks
    finally:
        ex.shutdown()


def test_remote_traceback_is_the_stdlib_class() -> None:
    from concurrent.futures.process import _RemoteTraceback

    with unirun.ProcessExecutor(max_workers=1) as ex:
        exc = ex.submit(fail_if_negative, -1).exception(timeout=60)
    assert exc is not None
    assert type(exc.__cause__) is _RemoteTraceback


def test_system_exit_while_unpickling_a_result_fails_only_that_task() -> None:
    from _tasks import make_exits_when_unpickled

    with unirun.ProcessExecutor(max_workers=1) as ex:
        # A BrokenProcessPool, as the stdlib reports it, never a SystemExit.
        with pytest.raises(BrokenProcessPool, match="could not be unpickled") as got:
            ex.submit(make_exits_when_unpickled).result(timeout=60)
        assert isinstance(got.value, unirun.RebuildError)
        assert isinstance(got.value.__cause__, SystemExit)
        assert ex.submit(square, 7).result(timeout=60) == 49


def test_failing_initializer_log_record_is_not_lost() -> None:
    # The worker exits by itself after a failed initializer, so a QueueHandler's
    # record is flushed before the pool closes (killing it lost the record).
    from _tasks import init_fail_logging_to

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    try:
        ex = unirun.ProcessExecutor(
            max_workers=1,
            mp_context=context,
            initializer=init_fail_logging_to,
            initargs=(queue,),
        )
        try:
            with pytest.raises(BrokenProcessPool):
                ex.submit(square, 1).result(timeout=60)
        finally:
            ex.shutdown()
        record = queue.get(timeout=60)
        assert "error in initializer" in str(record.exc_info or record.msg) or (
            "Exception in initializer" in record.getMessage()
        )
    finally:
        queue.close()
        queue.join_thread()


def test_closing_a_batched_map_lets_running_chunks_finish(tmp_path: Path) -> None:
    gate = Gate(tmp_path)
    with unirun.ProcessExecutor(max_workers=1) as ex:
        first_pid = ex.submit(getpid).result(timeout=60)
        results = ex.map(
            signal_then_wait, [gate.started], [gate.release], [1], chunksize=None
        )
        gate.wait_started()
        results.close()  # as with chunksize=1: the running task is not killed
        gate.open()
        assert ex.submit(getpid).result(timeout=60) == first_pid


def test_async_with_starts_the_fork_server_off_the_event_loop() -> None:
    # Its start-up (a few hundred milliseconds) would otherwise hold up the
    # event loop in the first submit; a fresh interpreter, whose server has
    # not started yet.
    program = (
        "import asyncio, unirun\n"
        "from unirun._backends import _launch\n"
        "async def main():\n"
        "    before = _launch._server._forkserver_pid\n"
        "    async with unirun.ProcessExecutor(1) as ex:\n"
        "        print(before, _launch._ready, await ex.submit(int, '3'))\n"
        "asyncio.run(main())\n"
    )
    assert run_python_file("-c", program).stdout.split() == ["None", "True", "3"]
