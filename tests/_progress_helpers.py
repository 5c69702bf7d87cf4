"""Progress test helpers: a recording callable and a tqdm-like bar."""

from __future__ import annotations

import threading
from typing import ClassVar

__all__ = ["FakeBar", "Recorder", "the_bar"]


class Recorder:
    """A ``(done, total)`` callable that records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []
        self.reached_total = threading.Event()

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))
        if done == total:
            self.reached_total.set()

    @property
    def counts(self) -> list[int]:
        return [done for done, _ in self.calls]

    @property
    def totals(self) -> set[int | None]:
        return {total for _, total in self.calls}


class FakeBar:
    """A tqdm-like class that records what it is told (a fresh subclass per test)."""

    instances: ClassVar[list[FakeBar]]

    def __init__(self, *, total: int | None) -> None:
        self.total = total
        self.updates: list[int] = []
        self.updates_after_close = 0
        self.closes = 0
        self.closed = threading.Event()
        type(self).instances.append(self)

    def update(self, n: int) -> None:
        if self.closes:
            self.updates_after_close += 1
        self.updates.append(n)

    def close(self) -> None:
        self.closes += 1
        self.closed.set()


def the_bar(cls: type[FakeBar]) -> FakeBar:
    """The one bar ``cls`` made."""
    assert len(cls.instances) == 1
    return cls.instances[0]
