"""Workers of an embedded Dask cluster: their output and native threads (#15, #13).

What a task prints and logs reaches this process as it does from process
workers, and native thread pools get each worker's share of the CPUs. A joined
cluster is left as it is.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import textwrap
import types
from typing import TYPE_CHECKING

import cloudpickle
import dask.config
import pytest

import unirun
from conftest import HAS_DASK, dask_session
from unirun._backends._dask.remote import HEARTBEAT_FAILED, QuietClose
from unirun._backends._worker import THREAD_VARIABLES
from unirun._cpu import usable_cpus

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(not HAS_DASK, reason="needs unirun[dask]")

# The workers of the session's cluster cannot import this module: its own task
# functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def talk(tag: str) -> int:
    """Log on two loggers, print to both streams, end without a newline."""
    logging.getLogger("app.quiet").info("%s: dropped by the level", tag)
    logging.getLogger("app.task").info("%s: %d items", tag, 3)
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logging.getLogger("app.task").exception("%s: failed", tag)
    print(f"{tag} line 1")
    print(f"{tag} on stderr", file=sys.stderr)
    print(f"{tag} line 2", end="")
    return os.getpid()


def worker_streams() -> tuple[str, list[str]]:
    """The type of the worker's ``sys.stdout`` and of its root handlers."""
    return (
        type(sys.stdout).__name__,
        [type(handler).__name__ for handler in logging.getLogger().handlers],
    )


def shout(text: str) -> None:
    print(text, flush=True)


def thread_variables() -> dict[str, str | None]:
    """The native thread variables of the worker."""
    return {name: os.environ.get(name) for name in THREAD_VARIABLES}


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the thread variables set here; each restored after the test."""
    for name in THREAD_VARIABLES:
        monkeypatch.setenv(name, "")  # so that the value before is restored
        monkeypatch.delenv(name)


# -- output ---------------------------------------------------------------------------


def test_log_records_reach_the_callers_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("app.quiet").setLevel(logging.WARNING)
    try:
        with unirun.DaskExecutor(max_workers=1) as ex:  # levels taken at the start
            pid = ex.submit(talk, "logged").result(60)
    finally:
        logging.getLogger("app.quiet").setLevel(logging.NOTSET)
    assert pid != os.getpid()
    records = [r for r in caplog.records if r.name.startswith("app.")]
    # In order, before the result; the level set here held in the worker too.
    assert [(r.name, r.levelno, r.getMessage()) for r in records] == [
        ("app.task", logging.INFO, "logged: 3 items"),
        ("app.task", logging.ERROR, "logged: failed"),
    ]
    assert {r.process for r in records} == {pid}
    assert records[1].exc_text is not None
    assert "ZeroDivisionError" in records[1].exc_text


def test_prints_reach_the_current_streams(capsys: pytest.CaptureFixture[str]) -> None:
    with unirun.DaskExecutor(max_workers=1) as ex:
        ex.submit(talk, "captured").result(60)
        captured = capsys.readouterr()
        assert captured.out == "captured line 1\ncaptured line 2"
        assert captured.err == "captured on stderr\n"
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            ex.submit(talk, "redirected").result(60)
        assert buffer.getvalue() == "redirected line 1\nredirected line 2"
        assert ex.submit(worker_streams).result(60) == (
            "_ForwardedStream",
            ["_ForwardHandler"],
        )


def heartbeat_filters() -> list[str]:
    """The filters on the worker's ``distributed.worker`` logger."""
    return [type(f).__name__ for f in logging.getLogger("distributed.worker").filters]


class FakeWorker:
    """As much of a worker as QuietClose reads."""

    def __init__(self, status: str) -> None:
        self.status = types.SimpleNamespace(name=status)


@pytest.mark.parametrize(
    ("status", "kept"),
    [("running", True), ("closing", False), ("closing_gracefully", False)],
)
def test_a_heartbeat_cut_short_by_the_workers_close_is_not_logged(
    status: str, kept: bool
) -> None:
    # A worker closing as the executor shuts its cluster down logged the
    # heartbeat its own close cut short as an error, with a traceback.
    worker = FakeWorker(status)
    quiet = QuietClose(worker)  # type: ignore[arg-type]  # a stand-in

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord(
            "distributed.worker", logging.ERROR, "", 0, msg, (), None
        )

    assert quiet.filter(record(HEARTBEAT_FAILED + ".")) is kept
    assert quiet.filter(record("Heartbeat to scheduler failed")) is True


def test_the_workers_of_an_embedded_cluster_keep_that_filter() -> None:
    with unirun.DaskExecutor(max_workers=1) as ex:
        assert "QuietClose" in ex.submit(heartbeat_filters).result(60)


