"""Issue 15, progress: the ``progress=`` argument, and the counting sink on its own.

Which values ``progress=`` takes, and how a :class:`~unirun._progress.Progress`
counts chunk items exactly once whoever counts first; tqdm and rich are imported
only when a bar is asked for.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import unirun
from _progress_helpers import (
    FakeBar,
    Recorder,
    the_bar,
)
from _tasks import record_start, square
from unirun._call import ChunkResult
from unirun._progress import Progress, _Hook, make_progress, map_chunk

if TYPE_CHECKING:
    from collections.abc import Iterator

    from unirun._base import BaseExecutor

ROOT = Path(__file__).resolve().parent.parent

# -- the argument ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["yes", 3, 1.5, object()])
def test_progress_rejects_other_values(bad: object) -> None:
    with pytest.raises(TypeError, match="progress must be True, False, None"):
        make_progress(bad)  # type: ignore[arg-type]  # bad input on purpose
    with pytest.raises(TypeError, match="progress must be"):
        unirun.as_completed([], progress=bad)  # type: ignore[arg-type]  # on purpose


def test_progress_partial_of_a_class_is_a_bar(bar_class: type[FakeBar]) -> None:
    # A partial passes options to the bar; it is not a (done, total) hook.
    futures = [_finished(1), _finished(2)]
    factory = functools.partial(bar_class)
    assert len(list(unirun.as_completed(futures, progress=factory))) == 2
    bar = the_bar(bar_class)
    assert (bar.total, bar.updates, bar.closes) == (2, [1, 1], 1)


def test_progress_false_and_none_mean_none() -> None:
    assert make_progress(None) is None
    assert make_progress(False) is None


def test_map_progress_bad_value_fails_fast(executor: BaseExecutor) -> None:
    with pytest.raises(TypeError, match="progress must be"):
        executor.map(square, [1], progress="yes")  # type: ignore[call-overload]  # on purpose
    with pytest.raises(TypeError, match="progress must be"):
        executor.gather(progress=2)  # type: ignore[call-overload]  # on purpose


@pytest.mark.parametrize("chunksize", [1, None])
def test_a_map_whose_progress_hook_fails_to_start_submits_nothing(
    executor: BaseExecutor, tmp_path: Path, chunksize: int | None
) -> None:
    def hook(done: int, total: int | None) -> None:
        raise LookupError("no display here")

    marks = [str(tmp_path / str(n)) for n in range(5)]
    with pytest.raises(LookupError, match="no display here"):
        executor.map(record_start, marks, range(5), chunksize=chunksize, progress=hook)
    executor.shutdown(wait=True)
    assert not any(Path(mark).exists() for mark in marks)


# -- the sink on its own --------------------------------------------------------------


def _finished(value: object) -> cf.Future[Any]:
    future: cf.Future[Any] = cf.Future()
    future.set_result(value)
    return future


@settings(deadline=None, max_examples=60)
@given(
    sizes=st.lists(st.integers(0, 6), max_size=12),
    consumer_first=st.lists(st.booleans(), min_size=12, max_size=12),
    start_after=st.integers(0, 12),
)
def test_progress_counts_every_chunk_item_once_whoever_counts_first(
    sizes: list[int], consumer_first: list[bool], start_after: int
) -> None:
    # Model: each chunk is counted by its done callback and by the consumer, in
    # either order; the hook sees 0..total once each, whenever start() comes.
    recorder = Recorder()
    progress = Progress(_Hook(recorder))
    futures = [_finished(ChunkResult(list(range(n)), None)) for n in sizes]
    for index, future in enumerate(futures):
        if index == start_after:
            progress.start(sum(sizes))
        first, second = (
            (progress.arrived, progress.track)
            if consumer_first[index]
            else (progress.track, progress.arrived)
        )
        first(future, map_chunk)
        second(future, map_chunk)
    progress.start(sum(sizes))
    progress.close()
    progress.update(1)
    assert recorder.counts == list(range(sum(sizes) + 1))


def test_progress_serialises_updates_from_many_threads() -> None:
    recorder = Recorder()
    progress = Progress(_Hook(recorder))
    progress.start(8 * 500)
    barrier = threading.Barrier(8)

    def count() -> None:
        barrier.wait()
        for _ in range(500):
            progress.update(1)

    threads = [threading.Thread(target=count) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.close()
    assert recorder.counts == list(range(8 * 500 + 1))


def test_progress_hook_error_closes_and_propagates() -> None:
    calls: list[int] = []

    def hook(done: int, total: int | None) -> None:
        calls.append(done)
        if done == 2:
            raise RuntimeError("hook failed")

    progress = Progress(_Hook(hook))
    progress.start(5)
    progress.update(1)
    with pytest.raises(RuntimeError, match="hook failed"):
        progress.update(1)
    assert progress.closed
    progress.update(1)
    assert calls == [0, 1, 2]


# -- what progress=True draws, and what it imports ------------------------------------


def _block(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_plain_counter_on_stderr(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _block(monkeypatch, "tqdm", "tqdm.auto", "rich", "rich.progress")
    with unirun.ThreadExecutor(max_workers=2) as executor:
        assert sum(executor.map(square, range(5), progress=True)) == 30
        items = (x for x in range(3))
        assert sum(executor.map(square, items, buffersize=1, progress=True)) == 5
    err = capsys.readouterr().err
    first, second = err.split("\n")[:2]
    assert first.startswith("\r0/5   0% ")
    assert first.split("\r")[-1].startswith("5/5 100% ")
    assert first.rstrip().endswith("/s")
    assert second.startswith("\r0 ")
    assert second.split("\r")[-1].startswith("3 ")
    assert err.endswith("\n")
    assert err.count("\n") == 2


@pytest.fixture
def tqdm_auto() -> Iterator[Any]:
    """``tqdm.auto.tqdm``; the monitor thread its first bar starts is stopped after."""
    auto = pytest.importorskip("tqdm.auto")
    yield auto.tqdm
    # tqdm keeps one monitor thread for the life of the process; not ours to keep.
    monitor = auto.tqdm.monitor
    if monitor is not None:
        monitor.exit()
        auto.tqdm.monitor = None


def test_progress_true_uses_tqdm(
    capsys: pytest.CaptureFixture[str], tqdm_auto: Any
) -> None:
    with unirun.ThreadExecutor(max_workers=2) as executor:
        assert sum(executor.map(square, range(7), progress=True)) == 91
    assert "7/7" in capsys.readouterr().err


def test_progress_true_uses_rich_without_tqdm(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("rich")
    _block(monkeypatch, "tqdm", "tqdm.auto")
    with unirun.ThreadExecutor(max_workers=2) as executor:
        futures = [executor.submit(square, i) for i in range(6)]
        assert len(list(unirun.as_completed(futures, progress=True))) == 6
    err = capsys.readouterr().err
    assert "6/6" in err
    assert "100%" in err


_IMPORTS_SCRIPT = textwrap.dedent(
    """
    import sys
    import unirun

    def square(x):
        return x * x

    class Bar:
        def __init__(self, *, total):
            pass
        def update(self, n):
            pass
        def close(self):
            pass

    if __name__ == "__main__":
        with unirun.ThreadExecutor() as ex:
            list(ex.map(square, range(5)))
            list(ex.map(square, range(5), progress=None))
            list(ex.map(square, range(5), progress=lambda done, total: None))
            list(ex.map(square, range(5), progress=Bar))
            ex.gather(ex.submit(square, 2), progress=Bar).result()
            list(unirun.as_completed([ex.submit(square, 1)], progress=Bar))
            print("before", "tqdm" in sys.modules, "rich" in sys.modules)
            list(ex.map(square, range(5), progress=True))
            print("after", "tqdm" in sys.modules, "rich" in sys.modules)
    """
)


def test_tqdm_and_rich_imported_only_when_asked(tmp_path: Path) -> None:
    script = tmp_path / "imports.py"
    script.write_text(_IMPORTS_SCRIPT)
    completed = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == "before False False"
    try:
        import tqdm  # noqa: F401
    except ImportError:
        pass
    else:
        assert lines[1] == "after True False"


# -- the benchmark --------------------------------------------------------------------


@pytest.mark.slow
def test_progress_benchmark_runs() -> None:
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "progress_bench.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    labels = {row.split("|")[1].strip() for row in rows[1:]}
    assert {"progress=None", "progress=callable", "progress=class"} <= labels
