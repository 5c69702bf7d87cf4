"""Stateful tests: each primitive against its stdlib model, step by step.

:class:`queue.Queue` (3.13's, with ``shutdown``), :class:`threading.Lock`,
:class:`threading.Semaphore`, :class:`threading.BoundedSemaphore` and
:class:`threading.Event`, on the primitives of every kind of executor (see
``_stateful.py`` for how the comparison works).
"""

from __future__ import annotations

import math
import queue
import sys
import threading
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from _stateful import PrimitiveMachine, outcome, run_machine
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

import unirun

if TYPE_CHECKING:
    from unirun import BoundedSemaphore, Event, Lock, Queue, Semaphore
    from unirun._base import BaseExecutor

#: Timeouts worth trying: zero, tiny, and negative (some of which are invalid).
TIMEOUTS = st.sampled_from([0, 0.0, 0.001, -0.001, -1, -1.0, -2.5])
OPTIONAL_TIMEOUTS = st.none() | TIMEOUTS

#: Items of every kind a queue carries; the big ones take the shared queue's
#: path for items larger than a quarter of its ring buffer.
LARGE_ITEM_SIZE = 300_000
ITEMS: st.SearchStrategy[object] = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=20),
    st.binary(max_size=64),
    st.tuples(st.integers(), st.text(max_size=5), st.none()),
    st.integers(0, 255).map(lambda b: bytes([b]) * LARGE_ITEM_SIZE),
)