def test_forward_output_false_leaves_the_workers_streams(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with unirun.DaskExecutor(max_workers=1, forward_output=False) as ex:
        stream, handlers = ex.submit(worker_streams).result(60)
        assert stream == "TextIOWrapper"
        assert "_ForwardHandler" not in handlers
        # The worker writes to the descriptor it inherited.
        ex.submit(shout, "straight to the descriptor").result(60)
        assert "straight to the descriptor\n" in capfd.readouterr().out


def test_workers_in_this_process_print_here_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = {"processes": False, "host": None}  # in-process transport
    with unirun.DaskExecutor(max_workers=1, cluster_options=options) as ex:
        ex.submit(shout, "thread worker").result(60)
        assert ex.submit(worker_streams).result(60)[0] != "_ForwardedStream"
    assert capsys.readouterr().out == "thread worker\n"


def test_a_joined_cluster_is_left_as_it_is() -> None:
    client = dask_session().client
    with unirun.DaskExecutor(client=client) as ex:
        stream, handlers = ex.submit(worker_streams).result(60)
    assert stream != "_ForwardedStream"
    assert "_ForwardHandler" not in handlers
    with pytest.raises(ValueError, match="embedded cluster only"):
        unirun.DaskExecutor(client=client, native_threads=2)
    unirun.DaskExecutor(client=client, native_threads=None).shutdown()


# -- native threads -------------------------------------------------------------------


@pytest.mark.usefixtures("clean_environ")
def test_native_threads_default_to_each_workers_share() -> None:
    with unirun.DaskExecutor(max_workers=1) as ex:
        assert os.environ.get("BLIS_NUM_THREADS") is None  # this process: as it was
        seen = ex.submit(thread_variables).result(60)
    share = str(max(1, usable_cpus()))
    assert seen == dict.fromkeys(THREAD_VARIABLES, share)


@pytest.mark.usefixtures("clean_environ")
def test_native_threads_count_leaves_the_callers_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    options = {"env": {"MKL_NUM_THREADS": "7"}}
    with unirun.DaskExecutor(
        max_workers=1, native_threads=3, cluster_options=options
    ) as ex:
        seen = ex.submit(thread_variables).result(60)
        assert thread_variables() == {
            **dict.fromkeys(THREAD_VARIABLES),
            "OMP_NUM_THREADS": "5",
        }
    assert seen == {
        **dict.fromkeys(THREAD_VARIABLES, "3"),
        "OMP_NUM_THREADS": "5",
        "MKL_NUM_THREADS": "7",
    }


@pytest.mark.usefixtures("clean_environ")
def test_native_threads_none_leaves_them_to_dask() -> None:
    setting = dask.config.get("distributed.nanny.pre-spawn-environ")
    with unirun.DaskExecutor(max_workers=1, native_threads=None) as ex:
        seen = ex.submit(thread_variables).result(60)
        # Dask wrote its values here before spawning; this process has its own back.
        assert thread_variables() == dict.fromkeys(THREAD_VARIABLES)
    assert seen == {
        name: None if setting.get(name) is None else str(setting[name])
        for name in THREAD_VARIABLES
    }


def test_native_threads_refuses_what_is_not_a_count() -> None:
    with pytest.raises(TypeError, match="native_threads must be an integer"):
        unirun.DaskExecutor(native_threads=1.5)  # type: ignore[arg-type]  # bad on purpose
    with pytest.raises(ValueError, match="native_threads"):
        unirun.DaskExecutor(native_threads=0)


# -- a script, as users run it --------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import logging
    import os
    import sys

    import unirun

    # A worker imports this module again (Dask spawns it), before any task runs:
    # as numpy at the top of a script would, this reads the thread variables then.
    AT_IMPORT = os.environ.get("BLIS_NUM_THREADS")


    def work():
        logging.getLogger("app.script").info("working in %d", os.getpid())
        print("printed by the task")
        # This function travels by value, with this process's AT_IMPORT: read
        # the worker's own copy of the module.
        return os.getpid(), sys.modules["__main__"].AT_IMPORT


    if __name__ == "__main__":
        logging.basicConfig(
            level=logging.INFO, format="%(name)s|%(process)d|%(message)s"
        )
        with unirun.DaskExecutor(max_workers=2) as ex:
            pid, at_import = ex.submit(work).result(60)
            print("after start, here:", os.environ.get("BLIS_NUM_THREADS"))
        print("worker", pid, at_import)
    """
)


def test_a_script_sees_its_workers_output_and_capped_threads(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["printed by the task", "after start, here: None"]
    _, pid, at_import = lines[2].split()
    assert at_import == str(max(1, usable_cpus() // 2))
    # Formatted by this process's handler, with the worker's pid.
    assert f"app.script|{pid}|working in {pid}" in done.stderr.splitlines()
    # The embedded cluster's own scheduler and nannies, here, stay quiet, as
    # LocalCluster's silence_logs means, though the root logger is at INFO.
    dask_lines = [x for x in done.stderr.splitlines() if x.startswith("distributed")]
    assert dask_lines == []


class _Cluster:
    """Stands for an embedded cluster in the logging hold's bookkeeping."""


def test_the_hold_on_dasks_records_ends_with_the_last_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from unirun._backends._dask.cluster import _HUSH

    logger = logging.getLogger("distributed")
    monkeypatch.setattr(logger, "handlers", [])  # the root logger's handlers serve it
    monkeypatch.setattr(logger, "level", logging.INFO)
    first, second = _Cluster(), _Cluster()
    assert _HUSH.acquire(logging.WARNING)
    _HUSH.adopt(first)
    assert _HUSH.acquire("error")
    _HUSH.adopt(second)
    assert logger.level == logging.ERROR
    _HUSH.release(first)
    _HUSH.release(first)  # a second close of the same cluster changes nothing
    assert logger.level == logging.ERROR
    _HUSH.release(second)
    assert logger.level == logging.INFO
    # silence_logs=False asks for nothing; Dask's own handler needs no help.
    assert not _HUSH.acquire(False)
    monkeypatch.setattr(logger, "handlers", [logging.StreamHandler()])
    assert not _HUSH.acquire(logging.WARNING)
    assert logger.level == logging.INFO


def test_a_level_set_while_held_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from unirun._backends._dask.cluster import _HUSH

    logger = logging.getLogger("distributed")
    monkeypatch.setattr(logger, "handlers", [])
    monkeypatch.setattr(logger, "level", logging.INFO)
    cluster = _Cluster()
    assert _HUSH.acquire(logging.WARNING)
    _HUSH.adopt(cluster)
    logger.setLevel(logging.DEBUG)  # the application wants Dask's records after all
    _HUSH.release(cluster)
    assert logger.level == logging.DEBUG
