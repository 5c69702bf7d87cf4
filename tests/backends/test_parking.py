"""The coroutine executor's own asyncio loop, which parks on a lock while it
watches nothing but its own wake-up socket (``_backends/_parking.py``).

Every way into the loop from another thread must still wake it, parked or
waiting in ``epoll``: a lost wake-up is a task that never runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import signal
import socket
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import pytest

import unirun
from unirun._backends import _parking
from unirun._backends._parking import ParkingLoop

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="the parking loop is for POSIX systems"
)

TIMEOUT = 30


@pytest.fixture
def loop() -> Iterator[ParkingLoop]:
    """A parking loop, running in a thread of its own."""
    loop = ParkingLoop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        loop.close()


def wait_for_state(loop: ParkingLoop, state: int) -> None:
    """Until the loop's selector waits as ``state`` says (parked, polling)."""
    deadline = time.monotonic() + TIMEOUT
    while loop._parking._state != state:
        assert time.monotonic() < deadline, f"the loop never reached state {state}"
        time.sleep(0.001)


def on_loop(loop: ParkingLoop, fn: Any, *args: Any) -> Any:
    """Call ``fn(*args)`` on the loop's thread, and return what it returns."""
    done: asyncio.Future[Any] = asyncio.Future(loop=loop)  # resolved on the loop

    def run() -> None:
        done.set_result(fn(*args))

    result: list[Any] = []
    finished = threading.Event()

    def keep(future: asyncio.Future[Any]) -> None:
        result.append(future.result())
        finished.set()

    done.add_done_callback(keep)
    loop.call_soon_threadsafe(run)
    assert finished.wait(TIMEOUT)
    return result[0]