class ShutDownModel(queue.Queue[Any]):
    """3.13's ``queue.Queue.shutdown`` semantics, for one thread, before 3.13.

    Calls are only made when they return at once, so the checks before the
    stdlib's own put and get are all that shutdown changes.
    """

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.is_shutdown = False

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if self.is_shutdown:
            raise unirun.QueueShutDown
        super().put(item, block, timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        if self.is_shutdown and not self.qsize():
            raise unirun.QueueShutDown
        return super().get(block, timeout)

    def shutdown(self, immediate: bool = False) -> None:
        self.is_shutdown = True
        while immediate and self.qsize():
            super().get()
            if self.unfinished_tasks:
                self.unfinished_tasks -= 1


def queue_model(maxsize: int) -> Any:
    """The model queue: the stdlib's from 3.13 on, else :class:`ShutDownModel`."""
    return (
        queue.Queue(maxsize) if sys.version_info >= (3, 13) else ShutDownModel(maxsize)
    )


# -- Queue ---------------------------------------------------------------------------


class QueueMachine(PrimitiveMachine):
    """``ex.Queue(maxsize)`` against ``queue.Queue(maxsize)``."""

    maxsizes: ClassVar[st.SearchStrategy[int]] = st.sampled_from([-1, 0])

    def __init__(self) -> None:
        super().__init__()
        self.q: Queue[object]
        self.model: Any

    @initialize(data=st.data())
    def create(self, data: st.DataObject) -> None:
        maxsize = data.draw(self.maxsizes, label="maxsize")
        self.q = self.executor.Queue(maxsize)
        self.model = queue_model(maxsize)

    def blocks(self, busy: bool) -> bool:
        """Whether a wait without a time-out would block forever in one thread."""
        return busy and not self.model.is_shutdown

    @rule(item=ITEMS, block=st.booleans(), timeout=OPTIONAL_TIMEOUTS)
    def put(self, item: object, block: bool, timeout: float | None) -> None:
        if block and timeout is None and self.blocks(self.model.full()):
            return
        self.same(
            lambda: self.q.put(item, block, timeout),
            lambda: self.model.put(item, block, timeout),
        )

    @rule(item=ITEMS)
    def put_nowait(self, item: object) -> None:
        self.same(lambda: self.q.put_nowait(item), lambda: self.model.put_nowait(item))

    @rule(item=ITEMS)
    def put_default(self, item: object) -> None:
        if self.blocks(self.model.full()):
            return
        self.same(lambda: self.q.put(item), lambda: self.model.put(item))

    @rule(block=st.booleans(), timeout=OPTIONAL_TIMEOUTS)
    def get(self, block: bool, timeout: float | None) -> None:
        if block and timeout is None and self.blocks(self.model.empty()):
            return
        self.same(
            lambda: self.q.get(block, timeout),
            lambda: self.model.get(block, timeout),
        )

    @rule()
    def get_nowait(self) -> None:
        self.same(self.q.get_nowait, self.model.get_nowait)

    @precondition(lambda self: not self.blocks(self.model.empty()))
    @rule()
    def get_default(self) -> None:
        self.same(self.q.get, self.model.get)

    @rule(timeout=TIMEOUTS)
    def get_keywords(self, timeout: float) -> None:
        self.same(
            lambda: self.q.get(timeout=timeout),
            lambda: self.model.get(timeout=timeout),
        )

    @rule(item=ITEMS, timeout=TIMEOUTS)
    def put_keywords(self, item: object, timeout: float) -> None:
        self.same(
            lambda: self.q.put(item, timeout=timeout),
            lambda: self.model.put(item, timeout=timeout),
        )

    @rule()
    def task_done(self) -> None:
        self.same(self.q.task_done, self.model.task_done)

    @precondition(lambda self: self.model.unfinished_tasks == 0)
    @rule()
    def join(self) -> None:
        self.same(self.q.join, self.model.join)

    @precondition(lambda self: "Queue.shutdown" not in self.executor.lacks)
    @rule(immediate=st.booleans())
    def shutdown(self, immediate: bool) -> None:
        self.same(
            lambda: self.q.shutdown(immediate), lambda: self.model.shutdown(immediate)
        )

    @invariant()
    def sizes_match(self) -> None:
        self.same(self.q.qsize, self.model.qsize)
        self.same(self.q.empty, self.model.empty)
        self.same(self.q.full, self.model.full)
        assert self.q.maxsize == self.model.maxsize
        assert self.q.unfinished_tasks == self.model.unfinished_tasks
        assert self.q.is_shutdown == self.model.is_shutdown


class BoundedQueueMachine(QueueMachine):
    """The same, for queues of a few slots."""

    maxsizes = st.integers(1, 3)


# -- Lock ----------------------------------------------------------------------------


class LockMachine(PrimitiveMachine):
    """``ex.Lock()`` against ``threading.Lock()``."""

    def __init__(self) -> None:
        super().__init__()
        self.lock: Lock = self.executor.Lock()
        self.model = threading.Lock()

    @rule(blocking=st.booleans(), timeout=TIMEOUTS)
    def acquire(self, blocking: bool, timeout: float) -> None:
        if blocking and timeout == -1 and self.model.locked():
            return  # would block forever in one thread
        self.same(
            lambda: self.lock.acquire(blocking, timeout),
            lambda: self.model.acquire(blocking, timeout),
        )

    @rule(blocking=st.booleans())
    def acquire_no_timeout(self, blocking: bool) -> None:
        if blocking and self.model.locked():
            return  # would block forever in one thread
        self.same(
            lambda: self.lock.acquire(blocking),
            lambda: self.model.acquire(blocking),
        )

    @rule(timeout=TIMEOUTS)
    def acquire_timeout_keyword(self, timeout: float) -> None:
        if timeout == -1 and self.model.locked():
            return  # would block forever in one thread
        self.same(
            lambda: self.lock.acquire(timeout=timeout),
            lambda: self.model.acquire(timeout=timeout),
        )

    @rule()
    def release(self) -> None:
        self.same(self.lock.release, self.model.release)

    @precondition(lambda self: not self.model.locked())
    @rule()
    def with_block(self) -> None:
        with self.lock as got, self.model as expected:
            assert got == expected
            self.same(self.lock.locked, self.model.locked)
        self.same(self.lock.locked, self.model.locked)

    @invariant()
    def locked_matches(self) -> None:
        self.same(self.lock.locked, self.model.locked)


# -- Semaphore, BoundedSemaphore -----------------------------------------------------


class SemaphoreMachine(PrimitiveMachine):
    """``ex.Semaphore(value)`` against ``threading.Semaphore(value)``."""

    bounded: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__()
        self.sem: Semaphore
        self.model: threading.Semaphore
        self.value = 0  # the model's value, kept here (threading hides it)

    def _make_unirun(self, value: int) -> Semaphore | BoundedSemaphore:
        if self.bounded:
            return self.executor.BoundedSemaphore(value)
        return self.executor.Semaphore(value)

    def _make_model(self, value: int) -> threading.Semaphore:
        if self.bounded:
            return threading.BoundedSemaphore(value)
        return threading.Semaphore(value)

    @initialize(value=st.integers(0, 3))
    def create(self, value: int) -> None:
        self.sem = self._make_unirun(value)
        self.model = self._make_model(value)
        self.value = value

    @rule(value=st.integers(-3, 3))
    def construct(self, value: int) -> None:
        """A new one of any initial value, valid or not, is made the same."""
        kind = unirun.BoundedSemaphore if self.bounded else unirun.Semaphore
        result = self.same(
            lambda: isinstance(self._make_unirun(value), kind),
            lambda: isinstance(self._make_model(value), threading.Semaphore),
        )
        assert (result[0] == "raised") == (value < 0)

    @rule(blocking=st.booleans(), timeout=OPTIONAL_TIMEOUTS)
    def acquire(self, blocking: bool, timeout: float | None) -> None:
        if blocking and timeout is None and self.value == 0:
            return  # would block forever in one thread
        result = self.same(
            lambda: self.sem.acquire(blocking, timeout),
            lambda: self.model.acquire(blocking, timeout),
        )
        if result == ("returned", True):
            self.value -= 1

    @precondition(lambda self: self.value > 0)
    @rule()
    def acquire_default(self) -> None:
        self.same(self.sem.acquire, self.model.acquire)
        self.value -= 1

    @rule(n=st.integers(-2, 3))
    def release(self, n: int) -> None:
        result = self.same(lambda: self.sem.release(n), lambda: self.model.release(n))
        if result[0] == "returned":
            self.value += n

    @rule()
    def release_default(self) -> None:
        result = self.same(self.sem.release, self.model.release)
        if result[0] == "returned":
            self.value += 1

    @precondition(lambda self: self.value > 0)
    @rule()
    def with_block(self) -> None:
        with self.sem as got, self.model as expected:
            assert got == expected
            self.value -= 1
            self.check_value()
        self.value += 1

    @invariant()
    def check_value(self) -> None:
        """The unirun semaphore has the model's value: exactly that many units."""
        taken = 0
        while self.sem.acquire(False):
            taken += 1
            if taken > self.value:
                break
        assert taken == self.value
        if taken:
            self.sem.release(taken)


class BoundedSemaphoreMachine(SemaphoreMachine):
    """``ex.BoundedSemaphore(value)`` against ``threading.BoundedSemaphore``."""

    bounded = True


# -- Event ---------------------------------------------------------------------------


class EventMachine(PrimitiveMachine):
    """``ex.Event()`` against ``threading.Event()``."""

    def __init__(self) -> None:
        super().__init__()
        self.event: Event = self.executor.Event()
        self.model = threading.Event()

    @rule()
    def set(self) -> None:
        self.same(self.event.set, self.model.set)

    @rule()
    def clear(self) -> None:
        self.same(self.event.clear, self.model.clear)

    @rule(timeout=OPTIONAL_TIMEOUTS)
    def wait(self, timeout: float | None) -> None:
        if timeout is None and not self.model.is_set():
            return  # would block forever in one thread
        self.same(lambda: self.event.wait(timeout), lambda: self.model.wait(timeout))

    @precondition(lambda self: self.model.is_set())
    @rule()
    def wait_default(self) -> None:
        self.same(self.event.wait, self.model.wait)

    @invariant()
    def is_set_matches(self) -> None:
        self.same(self.event.is_set, self.model.is_set)


# -- the tests -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "machine",
    [
        QueueMachine,
        BoundedQueueMachine,
        LockMachine,
        SemaphoreMachine,
        BoundedSemaphoreMachine,
        EventMachine,
    ],
    ids=lambda machine: str(machine.__name__).removesuffix("Machine"),
)
def test_matches_stdlib(
    machine: type[PrimitiveMachine], executor: BaseExecutor
) -> None:
    run_machine(machine, executor)


