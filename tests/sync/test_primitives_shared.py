"""What is particular to the primitives shared with processes.

Where they may be sent, their shared-memory buffer, signals while blocked, and
the defects of ``multiprocessing.Manager`` proxies that they must not have.
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import signal
import threading
from typing import TYPE_CHECKING, Any

import pytest

import _primitive_tasks as tasks
import unirun
from conftest import make_executor, run_python_file
from unirun._sync.ringqueue import _OVERFLOW_READ, _OVERFLOW_WRITE, SharedQueue

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from unirun._base import BaseExecutor


@pytest.fixture
def process_ex() -> Iterator[BaseExecutor]:
    """A small process executor."""
    ex = make_executor("process")
    try:
        yield ex
    finally:
        ex.shutdown(wait=True, cancel_futures=True)


MAKERS: list[tuple[str, Callable[[BaseExecutor], object]]] = [
    ("Queue", lambda ex: ex.Queue()),
    ("Lock", lambda ex: ex.Lock()),
    ("Semaphore", lambda ex: ex.Semaphore()),
    ("BoundedSemaphore", lambda ex: ex.BoundedSemaphore()),
    ("Event", lambda ex: ex.Event()),
]


@pytest.mark.parametrize(("name", "make"), MAKERS, ids=[m[0] for m in MAKERS])
def test_primitive_of_another_executor_fails_at_submit(
    process_ex: BaseExecutor, name: str, make: Callable[[BaseExecutor], object]
) -> None:
    other = make_executor("process")
    try:
        primitive = make(other)
        future = process_ex.submit(tasks.identities, primitive)
        with pytest.raises(unirun.TransferError, match="positional argument 0") as info:
            future.result(timeout=60)
        assert "executor that created it" in str(info.value.__cause__ or info.value)
    finally:
        other.shutdown()


@pytest.mark.parametrize("kind", ["thread", "coroutine"])
@pytest.mark.parametrize(("name", "make"), MAKERS, ids=[m[0] for m in MAKERS])
def test_in_process_primitive_cannot_go_to_a_process(
    process_ex: BaseExecutor,
    kind: str,
    name: str,
    make: Callable[[BaseExecutor], object],
) -> None:
    local = make_executor(kind)
    try:
        primitive = make(local)
        future = process_ex.submit(tasks.identities, primitive)
        with pytest.raises(unirun.TransferError):
            future.result(timeout=60)
        with pytest.raises(TypeError, match="cannot be sent to another process"):
            pickle.dumps(primitive)
    finally:
        local.shutdown()


@pytest.mark.parametrize(("name", "make"), MAKERS, ids=[m[0] for m in MAKERS])
def test_pickling_outside_a_task_fails_clearly(
    process_ex: BaseExecutor, name: str, make: Callable[[BaseExecutor], object]
) -> None:
    with pytest.raises(TypeError, match=f"unirun.{name} can only be passed to tasks"):
        pickle.dumps(make(process_ex))


def test_a_task_that_returns_a_primitive_fails_saying_so(
    process_ex: BaseExecutor,
) -> None:
    # The caller has the primitive already; a copy sent back would be
    # disconnected from it. The error says so, not only "passed to tasks".
    q = process_ex.Queue()
    error = process_ex.submit(lambda q: [q], q).exception(timeout=60)
    assert isinstance(error, TypeError), repr(error)
    assert "a task's result" in str(error)


def test_a_worker_opens_each_primitive_once(process_ex: BaseExecutor) -> None:
    lock = process_ex.Lock()
    q = process_ex.Queue()
    ids = {tuple(process_ex.submit(tasks.identities, lock, q, lock).result(60))}
    first = next(iter(ids))
    assert first[0] == first[2]  # the same object twice in one call
    for _ in range(6):
        ids.add(tuple(process_ex.submit(tasks.identities, lock, q, lock).result(60)))
    assert len(ids) <= 2  # at most one per worker process (two workers)


def test_primitives_travel_inside_queue_items(process_ex: BaseExecutor) -> None:
    q = process_ex.Queue()
    lock = process_ex.Lock()
    q.put(("lock", lock))
    assert q.get_nowait() == ("lock", lock)  # back in its process: the same object
    process_ex.submit(tasks.put_from_worker, q, lock).result(60)
    assert q.get(timeout=60) is lock


def test_unpicklable_item_fails_at_put_and_leaves_the_queue_as_it_was(
    process_ex: BaseExecutor,
) -> None:
    q = process_ex.Queue(maxsize=1)
    with pytest.raises(unirun.TransferError, match="cannot put"):
        q.put(threading.Lock())
    assert q.qsize() == 0
    q.put_nowait("fits")  # the slot was not used up
    assert q.get_nowait() == "fits"


def test_lambdas_travel_by_value(process_ex: BaseExecutor) -> None:
    q = process_ex.Queue()
    offset = 10
    q.put(lambda x: x + offset)
    assert q.get_nowait()(1) == 11


def test_items_beyond_the_buffer_overflow_in_order() -> None:
    """An unbounded queue takes what the buffer cannot hold, big items included."""
    shared: SharedQueue[Any] = SharedQueue("scope", capacity=1024)
    path = shared._monitor.segment.path
    items = [b"x" * 100 * (i % 3) + bytes([i]) for i in range(40)]
    items[5] = os.urandom(300_000)  # bigger than the whole buffer
    for item in items[:20]:
        shared.put_nowait(item)
    assert shared._words[_OVERFLOW_WRITE] > 0  # the overflow file is in use
    received = [shared.get_nowait() for _ in range(10)]
    for item in items[20:]:  # still after the overflowing items, in order
        shared.put(item, timeout=0)
    received += [shared.get_nowait() for _ in range(30)]
    assert received == items
    assert shared.empty()
    # drained: the next put goes back to the ring, and the file is emptied
    assert shared._words[_OVERFLOW_READ] == shared._words[_OVERFLOW_WRITE]
    shared.put(b"again")
    assert os.fstat(shared._overflow).st_size == 0
    assert shared.get_nowait() == b"again"
    del shared
    gc.collect()
    assert not os.path.exists(path)
    assert not os.path.exists(path + ".overflow")


def _interrupt_after(seconds: float) -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signals reach the main thread only",
)
def test_ctrl_c_while_blocked_takes_nothing(process_ex: BaseExecutor) -> None:
    """A Manager proxy keeps an interrupted acquire running and takes the lock
    later for nobody; here the interrupted call simply never happened."""
    previous = signal.getsignal(signal.SIGALRM)
    lock = process_ex.Lock()
    sem = process_ex.Semaphore(0)
    q = process_ex.Queue()
    try:
        lock.acquire()
        for blocking_call in (lock.acquire, sem.acquire, q.get):
            _interrupt_after(0.05)
            with pytest.raises(KeyboardInterrupt):
                blocking_call()
        lock.release()
        assert not lock.locked()
        sem.release()
        assert sem.acquire(blocking=False)
        q.put("still there")
        assert q.get_nowait() == "still there"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_what_a_manager_proxy_lacks(process_ex: BaseExecutor) -> None:
    lock = process_ex.Lock()
    assert lock.locked() is False
    sem = process_ex.Semaphore(0)
    sem.release(3)
    assert [sem.acquire(blocking=False) for _ in range(4)] == [True] * 3 + [False]
    assert process_ex.Queue(maxsize=7).maxsize == 7
    with pytest.raises(ValueError, match="initial value must be >= 0"):
        process_ex.Semaphore(-1)


def test_exit_with_live_primitives_leaves_nothing_behind(tmp_path: Path) -> None:
    """Primitives still referenced at exit are unlinked, and the resource tracker
    is told, so it has nothing to warn about."""
    script = tmp_path / "script.py"
    script.write_text(
        "import os, threading, unirun\n"
        "def wait(event):\n"
        "    return event.wait(0.01)  # a waiter: its slot gets a doorbell\n"
        "if __name__ == '__main__':  # module globals, alive at exit\n"
        "    print(os.getpid())\n"
        "    ex = unirun.ProcessExecutor(max_workers=1)\n"
        "    lock, q, ev, sem = ex.Lock(), ex.Queue(), ex.Event(), ex.Semaphore()\n"
        "    d, cond, barrier = ex.Dict(), ex.Condition(), ex.Barrier(2)\n"
        "    q.put(1)\n"
        "    d['key'] = 'value'\n"
        "    print(ex.submit(wait, ev).result(), wait(ev))\n"
        "    ex.shutdown()\n"
    )
    done = run_python_file(script)
    pid, results = done.stdout.split("\n", 1)
    assert results.strip() == "False False"
    assert "leak" not in done.stderr
    assert "resource_tracker" not in done.stderr
    if os.path.isdir("/dev/shm"):  # this script's files and semaphores only
        assert not [n for n in os.listdir("/dev/shm") if f"unirun-{pid}-" in n]


def test_primitive_dropped_by_the_caller_still_reaches_a_queued_task() -> None:
    """Regression: the creator unlinked the names before a queued task opened them."""
    ex = make_executor("process", max_workers=1)
    try:
        go = ex.Event()
        blocker = ex.submit(tasks.wait_then_report, go)
        # Temporaries: nothing but the pending task refers to them.
        pending = ex.submit(tasks.use_lock_and_queue, ex.Lock(), ex.Queue())
        gc.collect()
        go.set()
        assert blocker.result(60) is True
        assert pending.result(60) == "used"
    finally:
        ex.shutdown()


def test_an_item_that_cannot_be_rebuilt_does_not_block_join(
    process_ex: BaseExecutor,
) -> None:
    q = process_ex.Queue(maxsize=2)
    q.put(tasks.Unrebuildable())
    q.put("next")
    with pytest.raises(RuntimeError, match="cannot rebuild") as info:
        q.get()
    assert any("dropped" in note for note in getattr(info.value, "__notes__", []))
    assert q.get_nowait() == "next"
    q.task_done()
    joined = threading.Thread(target=q.join)
    joined.start()
    joined.join(30)
    assert not joined.is_alive()


def test_a_failed_put_gives_its_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: an error while writing the item used to keep its slot."""
    q: SharedQueue[Any] = SharedQueue("scope", maxsize=2, capacity=1024)

    def no_space(*args: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwritev", no_space)
    for _ in range(3):
        with pytest.raises(OSError, match="No space"):
            q.put(b"x" * 2000)  # bigger than the ring: goes to the overflow file
    monkeypatch.undo()
    q.put_nowait(1)
    q.put_nowait(2)
    assert q.full()
    assert [q.get_nowait(), q.get_nowait()] == [1, 2]


def test_fractional_maxsize_as_queue_queue(process_ex: BaseExecutor) -> None:
    q = process_ex.Queue(maxsize=2.5)  # type: ignore[arg-type]  # as queue.Queue allows
    model: queue.Queue[int] = queue.Queue(maxsize=2.5)  # type: ignore[arg-type]
    for i in range(3):
        q.put_nowait(i)
        model.put_nowait(i)
    assert q.full()
    assert model.full()
    with pytest.raises(queue.Full):
        q.put_nowait(3)


def test_a_semaphore_past_the_systems_limit_is_refused_whole(
    process_ex: BaseExecutor,
) -> None:
    # threading's has no limit; a shared one holds at most SEM_VALUE_MAX. What
    # passes it is refused, leaving the value as it was (not part released, and
    # not with the bounded semaphore's "released too many times").
    from unirun._sync.shm import SEM_MAX

    with pytest.raises(OverflowError, match="SEM_VALUE_MAX"):
        process_ex.Semaphore(SEM_MAX + 1)
    sem = process_ex.Semaphore(SEM_MAX - 3)
    with pytest.raises(OverflowError, match="SEM_VALUE_MAX"):
        sem.release(5)
    sem.release(3)  # up to the limit exactly
    taken = 0
    while taken < 4 and sem.acquire(blocking=False):
        taken += 1
    assert taken == 4  # the value is SEM_MAX: the refused release added nothing
    sem.release(4)


def test_interrupted_reacquire_still_takes_the_mutex() -> None:
    """Regression: a Ctrl-C while a condition wait took its mutex back made the
    caller release a mutex someone else held."""
    from unirun._sync.mutex import Mutex
    from unirun._sync.shm import Segment

    segment = Segment.create(4096)
    mutex = Mutex(segment.fd, segment.words(0, 1), segment.words(1, 1))
    mutex.acquire()
    previous = signal.getsignal(signal.SIGALRM)
    release_later = threading.Timer(0.3, mutex.release)
    try:
        release_later.start()  # before the alarm: starting a thread may be slow
        _interrupt_after(0.05)
        with pytest.raises(KeyboardInterrupt):
            mutex.reacquire()  # interrupted at 0.05 s, finishes at 0.3 s
        assert not mutex.acquire(deadline=0.0)  # we hold it now
        mutex.release()
    finally:
        release_later.join()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_forked_child_leaves_the_parents_primitives_alone(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "import os, sys, unirun\n"
        "def use(q):\n"
        "    q.put(1)\n"
        "    return q.get()\n"
        "if __name__ == '__main__':\n"
        "    with unirun.ProcessExecutor(max_workers=1, max_tasks_per_child=1) as ex:\n"
        "        q = ex.Queue()\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            sys.exit(0)  # runs the inherited finalizers\n"
        "        os.waitpid(pid, 0)\n"
        "        path = q._monitor.segment.path\n"
        "        print(os.path.exists(path), ex.submit(use, q).result(60))\n"
    )
    done = run_python_file(script)
    assert done.stdout.split() == ["True", "1"]


def test_items_of_main_classes_travel_by_value(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        "import unirun\n"
        "def consume(q):\n"
        "    return q.get(timeout=60).x\n"
        "if __name__ == '__main__':\n"
        "    class Point:\n"
        "        def __init__(self, x):\n"
        "            self.x = x\n"
        "    with unirun.ProcessExecutor(max_workers=1) as ex:\n"
        "        q = ex.Queue()\n"
        "        q.put(Point(41))\n"
        "        print(ex.submit(consume, q).result(60) + 1)\n"
    )
    done = run_python_file(script)
    assert done.stdout.strip() == "42"


def test_a_busy_queue_never_raises_empty_with_items_in_it_or_full_with_room(
    process_ex: BaseExecutor,
) -> None:
    # Four threads drain with get(True, 0), then fill with put(True, 0). As
    # queue.Queue: the time-out is the item's (or the room's); the mutex is
    # taken without a limit. Taken against the deadline, a contended mutex
    # raised Empty with thousands of items queued, Full with room.
    items, threads = 4000, 4
    q: queue.Queue[int] = process_ex.Queue(items + 10)  # type: ignore[assignment]
    for i in range(items):
        q.put(i)
    left: list[int] = []
    fulls: list[int] = []

    def drain() -> None:
        while True:
            try:
                q.get(True, 0)
            except queue.Empty:
                left.append(q.qsize())
                return

    def fill() -> None:
        for i in range(items // threads):
            try:
                q.put(i, True, 0)
            except queue.Full:
                fulls.append(q.qsize())

    for work in (drain, fill):
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
    assert left == [0] * threads
    assert fulls == []
    assert q.qsize() == items


TRIO_IMPORT_RACE = """
import sys, threading
import unirun

ex = unirun.ProcessExecutor(1)
rlock = ex.RLock()
errors = []
stop = False

def spin():
    while not stop:
        try:
            rlock.acquire()
            rlock.release()
        except Exception as exc:
            errors.append(exc)
            return

thread = threading.Thread(target=spin)
thread.start()
import trio  # a partly imported module, for a while, in sys.modules
stop = True
thread.join()
ex.shutdown()
assert not errors, errors
"""


def test_an_rlock_works_while_another_thread_imports_trio(tmp_path: Path) -> None:
    # Its owner's task was looked up in sys.modules["trio"] as found: a module
    # another thread was still importing, with no lowlevel yet.
    script = tmp_path / "race.py"
    script.write_text(TRIO_IMPORT_RACE)
    run_python_file(script)


def _rewrite_log(d: unirun.Dict[str, bytes]) -> None:
    """Write ``d`` until its log is rewritten."""
    from unirun._sync.logdicts import _GENERATION

    words = d._words  # type: ignore[attr-defined]
    generation = words[_GENERATION]
    while words[_GENERATION] == generation:
        d["filler"] = os.urandom(1 << 16)


def _grow_log_past(d: unirun.Dict[str, bytes], position: int) -> int:
    """Write new keys to ``d`` until its log ends past ``position``."""
    from unirun._sync.logdicts import _END

    words = d._words  # type: ignore[attr-defined]
    count = 0
    while words[_END] <= position:
        d[f"k{count}"] = bytes(1000)
        count += 1
    return count


def _write_racing(
    ex: BaseExecutor,
    monkeypatch: pytest.MonkeyPatch,
    race: Callable[[unirun.Dict[str, Any]], object],
    after: Callable[[], object] = lambda: None,
) -> None:
    """Write to a Dict whose copy here is current, while another process
    rewrites its log to the log's start and then ``race(d)`` runs: both just
    after the write let go of the mutex, before it updates its copy; ``after()``
    once it has. Then the new log grows past where the copy was, and every
    read must still be right.
    """
    from unirun._sync.monitor import Monitor

    d: unirun.Dict[str, Any] = ex.Dict()
    d["kept"] = 1
    ex.submit(_rewrite_log, d).result(timeout=60)  # the next goes to 0
    assert len(d) == 2  # this process's copy is current: a write keeps it so
    release = Monitor.release
    armed = [True]

    def release_then_race(monitor: Monitor) -> None:
        release(monitor)
        if armed and armed.pop():
            ex.submit(_rewrite_log, d).result(timeout=60)
            race(d)

    monkeypatch.setattr(Monitor, "release", release_then_race)
    try:
        d["written"] = 2
    finally:
        monkeypatch.undo()
        after()
    assert not armed
    here = d._position  # type: ignore[attr-defined]
    added = ex.submit(_grow_log_past, d, here).result(timeout=60)
    assert set(d) == {"filler", "kept", "written", *(f"k{i}" for i in range(added))}
    assert (d["kept"], d["written"], len(d["filler"])) == (1, 2, 1 << 16)


def test_a_write_never_rewinds_a_copy_another_thread_brought_up_to_date(
    process_ex: BaseExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another thread caught up past the write, through the rewrite; the write
    # then set the copy's place back into the old log, and once the new one
    # grew past that place, a read replayed it from the middle of a record.
    def caught_up(d: unirun.Dict[str, Any]) -> None:
        other = threading.Thread(target=lambda: len(d))
        other.start()
        other.join(60)

    _write_racing(process_ex, monkeypatch, caught_up)


def test_a_write_never_rewinds_a_copy_another_thread_is_bringing_up_to_date(
    process_ex: BaseExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As above, with the other thread paused inside its catch-up: past the
    # rewritten log, its copy's version not yet set (which the write read).
    import inspect
    import sys

    from unirun._sync.logdicts import SharedDict

    lines, first = inspect.getsourcelines(SharedDict._catch_up)
    pause_at = first + next(
        i for i, line in enumerate(lines) if "self._version = words[" in line
    )
    paused, go_on = threading.Event(), threading.Event()
    threads: list[threading.Thread] = []

    def pause(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is not SharedDict._catch_up.__code__:
            return None

        def line(frame: Any, event: str, arg: Any) -> Any:
            if event == "line" and frame.f_lineno == pause_at:
                paused.set()
                assert go_on.wait(60)
            return line

        return line

    def catching_up(d: unirun.Dict[str, Any]) -> None:
        def catch_up() -> None:
            sys.settrace(pause)
            try:
                len(d)
            finally:
                sys.settrace(None)

        threads.append(threading.Thread(target=catch_up))
        threads[0].start()
        assert paused.wait(60)

    def let_it_finish() -> None:
        go_on.set()
        for thread in threads:
            thread.join(60)

    _write_racing(process_ex, monkeypatch, catching_up, let_it_finish)