@contextlib.contextmanager
def watched_socket(loop: ParkingLoop) -> Iterator[socket.socket]:
    """A socket the loop watches while inside: it waits in epoll, not parked."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    try:
        on_loop(loop, loop.add_reader, ours.fileno(), ours.recv, 100)
        yield theirs
        on_loop(loop, loop.remove_reader, ours.fileno())
    finally:
        ours.close()
        theirs.close()


def test_a_parked_loop_wakes_for_call_soon_threadsafe_gh13(loop: ParkingLoop) -> None:
    # anyio's worker threads, run_coroutine_threadsafe and child watchers all
    # come in this way: a byte written to a socket the parked loop is not
    # watching, so the loop must be rung as well.
    for _ in range(3):
        wait_for_state(loop, _parking._PARKED)
        ran = threading.Event()
        loop.call_soon_threadsafe(ran.set)
        assert ran.wait(TIMEOUT)


def test_a_parked_loop_runs_its_timers(loop: ParkingLoop) -> None:
    fired = threading.Event()
    loop.call_soon_threadsafe(loop.call_later, 0.01, fired.set)
    assert fired.wait(TIMEOUT)


def test_call_in_select_wakes_a_loop_that_waits_in_epoll_gh13(
    loop: ParkingLoop,
) -> None:
    with watched_socket(loop):
        for _ in range(3):
            wait_for_state(loop, _parking._POLLING)
            ran = threading.Event()
            loop.call_in_select(ran.set)
            assert ran.wait(TIMEOUT)


def test_wake_up_bytes_do_not_pile_up_while_parked_gh13(loop: ParkingLoop) -> None:
    # Each call_soon_threadsafe writes a byte; a loop that only ever parked
    # would never read them, until the socket's buffer filled.
    for _ in range(500):
        ran = threading.Event()
        loop.call_soon_threadsafe(ran.set)
        assert ran.wait(TIMEOUT)
    wait_for_state(loop, _parking._PARKED)
    (key,) = loop._parking.get_map().values()  # only its own socket
    with socket.fromfd(key.fd, socket.AF_UNIX, socket.SOCK_STREAM) as own:  # a dup
        try:
            unread = len(own.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except BlockingIOError:
            unread = 0
    assert unread <= 1  # the last wake-up's, at most, not one per call


def test_a_call_queued_while_the_loop_runs_is_not_left_waiting(
    loop: ParkingLoop,
) -> None:
    # Queued by a callback of this turn (the loop runs: nobody to wake), it
    # must stop the loop from parking at the end of the turn.
    for _ in range(3):
        ran = threading.Event()
        loop.call_soon_threadsafe(loop.call_in_select, ran.set)
        assert ran.wait(TIMEOUT)


def test_a_ring_as_the_parked_wait_runs_out_is_taken_back() -> None:
    # The wait for a timer runs out just as another thread rings the bell: the
    # ring must be taken back, or the next park would end at once and the ring
    # after it would release an unlocked lock (a RuntimeError in the ringer).
    loop = ParkingLoop()
    try:
        selector = loop._parking

        class RacingBell:
            """The bell, whose timed wait runs out as the loop is rung."""

            def __init__(self) -> None:
                self.lock = threading.Lock()
                self.lock.acquire()
                self.raced = False

            def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
                if timeout > 0 and not self.raced:
                    self.raced = True
                    selector.ring()  # as if from another thread, right now
                    return False
                return self.lock.acquire(blocking, timeout)

            def release(self) -> None:
                self.lock.release()

        bell = RacingBell()
        selector._bell = bell  # type: ignore[assignment]  # a lock's interface
        assert selector.select(0.01) == []
        assert bell.raced
        assert bell.lock.locked()  # the ring was taken back
        assert selector._state == _parking._RUNNING
    finally:
        loop.close()


def test_a_late_ring_for_a_byte_already_read_does_not_stop_the_next_wake_up(
    loop: ParkingLoop,
) -> None:
    # call_soon_threadsafe writes its byte, then rings: by then the loop may
    # have read the byte, run the handle and gone back to epoll. That ring must
    # not pass for a byte on its way to the new wait, or the next call_in_select
    # writes none, and waits for as long as the loop does.
    with watched_socket(loop):
        wait_for_state(loop, _parking._POLLING)
        loop._parking.ring(written=True)  # the late ring, as it lands
        ran = threading.Event()
        loop.call_in_select(ran.set)
        assert ran.wait(TIMEOUT)


def test_worker_results_then_a_submit_while_the_loop_waits_in_epoll_gh13(
    loop: ParkingLoop,
) -> None:
    # The same race as it comes: a result from a worker thread (through
    # call_soon_threadsafe), then the wake-up of a submit, again and again.
    with watched_socket(loop):
        for _ in range(500):
            done = threading.Event()
            loop.call_soon_threadsafe(done.set)
            assert done.wait(TIMEOUT)
            ran = threading.Event()
            loop.call_in_select(ran.set)
            assert ran.wait(TIMEOUT)


def test_a_ring_nested_in_a_ring_on_one_thread_does_not_deadlock() -> None:
    # A signal handler that calls call_soon_threadsafe can run inside a ring,
    # on the ringing thread: the guard must let it in.
    loop = ParkingLoop()
    try:
        selector = loop._parking

        def nested() -> None:
            with selector._guard:  # as the outer ring holds it
                loop.call_soon_threadsafe(lambda: None)

        thread = threading.Thread(target=nested, daemon=True)
        thread.start()
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a ring nested in a ring deadlocked"
    finally:
        loop.close()


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers are for the main thread",
)
def test_a_loop_with_a_signal_handler_sees_its_signals() -> None:
    # A signal comes in through the loop's socket, which a parked loop does
    # not watch: a loop with a signal handler waits in epoll instead.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, ParkingLoop)
        got = asyncio.Event()
        loop.add_signal_handler(signal.SIGUSR1, got.set)
        try:

            def signal_while_it_waits() -> None:
                deadline = time.monotonic() + TIMEOUT
                while loop._parking._state == _parking._RUNNING:
                    if time.monotonic() > deadline:
                        return
                    time.sleep(0.001)
                os.kill(os.getpid(), signal.SIGUSR1)

            sender = threading.Thread(target=signal_while_it_waits)
            sender.start()
            await asyncio.wait_for(got.wait(), TIMEOUT / 3)
            sender.join()
        finally:
            loop.remove_signal_handler(signal.SIGUSR1)

    with asyncio.Runner(loop_factory=ParkingLoop) as runner:
        runner.run(main())


class _Interrupt(Exception):
    """What the signal handler raises, as Ctrl-C's raises KeyboardInterrupt."""


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread()
    or not hasattr(signal, "setitimer"),
    reason="signal handlers are for the main thread",
)
@pytest.mark.parametrize(
    ("waits_in", "wake"),
    [
        ("parked", "call_in_select"),
        ("parked", "threadsafe"),
        ("epoll", "call_in_select"),
    ],
)
def test_an_exception_from_a_signal_handler_in_a_wake_up_leaves_the_loop_wakeable(
    loop: ParkingLoop, waits_in: str, wake: str
) -> None:
    # A signal handler runs at any call of the waking thread, and may raise
    # (Ctrl-C). Wherever it lands in a wake-up, the loop must stay wakeable:
    # never marked as woken with nothing to wake it.
    state = _parking._PARKED if waits_in == "parked" else _parking._POLLING
    wake_up = (
        loop.call_in_select if wake == "call_in_select" else loop.call_soon_threadsafe
    )
    armed = False

    def handler(signum: int, frame: object) -> None:
        if armed:
            raise _Interrupt

    previous = signal.signal(signal.SIGALRM, handler)
    interrupted = 0
    gc.collect()  # no finalizer of earlier tests' objects runs while it is armed
    gc.disable()
    with watched_socket(loop) if waits_in == "epoll" else contextlib.nullcontext():
        signal.setitimer(signal.ITIMER_REAL, 4e-5, 4e-5)
        try:
            end = time.monotonic() + 1.5
            while time.monotonic() < end:
                wait_for_state(loop, state)  # fails if it was left asleep
                try:
                    armed = True
                    wake_up(lambda: None)
                    armed = False
                except _Interrupt:
                    armed = False
                    interrupted += 1
        finally:
            armed = False
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            # A SIGALRM raised just before the timer stopped may still be on
            # its way (to any thread): it must reach this handler, now a no-op,
            # and not the previous one (the default), which CPython reports as
            # "Signal 14 ignored due to race condition".
            time.sleep(0.05)
            signal.signal(signal.SIGALRM, previous)
            gc.enable()
        ran = threading.Event()
        loop.call_in_select(ran.set)
        assert ran.wait(TIMEOUT)
    assert interrupted  # the handler did land in wake-ups


