"""Programs shaped the way users write them, run as real child interpreters.

A script without a main guard, one read from stdin, ``python -c`` and a
notebook-like ``__main__`` without a file: the user's top level runs exactly
once, whatever the executor does with worker processes (issue 11).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from conftest import run_python_file

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="spawn re-imports the main module there"
)

#: A program without a main guard; its top level leaves a mark each time it runs.
PROGRAM = textwrap.dedent(
    """
    import os
    import unirun

    with open(os.environ["MARKER"], "a") as marker:
        marker.write("top level ran\\n")


    def work(x):
        return x * x


    kind = os.environ["KIND"]
    ex = unirun.executor(kind)
    # On auto, a process hint sends the calls to worker processes for sure.
    view = ex.options(backend="process") if kind == "auto" else ex
    with ex:
        print(sorted(view.submit(work, i).result() for i in range(4)))
        print(list(view.map(work, range(4))))
    """
)

#: Runs a program as a notebook does: in ``__main__``, which has no file, with
#: cells compiled under a pseudo file name.
NOTEBOOK = textwrap.dedent(
    """
    import code
    import sys

    import __main__

    source = open(sys.argv[1]).read()
    del __main__.__file__
    code.InteractiveInterpreter(vars(__main__)).runsource(
        source, "<ipython-input-1-0123456789ab>", "exec"
    )
    """
)


def run(args: list[str], tmp_path: Path, kind: str, **kwargs: object) -> str:
    marker = tmp_path / "marker"
    env = {**os.environ, "MARKER": str(marker), "KIND": kind}
    done = subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,  # type: ignore[call-overload]  # input=, as subprocess.run takes
    )
    assert done.returncode == 0, done.stderr
    assert marker.read_text().splitlines() == ["top level ran"], done.stderr
    return str(done.stdout)


def run_script(script: Path, text: str) -> subprocess.CompletedProcess[str]:
    """Write ``text`` to ``script``, run it, and check that it exited cleanly."""
    script.write_text(text)
    return run_python_file(script)


@pytest.mark.parametrize("kind", ["process", "auto"])
@pytest.mark.parametrize("shape", ["file", "stdin", "-c", "notebook"])
def test_unguarded_program_runs_once_gh11(
    kind: str, shape: str, tmp_path: Path
) -> None:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    if shape == "file":
        output = run([str(script)], tmp_path, kind)
    elif shape == "stdin":
        output = run(["-"], tmp_path, kind, input=PROGRAM)
    elif shape == "-c":
        output = run(["-c", PROGRAM], tmp_path, kind)
    else:
        runner = tmp_path / "notebook.py"
        runner.write_text(NOTEBOOK)
        output = run([str(runner), str(script)], tmp_path, kind)
    assert output.splitlines() == ["[0, 1, 4, 9]", "[0, 1, 4, 9]"]


GLOBALS = textwrap.dedent(
    """
    import unirun


    class Counted:
        pickles = 0

        def __reduce__(self):
            Counted.pickles += 1
            return (Counted, ())


    BIG = Counted()
    CACHE = {}


    def remember(x):
        assert isinstance(BIG, Counted)
        CACHE[x] = True
        return len(CACHE)


    def cache_size():
        return len(CACHE)


    with unirun.ProcessExecutor(max_workers=1) as ex:
        print([ex.submit(remember, i).result() for i in range(5)])
        print(list(ex.map(remember, range(5, 8))))
        print(ex.submit(cache_size).result())
        print(Counted.pickles)
    """
)


def test_main_function_and_its_globals_travel_once_gh11(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    done = run_script(script, GLOBALS)
    # The worker keeps one __main__ namespace: the cache fills up across calls
    # and another function sees it; the global was pickled once, not per call.
    assert done.stdout.splitlines() == ["[1, 2, 3, 4, 5]", "[6, 7, 8]", "8", "1"]


TRACEBACK = textwrap.dedent(
    """
    import unirun


    def boom(x):
        raise ValueError(x)


    with unirun.ProcessExecutor(max_workers=1) as ex:
        try:
            ex.submit(boom, 3).result()
        except ValueError as exc:
            print(exc.__cause__)
        try:
            ex.submit(lambda: 1 / 0).result()
        except ZeroDivisionError as exc:
            print(exc.__cause__)
    """
)


def test_remote_traceback_of_main_function_shows_its_source_gh11(
    tmp_path: Path,
) -> None:
    script = tmp_path / "program.py"
    done = run_script(script, TRACEBACK)
    assert f'File "{script}", line 6, in boom' in done.stdout
    assert "raise ValueError(x)" in done.stdout
    assert f'File "{script}", line 15, in <lambda>' in done.stdout
    assert "ex.submit(lambda: 1 / 0).result()" in done.stdout
    assert "<dynamic-code>" not in done.stdout


NEVER_SHUT_DOWN = textwrap.dedent(
    """
    import unirun


    async def double(x):
        return 2 * x


    ex = unirun.executor("coroutine")
    print(ex.submit(double, 21).result())
    # No shutdown(), no with: the program must still exit, as with the stdlib.
    """
)


def test_program_that_never_shuts_down_exits_gh12(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    done = run_script(script, NEVER_SHUT_DOWN)
    assert done.stdout == "42\n"


SHUTDOWN_FROM_TASK = textwrap.dedent(
    """
    import unirun


    def close(ex):
        ex.shutdown(wait=True)


    with unirun.CoroutineExecutor() as ex:
        try:
            ex.submit(close, ex).result()
        except RuntimeError as exc:
            print(type(exc).__name__)
    """
)


def test_shutdown_from_a_sync_coroutine_task_does_not_deadlock_gh12(
    tmp_path: Path,
) -> None:
    script = tmp_path / "program.py"
    done = run_script(script, SHUTDOWN_FROM_TASK)
    assert done.stdout == "RuntimeError\n"


#: A thread that submits once the interpreter's exit hooks have run, as the
#: stdlib's own test of submitting after interpreter shutdown does.
LATE_SUBMIT = textwrap.dedent(
    """
    import sys
    import threading

    exited = threading.Event()
    # Hooks run last registered first: this one runs after unirun's.
    threading._register_atexit(exited.set)

    import unirun


    async def coroutine():
        return 1


    def plain():
        return 1


    kind = sys.argv[1]
    task = coroutine if kind == "coroutine" else plain
    ex = unirun.executor(kind)
    assert ex.submit(task).result(timeout=60) == 1


    def late():
        exited.wait()
        try:
            ex.submit(task).result(timeout=30)
        except RuntimeError as exc:
            print("refused:", exc)
        except BaseException as exc:
            print("not refused:", repr(exc))
        else:
            print("accepted")


    threading.Thread(target=late).start()
    """
)


@pytest.mark.parametrize("kind", ["thread", "process", "coroutine", "auto"])
def test_a_submit_after_interpreter_exit_began_is_refused(
    tmp_path: Path, kind: str
) -> None:
    # A non-daemon thread still submitting while the interpreter exits gets
    # RuntimeError, as with the stdlib's executors, never a future whose task
    # will not run (the coroutine backend's loop has ended by then).
    script = tmp_path / "late.py"
    script.write_text(LATE_SUBMIT)
    done = run_python_file(script, kind)
    assert done.stdout.startswith("refused: cannot schedule new futures"), (
        done.stdout + done.stderr
    )


NO_TIME_LEFT = textwrap.dedent(
    """
    import os, threading
    import unirun


    def wait_on(event) -> int:
        event.wait()
        return 1


    def nap() -> int:
        return 2


    if __name__ == "__main__":
        px, other = unirun.ProcessExecutor(1), unirun.ProcessExecutor(1)
        gate = px.Event()
        first = px.submit(wait_on, gate)  # holds the one worker
        late = px.options(timeout=0).submit(nap)  # no time left when it starts
        followed = threading.Event()

        def follow_up(_: object) -> None:
            other.submit(nap).result(60)  # a callback that submits, as pipelines do
            followed.set()

        late.add_done_callback(follow_up)
        # As the first ends, its callback submits: the late task starts (and
        # fails) then, in that submit.
        first.add_done_callback(lambda _: px.submit(nap))
        gate.set()
        if not followed.wait(30):
            print("the follow-up never returned", flush=True)
            os._exit(3)
        print(type(late.exception()).__name__, first.result(), flush=True)
        px.shutdown()
        other.shutdown()
    """
)


def test_a_callback_of_a_task_with_no_time_left_may_submit(tmp_path: Path) -> None:
    # A task whose time-out had run out as it started was failed inside the
    # submit that found it a worker, holding the process executors' locks: its
    # done-callback's own submit to a process executor waited for them forever.
    done = run_script(tmp_path / "no_time_left.py", NO_TIME_LEFT)
    assert done.stdout == "TaskTimeoutError 1\n", done.stdout + done.stderr


#: CPython's test_concurrent_futures runs these three scripts with its own pools,
#: by name, in an isolated child (tests/cpython_futures_tests.py skips them):
#: here they run on unirun's, with what the stdlib's tests expect of them.
STDLIB_SCRIPTS = {
    # test_interpreter_shutdown: a running task finishes at exit.
    "exit": """
        t = {cls}(5)
        t.submit(sleep_and_print, 0.2, "apple")
        """,
    # test_hang_gh83386: shutdown(wait=False) does not hang the exit.
    "no wait": """
        t = {cls}(max_workers=3)
        t.submit(sleep_and_print, 0.2, "apple")
        t.shutdown(wait=False)
        """,
    # test_submit_after_interpreter_shutdown: an atexit hook cannot submit.
    "atexit": """
        import atexit

        @atexit.register
        def run_last():
            try:
                t.submit(id, None)
            except RuntimeError:
                print("runtime-error")
                raise

        t = {cls}(5)
        t.submit(id, 42).result()
        """,
}

STDLIB_SCRIPT_HEAD = """
import sys
import time

from unirun import {cls}


def sleep_and_print(t, msg):
    time.sleep(t)
    print(msg)
    sys.stdout.flush()


if __name__ == "__main__":
"""


@pytest.mark.parametrize("cls", ["ThreadExecutor", "ProcessExecutor"])
@pytest.mark.parametrize("script", list(STDLIB_SCRIPTS))
def test_the_stdlib_suites_exit_scripts_behave_as_on_its_pools(
    tmp_path: Path, cls: str, script: str
) -> None:
    body = textwrap.indent(textwrap.dedent(STDLIB_SCRIPTS[script]), "    ")
    text = STDLIB_SCRIPT_HEAD.format(cls=cls) + body.format(cls=cls)
    done = run_script(tmp_path / "script.py", text)
    if script == "atexit":
        # Errors in atexit hooks do not change the exit code: stderr says it.
        assert "RuntimeError: cannot schedule new futures" in done.stderr
        assert done.stdout.strip() == "runtime-error"
    else:
        assert done.stderr == ""
        assert done.stdout.strip() == "apple"
