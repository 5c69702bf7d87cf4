"""What process tasks print and log reaches this process (issue 15)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from typing import TYPE_CHECKING

import pytest

import unirun
from _tasks import (
    log_message,
    print_lines,
    print_partial_then_die,
    square,
    stream_facts,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def ex() -> Iterator[unirun.ProcessExecutor]:
    with unirun.ProcessExecutor(max_workers=2) as executor:
        yield executor


def test_prints_reach_current_stdout_and_stderr(
    ex: unirun.ProcessExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ex.submit(print_lines, "task", 3).result(timeout=60) == 3
    captured = capsys.readouterr()
    assert captured.out == "task 0\ntask 1\ntask 2\n"
    assert captured.err == "task on stderr\n"


def test_a_tasks_stdout_reads_as_the_stream_it_stands_for(
    ex: unirun.ProcessExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    # What code reads of sys.stdout (a TextIOWrapper) in a task, and what it
    # does with it (reconfigure; its own wrapper around the buffer), works
    # there as in a plain process.
    ours = ex.submit(stream_facts, "through the buffer").result(timeout=60)
    assert capsys.readouterr().out == "through the buffer\n"
    read_end, write_end = os.pipe()  # what stdout is, run with its output piped
    with open(read_end, "rb") as reader, open(write_end, "w") as piped:
        with contextlib.redirect_stdout(piped):
            here = stream_facts("here")
        assert piped.name == write_end  # a file opened from a descriptor
        here["name"] = "<stdout>"
        here["buffer"] = ("<stdout>", "wb")
        piped.flush()
        assert reader.read1() == b"here\n"
    assert ours == here


def test_prints_follow_redirect_stdout(ex: unirun.ProcessExecutor) -> None:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        ex.submit(print_lines, "redirected", 2).result(timeout=60)
    assert buffer.getvalue() == "redirected 0\nredirected 1\n"


def test_a_character_split_between_buffer_writes_arrives_whole(
    ex: unirun.ProcessExecutor,
) -> None:
    # Each write was decoded alone: a split character became U+FFFD.
    from _tasks import write_bytes_in_pieces

    text = "naïve café, 日本語 ✓ 🎉\n" * 3
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        ex.submit(write_bytes_in_pieces, text, 7).result(timeout=60)
    assert buffer.getvalue() == text


def test_lines_reach_a_stdout_that_cannot_flush(
    ex: unirun.ProcessExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    # A write-only stand-in (as some GUIs set): each line also logged an error.
    class WriteOnly:
        def __init__(self) -> None:
            self.parts: list[str] = []

        def write(self, text: str) -> int:
            self.parts.append(text)
            return len(text)

    out = WriteOnly()
    with contextlib.redirect_stdout(out):  # type: ignore[type-var]  # write-only
        ex.submit(print_lines, "plain", 2).result(timeout=60)
    assert "".join(out.parts) == "plain 0\nplain 1\n"
    assert "could not relay" not in caplog.text


def test_lines_of_concurrent_tasks_never_mix(
    ex: unirun.ProcessExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    prefixes = [f"{letter * 300}" for letter in "abcd"]
    futures = [ex.submit(print_lines, prefix, 50) for prefix in prefixes]
    assert [f.result(timeout=60) for f in futures] == [50] * 4
    lines = capsys.readouterr().out.splitlines()
    expected = {f"{prefix} {n}" for prefix in prefixes for n in range(50)}
    assert sorted(lines) == sorted(expected)
    for prefix in prefixes:  # in order within each task
        mine = [line for line in lines if line.startswith(prefix)]
        assert mine == [f"{prefix} {n}" for n in range(50)]


def test_log_records_reach_the_callers_handlers(
    ex: unirun.ProcessExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.worker")
    with unirun.ProcessExecutor(max_workers=1) as fresh:  # started after set_level
        pid = fresh.submit(log_message, "app.worker", logging.INFO, "hello").result(
            timeout=60
        )
    (record,) = [r for r in caplog.records if r.name == "app.worker"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == "hello"
    assert record.process == pid


def test_crash_mid_print_loses_at_most_the_partial_line(
    ex: unirun.ProcessExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(unirun.WorkerCrashedError):
        ex.submit(print_partial_then_die, "dying").result(timeout=60)
    assert capsys.readouterr().out == "dying whole\n"


class _BlockingStdout(io.StringIO):
    """A stdout whose writes wait until the test lets them go."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.writing = threading.Event()

    def write(self, text: str) -> int:
        self.writing.set()
        assert self.release.wait(60)
        return super().write(text)


def test_a_flood_of_output_blocks_no_other_task(
    ex: unirun.ProcessExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _BlockingStdout()
    monkeypatch.setattr("sys.stdout", slow)
    printing = ex.submit(print_lines, "flood", 1000)
    assert slow.writing.wait(60)  # the relay is stuck writing its output
    # Another task's result comes back all the same.
    assert ex.submit(square, 9).result(timeout=60) == 81
    assert not printing.done()  # its own result waits for its output
    slow.release.set()
    assert printing.result(timeout=60) == 1000
    assert slow.getvalue().count("\n") == 1000


def test_forwarding_can_be_turned_off(capfd: pytest.CaptureFixture[str]) -> None:
    with unirun.ProcessExecutor(max_workers=1, forward_output=False) as ex:
        ex.submit(print_lines, "direct", 1).result(timeout=60)
    # Written straight to the descriptors the caller has now, as a stdlib
    # worker writes to the ones it inherited.
    captured = capfd.readouterr()
    assert captured.out == "direct 0\n"
    assert captured.err == "direct on stderr\n"