def test_a_failing_callback_is_reported_and_the_loop_goes_on(
    loop: ParkingLoop,
) -> None:
    reported: list[dict[str, Any]] = []
    on_loop(loop, loop.set_exception_handler, lambda _, ctx: reported.append(ctx))

    def fail() -> None:
        raise ValueError("boom")

    ran = threading.Event()
    loop.call_in_select(fail)
    loop.call_in_select(ran.set)
    assert ran.wait(TIMEOUT)
    assert [type(context["exception"]) for context in reported] == [ValueError]


def test_a_closed_loop_keeps_no_callback() -> None:
    class Callback:
        def __call__(self) -> None:
            raise AssertionError("a closed loop ran it")

    loop = ParkingLoop()
    loop.close()
    callback = Callback()
    gone = weakref.ref(callback)
    loop.call_in_select(callback)  # no error, as call_soon_threadsafe's wrapper
    del callback
    gc.collect()
    assert gone() is None


def test_no_wake_up_is_lost_whatever_the_loop_waits_in_gh13(
    loop: ParkingLoop,
) -> None:
    # Threads wake the loop both ways, together, while it goes back and forth
    # between parked and waiting in epoll, with timers firing: every callback
    # runs once. A lost wake-up leaves one waiting for ever (here: time-out).
    threads, calls = 4, 300
    ran = [0] * threads
    all_ran = threading.Event()
    left = [threads * calls]
    start = threading.Barrier(threads + 1)

    def count(i: int) -> None:  # on the loop's thread
        ran[i] += 1
        left[0] -= 1
        if not left[0]:
            all_ran.set()

    def caller(i: int) -> None:
        rng = random.Random(i)
        start.wait()
        for _ in range(calls):
            how = rng.randrange(3)
            if how == 0:
                loop.call_in_select(lambda: count(i))
            elif how == 1:
                loop.call_soon_threadsafe(count, i)
            else:
                loop.call_soon_threadsafe(loop.call_later, 0.0005, count, i)
            if rng.random() < 0.3:
                time.sleep(0)  # let the loop run dry, and wait again

    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start.wait()
    deadline = time.monotonic() + TIMEOUT
    while not all_ran.is_set() and time.monotonic() < deadline:
        with watched_socket(loop) as other_end:  # it waits in epoll a while
            other_end.send(b"x")  # readiness to handle, as a peer's data
        all_ran.wait(0.002)  # and parks a while
    for worker in workers:
        worker.join(TIMEOUT)
    assert all_ran.wait(TIMEOUT), f"ran {ran} of {calls} each"
    assert ran == [calls] * threads


