"""TaskCounters: lock-free counts that add up, read while other threads count."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from unirun import TaskTimeoutError
from unirun._stats import Statistics, TaskCounters, ticker

FIELDS = ("submitted", "queued", "running", "done", "failed", "cancelled")


def _counts(stats: Statistics) -> dict[str, int]:
    return {name: getattr(stats, name) for name in (*FIELDS, "timed_out")}


@dataclass
class _Model:
    """What the snapshot must say, counted the obvious way."""

    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    timed_out: int = 0
    cancelled: int = 0
    rolled_back: int = 0
    submitted: int = field(default=0)


class CountersMachine(RuleBasedStateMachine):
    """Random task lives against a plain model of the counts."""

    def __init__(self) -> None:
        super().__init__()
        self.counters = TaskCounters()
        self.model = _Model()

    @rule()
    def submit(self) -> None:
        self.counters.submitted()
        self.model.submitted += 1
        self.model.queued += 1

    @precondition(lambda self: self.model.queued)
    @rule()
    def roll_back(self) -> None:
        self.counters.unsubmitted()
        self.model.submitted -= 1
        self.model.queued -= 1

    @precondition(lambda self: self.model.queued)
    @rule()
    def start(self) -> None:
        self.counters.started()
        self.model.queued -= 1
        self.model.running += 1

    @precondition(lambda self: self.model.queued or self.model.running)
    @rule(
        running=st.booleans(),
        error=st.sampled_from([None, ValueError(), TaskTimeoutError()]),
    )
    def finish(self, running: bool, error: BaseException | None) -> None:
        running = (running and self.model.running > 0) or not self.model.queued
        self.counters.finished(error, running=running)
        if running:
            self.model.running -= 1
        else:
            self.model.queued -= 1
        if error is None:
            self.model.done += 1
        else:
            self.model.failed += 1
            self.model.timed_out += isinstance(error, TaskTimeoutError)

    @precondition(lambda self: self.model.queued or self.model.running)
    @rule(running=st.booleans())
    def cancel(self, running: bool) -> None:
        running = (running and self.model.running > 0) or not self.model.queued
        self.counters.cancelled(running=running)
        if running:
            self.model.running -= 1
        else:
            self.model.queued -= 1
        self.model.cancelled += 1

    @invariant()
    def snapshot_matches_the_model(self) -> None:
        expected = {name: getattr(self.model, name) for name in (*FIELDS, "timed_out")}
        assert _counts(self.counters.snapshot()) == expected


TestCountersMachine = CountersMachine.TestCase
TestCountersMachine.settings = settings(max_examples=60, stateful_step_count=40)


def test_no_count_is_lost_when_threads_count_at_once() -> None:
    counters = TaskCounters()
    threads, per_thread = 4, 20_000
    start = threading.Barrier(threads)

    def count() -> None:
        start.wait()
        for _ in range(per_thread):
            counters.submitted()
            counters.started()
            counters.done()

    workers = [threading.Thread(target=count) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stats = counters.snapshot()
    assert (stats.submitted, stats.done, stats.running, stats.queued) == (
        threads * per_thread,
        threads * per_thread,
        0,
        0,
    )


def test_a_snapshot_taken_while_tasks_live_is_never_negative_and_adds_up() -> None:
    counters = TaskCounters()
    stop = threading.Event()
    seen: list[Statistics] = []

    def live(outcome: int) -> None:
        while not stop.is_set():
            counters.submitted()
            if outcome == 0:
                counters.cancelled(running=False)
                continue
            if outcome == 1:
                counters.finished(ValueError(), running=False)
                continue
            counters.started()
            if outcome == 2:
                counters.finished(None, running=True)
            else:
                counters.cancelled(running=True)

    workers = [threading.Thread(target=live, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    try:
        while len(seen) < 2_000:
            seen.append(counters.snapshot())
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    for stats in seen:
        assert min(_counts(stats).values()) >= 0, stats
        parts = stats.queued + stats.running + stats.done + stats.failed
        assert parts + stats.cancelled == stats.submitted, stats


def test_a_ticker_gives_every_number_once_to_threads_calling_together() -> None:
    tick = ticker()
    threads, calls = 8, 2_000
    start = threading.Barrier(threads)
    seen: list[list[int]] = [[] for _ in range(threads)]

    def count(mine: list[int]) -> None:
        start.wait()
        mine.extend(tick() for _ in range(calls))

    workers = [threading.Thread(target=count, args=(mine,)) for mine in seen]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    numbers = sorted(n for mine in seen for n in mine)
    assert numbers == list(range(threads * calls))