class ModelCheck(QueueMachine):
    """The hand-written shut-down model against 3.13's queue.Queue itself."""

    maxsizes = st.integers(0, 2)

    @initialize(data=st.data())
    def create(self, data: st.DataObject) -> None:
        maxsize = data.draw(self.maxsizes, label="maxsize")
        self.q = ShutDownModel(maxsize)  # type: ignore[assignment]  # the model itself
        self.model = queue.Queue(maxsize)


@pytest.mark.skipif(sys.version_info < (3, 13), reason="queue.ShutDown is 3.13's")
def test_the_shutdown_model_is_3_13s_queue() -> None:
    with unirun.ThreadExecutor(max_workers=1) as ex:
        run_machine(ModelCheck, ex)


# -- edge cases found by probing, pinned -------------------------------------------


@pytest.mark.parametrize("maxsize", [0, 10])
def test_queue_takes_many_mid_size_items(maxsize: int, executor: BaseExecutor) -> None:
    """Items under the spill size that fill the shared ring buffer still fit."""
    q: Queue[bytes] = executor.Queue(maxsize)
    model: queue.Queue[bytes] = queue.Queue(maxsize)
    item = b"x" * 200_000
    for _ in range(6):
        assert outcome(lambda: q.put_nowait(item)) == outcome(
            lambda: model.put_nowait(item)
        )
    assert q.qsize() == model.qsize()
    for _ in range(6):
        assert outcome(q.get_nowait) == outcome(model.get_nowait)


