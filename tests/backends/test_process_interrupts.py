"""A Ctrl-C in the submitting thread that cuts a task's hand-over to a worker
process short: the pool finishes it, or (a message cut while being written)
replaces the worker and fails that one task; it never strands either.

tests/test_interrupted_submit.py runs a storm of real interrupts through a
script; here the cut lands at a chosen point of the write.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

import unirun
from unirun._backends import _wire

if TYPE_CHECKING:
    from collections.abc import Sequence


def test_a_message_cut_mid_write_fails_only_its_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with unirun.ProcessExecutor(1) as ex:
        assert ex.submit(abs, -1).result(timeout=60) == 1  # the worker is up
        real = os.writev

        def cut(fd: int, buffers: Sequence[bytes | memoryview]) -> int:
            monkeypatch.undo()  # once
            real(fd, [bytes(buffers[0])[:2]])  # part of the length prefix
            raise KeyboardInterrupt  # as a signal handler raises it

        monkeypatch.setattr(os, "writev", cut)  # as _wire calls it
        with pytest.raises(KeyboardInterrupt):
            ex.submit(len, b"x" * 100_000)  # far bigger than PIPE_BUF
        # A new worker takes the next task; the cut one failed.
        assert ex.submit(abs, -2).result(timeout=60) == 2
    stats = ex.statistics()
    assert (stats.submitted, stats.done, stats.failed) == (3, 2, 1), stats
    assert stats.workers_replaced == 1, stats


def test_a_hand_over_cut_before_the_write_is_finished_by_the_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with unirun.ProcessExecutor(1) as ex:
        assert ex.submit(abs, -1).result(timeout=60) == 1
        real = _wire.send_parts

        def cut(*args: object) -> None:
            monkeypatch.undo()
            raise KeyboardInterrupt  # before anything was written

        monkeypatch.setattr(_wire, "send_parts", cut)
        with pytest.raises(KeyboardInterrupt):
            ex.submit(abs, -5)
        assert _wire.send_parts is real
        assert ex.submit(abs, -2).result(timeout=60) == 2
    stats = ex.statistics()
    # The cut task ran too (sent by the pool): every task ended, none failed.
    assert (stats.submitted, stats.done, stats.failed) == (3, 3, 0), stats
    assert stats.workers_replaced == 0, stats