def test_the_executors_own_loop_parks_gh13() -> None:
    async def loop_type() -> type[asyncio.AbstractEventLoop]:
        return type(asyncio.get_running_loop())

    with unirun.CoroutineExecutor() as ex:
        assert ex.submit(loop_type).result(timeout=TIMEOUT) is ParkingLoop


def test_the_executors_own_loop_is_its_threads_event_loop() -> None:
    # As asyncio.run() makes it: code that asks the policy for this thread's
    # loop gets the running one.
    async def same_loop() -> bool:
        policy = asyncio.get_event_loop_policy()
        return policy.get_event_loop() is asyncio.get_running_loop()

    with unirun.CoroutineExecutor() as ex:
        assert ex.submit(same_loop).result(timeout=TIMEOUT)


def test_an_applications_loop_policy_is_kept() -> None:
    class Loop(asyncio.SelectorEventLoop):
        pass

    class Policy(asyncio.DefaultEventLoopPolicy):
        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            return Loop()

    async def loop_type() -> type[asyncio.AbstractEventLoop]:
        return type(asyncio.get_running_loop())

    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(Policy())
    try:
        with unirun.CoroutineExecutor() as ex:
            assert ex.submit(loop_type).result(timeout=TIMEOUT) is Loop
    finally:
        asyncio.set_event_loop_policy(before)


def test_submits_from_sync_code_run_while_a_task_reads_a_connection_gh13() -> None:
    # A task that reads from a server on 127.0.0.1 makes the loop wait in epoll
    # (it watches the connection), with no timer to end the wait: submits from
    # sync code must wake it there.
    async def read_line(port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await reader.readline()
        finally:
            writer.close()

    async def double(x: int) -> int:
        return 2 * x

    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(TIMEOUT)
        with unirun.CoroutineExecutor() as ex:
            reading = ex.submit(read_line, server.getsockname()[1])
            connection, _ = server.accept()
            with connection:
                results = [
                    ex.submit(double, i).result(timeout=TIMEOUT) for i in range(200)
                ]
                connection.sendall(b"done\n")
                assert reading.result(timeout=TIMEOUT) == b"done\n"
    assert results == [2 * i for i in range(200)]


def test_a_task_runs_a_child_process_from_sync_code() -> None:
    # A child's pipes make the loop wait in epoll; its exit comes from the
    # child watcher's thread, through call_soon_threadsafe.
    async def child_output() -> bytes:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print(42)", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
        assert await process.wait() == 0
        return out

    with unirun.CoroutineExecutor() as ex:
        for _ in range(3):
            assert ex.submit(child_output).result(timeout=TIMEOUT).strip() == b"42"