TOO_LARGE = [
    threading.TIMEOUT_MAX * 2,
    int(threading.TIMEOUT_MAX) * 2,
    10**30,
    -(10**30),
    -1e300,
    -math.inf,
]


@pytest.mark.parametrize("timeout", TOO_LARGE, ids=repr)
@pytest.mark.parametrize("blocking", [True, False])
def test_lock_timeout_too_large(
    blocking: bool, timeout: float, executor: BaseExecutor
) -> None:
    # Refused as CPython converts it to its clock: by sign-less size, worded
    # by type, before the lock looks at it as negative or non-blocking.
    lock = executor.Lock()
    model = threading.Lock()
    model.acquire()  # held: a time-out that would be used is
    assert outcome(lambda: lock.acquire(blocking, timeout)) == outcome(
        lambda: model.acquire(blocking, timeout)
    )


@pytest.mark.parametrize("timeout", [10**30, 1e300], ids=repr)
def test_event_wait_too_long_to_wait_for(
    timeout: float, executor: BaseExecutor
) -> None:
    event = executor.Event()
    model = threading.Event()
    assert outcome(lambda: event.wait(timeout)) == outcome(lambda: model.wait(timeout))


def test_lock_timeout_none(executor: BaseExecutor) -> None:
    lock = executor.Lock()
    model = threading.Lock()
    bad: Any = None
    assert outcome(lambda: lock.acquire(True, bad)) == outcome(
        lambda: model.acquire(True, bad)
    )


@pytest.mark.parametrize("blocking", [True, False])
def test_lock_timeout_nan(blocking: bool, executor: BaseExecutor) -> None:
    lock = executor.Lock()
    model = threading.Lock()
    nan = float("nan")
    assert outcome(lambda: lock.acquire(blocking, nan)) == outcome(
        lambda: model.acquire(blocking, nan)
    )


def test_event_wait_nan(executor: BaseExecutor) -> None:
    event = executor.Event()
    model = threading.Event()
    nan = float("nan")
    assert outcome(lambda: event.wait(nan)) == outcome(lambda: model.wait(nan))


@pytest.mark.parametrize("maxsize", [0, 1])
def test_queue_wait_too_long_to_wait_for(maxsize: int, executor: BaseExecutor) -> None:
    """As queue.Queue: a time-out beyond TIMEOUT_MAX is refused once it must wait."""
    q: Queue[int] = executor.Queue(maxsize)
    model: queue.Queue[int] = queue.Queue(maxsize)
    timeout = threading.TIMEOUT_MAX * 2
    assert outcome(lambda: q.get(timeout=timeout)) == outcome(
        lambda: model.get(timeout=timeout)
    )
    if maxsize:
        q.put(1)
        model.put(1)
        assert outcome(lambda: q.put(2, timeout=timeout)) == outcome(
            lambda: model.put(2, timeout=timeout)
        )
