"""``AutoExecutor(max_workers=n)``: at most n calls running at once, whatever
route each takes, as on every other kind (DESIGN 8).

Each inner pool was capped at n, so calls routed to different pools (threads,
processes, the event loop) ran side by side: ``max_workers=1`` ran three at
once and started them out of order.
"""

from __future__ import annotations

import concurrent.futures as cf
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
import pytest

import unirun
from _auto_tasks import async_log_start, log_start
from _tasks import signal_then_wait
from gates import Gate
from unirun._auto.gate import Gate as CallGate

if TYPE_CHECKING:
    from unirun._types import Backend

TESTS = Path(__file__).resolve().parent.parent

#: How long a call that must wait for a slot is watched not to start: a call
#: routed at once starts within milliseconds.
WATCH_S = 0.5


def _routed(ex: unirun.AutoExecutor, route: str) -> unirun.Executor:
    """``ex``, sending its calls by ``route``: a backend hint, or measured."""
    if route == "measured":
        return ex
    return ex.options(backend=cast("Backend", route))


def _run_script(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` as a program of its own, the tests folder importable."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=TESTS,
    )


def _started(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


@pytest.mark.parametrize("route", ["thread", "process", "coroutine", "measured"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_call_on_any_route_waits_for_the_one_slot(
    route: str, is_async: bool, tmp_path: Path
) -> None:
    if route == "process" and is_async:
        pytest.skip("a coroutine hinted to processes is the same as a sync call")
    gate, log = Gate(tmp_path), tmp_path / "log"
    with unirun.AutoExecutor(max_workers=1) as ex:
        try:
            first = ex.submit(signal_then_wait, gate.started, gate.release, 0)
            gate.wait_started()
            call = async_log_start if is_async else log_start
            second = _routed(ex, route).submit(call, str(log), 1)
            done, _ = cf.wait([second], timeout=WATCH_S)
            assert (done, _started(log)) == (set(), [])
            stats = ex.statistics()
            assert (stats.running, stats.queued) == (1, 1)
        finally:
            gate.open()
        assert (first.result(timeout=60), second.result(timeout=60)) == (0, 1)
    assert _started(log) == [1]


def test_calls_on_every_route_start_in_order_one_at_a_time(tmp_path: Path) -> None:
    gate, log = Gate(tmp_path), tmp_path / "log"
    routes = ["process", "coroutine", "thread", "measured"] * 3
    with unirun.AutoExecutor(max_workers=1) as ex:
        try:
            first = ex.submit(signal_then_wait, gate.started, gate.release, 0)
            gate.wait_started()
            futures = [
                _routed(ex, route).submit(
                    async_log_start if route == "coroutine" else log_start,
                    str(log),
                    i,
                )
                for i, route in enumerate(routes, 1)
            ]
            assert ex.statistics().queued == len(routes)
        finally:
            gate.open()
        assert [f.result(timeout=60) for f in futures] == list(range(1, 13))
    assert first.result(timeout=0) == 0
    assert _started(log) == list(range(1, 13))


def test_two_workers_run_two_calls_and_hold_the_third(tmp_path: Path) -> None:
    gates = [Gate(tmp_path) for _ in range(2)]
    log = tmp_path / "log"
    with unirun.AutoExecutor(max_workers=2) as ex:
        try:
            held = [
                _routed(ex, route).submit(
                    signal_then_wait, gate.started, gate.release, i
                )
                for i, (gate, route) in enumerate(
                    zip(gates, ["thread", "process"], strict=True)
                )
            ]
            for gate in gates:
                gate.wait_started()  # two at once: both slots are used
            third = ex.options(backend="coroutine").submit(async_log_start, str(log), 2)
            done, _ = cf.wait([third], timeout=WATCH_S)
            assert (done, _started(log)) == (set(), [])
            gates[1].open()  # the process call ends: the third takes its slot
            assert third.result(timeout=60) == 2
        finally:
            for gate in gates:
                gate.open()
        assert [f.result(timeout=60) for f in held] == [0, 1]


def _behind_one(
    ex: unirun.AutoExecutor, tmp_path: Path, routes: list[str]
) -> tuple[Gate, unirun.Future[int], list[unirun.Future[int]]]:
    """A call that holds the one slot, and calls by ``routes`` waiting behind it
    (each logs its index, from 1, as it starts)."""
    gate, log = Gate(tmp_path), tmp_path / "log"
    first = ex.submit(signal_then_wait, gate.started, gate.release, 0)
    gate.wait_started()
    waiting = [
        _routed(ex, route).submit(log_start, str(log), i)
        for i, route in enumerate(routes, 1)
    ]
    return gate, first, waiting


@pytest.mark.parametrize("wait", [True, False])
def test_shutdown_cancel_futures_cancels_the_waiting_calls(
    wait: bool, tmp_path: Path
) -> None:
    ex = unirun.AutoExecutor(max_workers=1)
    gate, first, waiting = _behind_one(ex, tmp_path, ["thread", "process", "measured"])
    try:
        ex.shutdown(wait=False, cancel_futures=True)
        assert all(f.cancelled() for f in waiting)
        with pytest.raises(RuntimeError, match="after shutdown"):
            ex.submit(log_start, str(tmp_path / "log"), 9)
    finally:
        gate.open()
        ex.shutdown(wait=wait)
    assert first.result(timeout=60) == 0
    cf.wait(waiting, timeout=60)  # the dropped calls are told, as they go
    stats = ex.statistics()
    assert (stats.queued, stats.cancelled) == (0, 3)
    assert _started(tmp_path / "log") == []


@pytest.mark.parametrize("wait", [True, False])
def test_shutdown_runs_every_waiting_call(wait: bool, tmp_path: Path) -> None:
    ex = unirun.AutoExecutor(max_workers=1)
    gate, first, waiting = _behind_one(ex, tmp_path, ["process", "thread", "measured"])
    try:
        ex.shutdown(wait=False)
    finally:
        gate.open()
    ex.shutdown(wait=wait)
    assert [f.result(timeout=60) for f in [first, *waiting]] == [0, 1, 2, 3]
    assert _started(tmp_path / "log") == [1, 2, 3]


def test_map_runs_one_item_at_a_time_in_order(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with unirun.AutoExecutor(max_workers=1) as ex:
        got = list(ex.map(log_start, [str(log)] * 20, range(20), chunksize=None))
    assert got == _started(log) == list(range(20))


def test_a_program_that_never_shuts_down_runs_its_waiting_calls(
    tmp_path: Path,
) -> None:
    # No main guard, no shutdown: the calls still waiting for the slot at
    # exit run, on their own routes, before the program ends.
    script = f"""
        import unirun
        from _auto_tasks import log_start
        from _tasks import signal_then_wait
        from gates import Gate
        from pathlib import Path

        gate = Gate(Path({str(tmp_path)!r}))
        ex = unirun.AutoExecutor(max_workers=1)
        ex.submit(signal_then_wait, gate.started, gate.release, 0)
        for i, route in enumerate(["process", "thread", "coroutine"], 1):
            ex.options(backend=route).submit(log_start, {str(tmp_path / "log")!r}, i)
        gate.wait_started()
        gate.open()
    """
    done = _run_script(script)
    assert done.returncode == 0, done.stderr
    assert _started(tmp_path / "log") == [1, 2, 3]
    # From 3.12 the coroutine pool's thread cannot start at exit: it refuses
    # the call (run on the pump instead), and has nothing to start at close.
    assert "Traceback" not in done.stderr


def _refused(outer: unirun.Future[object], error: BaseException) -> bool:
    return False  # no shutdown: the call fails with the route's error


def test_an_interrupted_route_gives_its_slot_back() -> None:
    gate = CallGate(1, _refused)

    def interrupted() -> unirun.Future[object]:
        raise KeyboardInterrupt  # Ctrl-C as the call was routed

    with pytest.raises(KeyboardInterrupt):
        gate.submit(interrupted)
    done: unirun.Future[object] = unirun.Future()
    done.set_result(1)
    assert gate.submit(lambda: done) is done  # routed at once: the slot is free
    assert gate.idle()


def test_a_waiting_call_whose_route_fails_gets_the_error_and_frees_its_slot() -> None:
    gate = CallGate(1, _refused)
    first: unirun.Future[object] = unirun.Future()
    assert gate.submit(lambda: first) is first  # pending: it holds the slot

    def fails() -> unirun.Future[object]:
        raise ValueError("refused")

    failing = gate.submit(fails)
    after: unirun.Future[object] = unirun.Future()
    after.set_result(2)
    third = gate.submit(lambda: after)
    assert (failing.done(), third.done()) == (False, False)  # both wait
    first.set_result(0)
    assert isinstance(failing.exception(timeout=60), ValueError)
    assert third.result(timeout=60) == 2
    gate.wait_idle()


def test_a_call_leaving_the_line_cannot_be_cancelled_and_still_run() -> None:
    # Cancelled as the pump routed it, a call read cancelled and ran anyway.
    gate = CallGate(1, _refused)
    first: unirun.Future[object] = unirun.Future()
    assert gate.submit(lambda: first) is first  # it holds the slot
    routing, go = threading.Event(), threading.Event()

    def route() -> unirun.Future[object]:
        routing.set()
        assert go.wait(60)
        inner: unirun.Future[object] = unirun.Future()
        inner.set_running_or_notify_cancel()  # a worker took it at once
        inner.set_result("ran")
        return inner

    second = gate.submit(route)
    assert second.cancel()  # still in line: cancelled, and never routed
    third = gate.submit(route)
    first.set_result(0)
    try:
        assert routing.wait(60)
        # Under way: cancel() says so, as the stdlib's does for a running call.
        assert not third.cancel()
        assert third.running()
    finally:
        go.set()
    assert third.result(timeout=60) == "ran"
    gate.wait_idle()
    assert gate.skipped == 1


def test_a_call_abandoned_as_it_is_routed_is_abandoned_once_routed() -> None:
    gate = CallGate(1, _refused)
    first: unirun.Future[object] = unirun.Future()
    assert gate.submit(lambda: first) is first
    routing, go = threading.Event(), threading.Event()
    inner: unirun.Future[object] = unirun.Future()

    def route() -> unirun.Future[object]:
        routing.set()
        assert go.wait(60)
        return inner  # queued in its pool, not started

    second = gate.submit(route)
    first.set_result(0)
    try:
        assert routing.wait(60)
        assert not second._abandon()  # its awaiter left as the call was routed
    finally:
        go.set()
    with pytest.raises(cf.CancelledError):
        second.result(timeout=60)
    assert inner.cancelled()  # passed on: the routed call never runs
    gate.wait_idle()


def test_a_call_refused_as_it_leaves_the_line_in_a_cancelling_shutdown_is_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Taken out of line as shutdown(cancel_futures=True) closed the pools: the
    # pool refuses it, and it ends cancelled, not failed with the refusal.
    ex = unirun.AutoExecutor(max_workers=1)
    try:
        router = ex._router
        release = threading.Event()
        held = ex.submit(release.wait, 60)  # holds the slot
        route = router._dispatch_or_here

        def closed_meanwhile(fn: Any, *rest: Any) -> unirun.Future[Any]:
            if fn is print:
                monkeypatch.setattr(router, "_cancelling", True)
                raise RuntimeError("cannot schedule new futures after shutdown")
            return route(fn, *rest)

        monkeypatch.setattr(router, "_dispatch_or_here", closed_meanwhile)
        waiting = ex.submit(print, "never")
        release.set()
        with pytest.raises(cf.CancelledError):
            waiting.result(timeout=60)
        monkeypatch.undo()
        assert held.result(timeout=60) is True
    finally:
        ex.shutdown()


@pytest.mark.anyio
async def test_a_failed_async_with_block_cancels_the_calls_waiting_for_a_slot(
    tmp_path: Path,
) -> None:
    # The block's failure cancels its tasks only once every call has reached
    # the loop: one waiting for the slot of a task that never ends would have
    # held the exit for ever.
    log = tmp_path / "log"
    futures: list[unirun.Future[object]] = []

    async def failing_block() -> None:
        async with unirun.AutoExecutor(max_workers=1) as ex:
            futures.append(ex.submit(anyio.sleep_forever))
            futures.append(ex.submit(async_log_start, str(log), 1))
            await anyio.sleep(0)
            raise ValueError("the block failed")

    with pytest.raises(ValueError, match="the block failed"):
        await failing_block()
    endless, waiting = futures
    assert (endless.cancelled(), waiting.cancelled()) == (True, True)
    assert _started(log) == []


@pytest.mark.anyio
async def test_async_with_runs_every_waiting_call_before_it_ends(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log"
    async with unirun.AutoExecutor(max_workers=1) as ex:
        futures = [ex.submit(async_log_start, str(log), i) for i in range(5)]
        futures.append(ex.options(backend="thread").submit(log_start, str(log), 5))
    assert [f.result(timeout=0) for f in futures] == list(range(6))
    assert _started(log) == list(range(6))


def test_ctrl_c_in_shutdown_still_lets_the_program_exit(tmp_path: Path) -> None:
    # A Ctrl-C in shutdown(wait=True) took the executor off the exit hooks
    # before its close was done: the GIL monitor's thread (started by the
    # first probe) was never told to end, and the interpreter waited for it
    # at exit for good. The calls that wait still run at exit, as the stdlib's.
    script = f"""
        import signal, threading
        import unirun
        from unirun._auto.routing import Router
        from _auto_tasks import log_start

        closing = threading.Event()
        real = Router.wait_routed

        def wait_routed(self):
            closing.set()
            real(self)

        Router.wait_routed = wait_routed
        main = threading.get_ident()

        def interrupt_the_close():
            closing.wait(60)
            signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C, in the close

        ex = unirun.AutoExecutor(max_workers=1)
        ex.submit(interrupt_the_close)  # probed: the monitor thread starts
        for i in range(3):
            ex.submit(log_start, {str(tmp_path / "log")!r}, i)
        ex.shutdown(wait=True)
    """
    done = _run_script(script)
    assert "KeyboardInterrupt" in done.stderr
    assert done.returncode == -signal.SIGINT, done.stderr
    assert _started(tmp_path / "log") == [0, 1, 2]
