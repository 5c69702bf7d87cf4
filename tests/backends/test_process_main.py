"""What a script hands a process pool and sets up in its workers, as on the stdlib.

Each program runs as a real script, once with ``ProcessPoolExecutor`` and once
with :class:`unirun.ProcessExecutor`, with every start method: what it prints
must be the same, and what the stdlib prints is checked too (so that a program
that went wrong on both does not pass).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from conftest import run_python_file

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="every start method, fork included"
)

#: The initializer's pattern of the stdlib's docs and of most code: it sets a
#: global of the script that tasks read; its arguments include an instance of a
#: class of the script and a multiprocessing queue. And a memoised function of
#: the script, called directly and by another function, which see one cache;
#: and a class attribute that tasks count in, sent again with each instance.
PROGRAM = textwrap.dedent(
    """
    import concurrent.futures as cf
    import functools
    import multiprocessing as mp
    import sys
    from dataclasses import dataclass

    import unirun

    SHARED = None


    @dataclass
    class Config:
        name: str


    def init(value, config, q):
        global SHARED, UNSET_AT_IMPORT
        SHARED = value
        UNSET_AT_IMPORT = config.name
        q.put(f"initialized with {config!r}")


    def task(x):
        return (SHARED, UNSET_AT_IMPORT, x)


    def config_type_is_shared(config):
        return type(config) is Config


    @functools.lru_cache(maxsize=None)
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)


    def cached_so_far():
        return fib.cache_info().currsize


    class Counter:
        calls = 0

        def __init__(self, step):
            self.step = step


    def count(counter):
        type(counter).calls += counter.step
        return type(counter).calls


    if __name__ == "__main__":
        impl, method = sys.argv[1:]
        pool = unirun.ProcessExecutor if impl == "unirun" else cf.ProcessPoolExecutor
        context = {} if method == "default" else {"mp_context": mp.get_context(method)}
        # A queue of a context whose locks any start method may share.
        q = mp.get_context("spawn" if method == "spawn" else "forkserver").Queue()
        args = ("set", Config("c"), q)
        with pool(1, initializer=init, initargs=args, **context) as ex:
            print(ex.submit(task, 1).result())
            print(ex.submit(config_type_is_shared, Config("d")).result())
            print(ex.submit(fib, 20).result(), ex.submit(cached_so_far).result())
            print([ex.submit(count, Counter(step)).result() for step in (1, 2, 3)])
            print(q.get(timeout=60))
    """
)

EXPECTED = [
    "('set', 'c', 1)",
    "True",
    "6765 21",
    "[1, 3, 6]",
    "initialized with Config(name='c')",
]


def _run(script: Path, *args: str) -> list[str]:
    return run_python_file(script, *args).stdout.splitlines()


@pytest.mark.parametrize("method", ["default", "forkserver", "spawn", "fork"])
def test_main_initializer_globals_arguments_and_cached_functions_as_the_stdlib(
    method: str, tmp_path: Path
) -> None:
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    assert _run(script, "stdlib", method) == EXPECTED
    assert _run(script, "unirun", method) == EXPECTED


#: Logging set up in the worker by the initializer, the caller having set up
#: none: with ``basicConfig``, or the logging cookbook's queue to the caller.
LOGGING = textwrap.dedent(
    """
    import concurrent.futures as cf
    import logging
    import logging.handlers
    import multiprocessing as mp
    import sys

    import unirun


    def basic():
        form = "WORKER %(levelname)s %(message)s"
        logging.basicConfig(level=logging.INFO, format=form)


    def to_queue(q):
        logging.getLogger().addHandler(logging.handlers.QueueHandler(q))
        logging.getLogger().setLevel(logging.INFO)


    def work():
        logging.getLogger("app").info("info")
        logging.getLogger("app").warning("warning")


    if __name__ == "__main__":
        impl, how = sys.argv[1:]
        pool = unirun.ProcessExecutor if impl == "unirun" else cf.ProcessPoolExecutor
        if how == "basic":
            with pool(1, initializer=basic) as ex:
                ex.submit(work).result()
        elif how == "app handler":  # the caller set up its app's logger only
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(logging.Formatter("APP %(levelname)s %(message)s"))
            logging.getLogger("app").addHandler(handler)
            with pool(1, initializer=basic) as ex:
                ex.submit(work).result()
        else:
            q = mp.get_context("forkserver").Queue()
            handler = logging.StreamHandler(sys.stdout)
            form = "LISTENER %(levelname)s %(message)s"
            handler.setFormatter(logging.Formatter(form))
            listener = logging.handlers.QueueListener(q, handler)
            listener.start()
            with pool(1, initializer=to_queue, initargs=(q,)) as ex:
                ex.submit(work).result()
            listener.stop()
    """
)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("basic", ["WORKER INFO info", "WORKER WARNING warning"]),
        (
            "app handler",
            [
                "APP INFO info",
                "APP WARNING warning",
                "WORKER INFO info",
                "WORKER WARNING warning",
            ],
        ),
        ("queue", ["LISTENER INFO info", "LISTENER WARNING warning"]),
    ],
)
def test_logging_set_up_in_the_worker_works_as_in_a_stdlib_worker(
    how: str, expected: list[str], tmp_path: Path
) -> None:
    script = tmp_path / "program.py"
    script.write_text(LOGGING)
    for impl in ("stdlib", "unirun"):
        done = run_python_file(script, impl, how)
        lines = done.stdout.splitlines() + done.stderr.splitlines()
        # Sorted: a worker's own handler and the caller's write apart.
        assert sorted(
            line for line in lines if "info" in line or "warning" in line
        ) == (expected), (impl, done.stderr)


TTY = textwrap.dedent(
    """
    import concurrent.futures as cf
    import sys

    import unirun


    def ttys():
        return sys.stdout.isatty(), sys.stderr.isatty()


    if __name__ == "__main__":
        ours = sys.argv[1] == "unirun"
        with (unirun.ProcessExecutor if ours else cf.ProcessPoolExecutor)(1) as ex:
            print(sys.stdout.isatty(), ex.submit(ttys).result(), file=sys.__stderr__)
    """
)


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_a_worker_s_output_is_a_terminal_where_the_caller_s_is(
    terminal: bool, tmp_path: Path
) -> None:
    # Code that colours its output (rich, click, logging's colour handlers)
    # asks sys.stdout.isatty(): in a task, as in the caller, as in a stdlib worker.
    import os
    import pty

    script = tmp_path / "program.py"
    script.write_text(TTY)
    for impl in ("stdlib", "unirun"):
        primary, secondary = pty.openpty() if terminal else os.pipe()
        try:
            done = subprocess.run(
                [sys.executable, str(script), impl],
                stdout=secondary,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            os.close(primary)
            os.close(secondary)
        assert done.returncode == 0, done.stderr
        assert done.stderr.split("\n")[-2] == f"{terminal} ({terminal}, False)", impl


#: With ``mp_context`` a fork context, workers are forks of the script: what
#: they inherit (a shared counter, locks, a connection) is used as it is, as the
#: multiprocessing docs show, rather than pickled (which these refuse).
INHERITED = textwrap.dedent(
    """
    import concurrent.futures as cf
    import multiprocessing as mp
    import sqlite3
    import sys
    import threading

    import unirun

    COUNTER = mp.Value("i", 0)
    MP_LOCK = mp.Lock()
    T_LOCK = threading.Lock()
    DB = sqlite3.connect(":memory:")


    def bump(x):
        with COUNTER.get_lock():
            COUNTER.value += 1
        with MP_LOCK, T_LOCK:
            return DB.execute("select ?", (x,)).fetchone()[0]


    if __name__ == "__main__":
        ours = sys.argv[1] == "unirun"
        pool = unirun.ProcessExecutor if ours else cf.ProcessPoolExecutor
        with pool(2, mp_context=mp.get_context("fork")) as ex:
            print(list(ex.map(bump, range(4))))
            print(ex.submit(lambda: 6 * 7).result() if ours else 42)
        print(COUNTER.value)
    """
)


def test_a_fork_context_s_workers_use_what_they_inherit(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(INHERITED)
    for impl in ("stdlib", "unirun"):
        assert _run(script, impl) == ["[0, 1, 2, 3]", "42", "4"], impl


def test_an_lru_cache_function_of_a_module_still_travels_by_name() -> None:
    import fnmatch
    import pickle

    from unirun._transfer import dumps

    # The same object back, its cache and its module's state with it.
    compiled = fnmatch._compile_pattern  # type: ignore[attr-defined]
    assert pickle.loads(dumps(compiled)) is compiled


def _main_namespace_with(source: str) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "__main__"}
    exec(source, namespace)
    return namespace


def test_an_lru_cache_function_edited_in_a_notebook_is_rebuilt() -> None:
    import types

    from unirun._rebuild import _cached

    # The worker's __main__, where the functions sent (and their caches) land.
    worker = _main_namespace_with("def scale(x, k=2):\n    return x * k\n")
    scale = worker["scale"]
    assert isinstance(scale, types.FunctionType)
    old = _cached(scale, "scale", None, False)
    assert worker["scale"] is old
    assert _cached(scale, "scale", None, False) is old  # sent again: kept
    # The cell run again with another default: the same code, a new function.
    edited = types.FunctionType(scale.__code__, worker, "scale", (3,))
    new = _cached(edited, "scale", None, False)
    assert new is not old
    assert worker["scale"] is new
    assert new(1) == 3


def test_an_lru_cache_kept_under_another_name_leaves_its_function_alone() -> None:
    from unirun._rebuild import cached_reduce as _cached_reduce

    namespace = _main_namespace_with(
        "import functools, random\n"
        "def roll():\n    return random.random()\n"
        "cached_roll = functools.lru_cache(None)(roll)\n"
    )
    reduced = _cached_reduce(namespace["cached_roll"])
    assert reduced is not None
    _, (wrapped, name, _, _) = reduced
    assert wrapped is namespace["roll"]
    assert name is None  # not bound to "roll" in the worker's __main__


def test_a_task_runs_functions_of_the_script_on_a_nested_process_executor(
    tmp_path: Path,
) -> None:
    # docs/process-backend.md's advice for nested pools: it sends them by value.
    script = tmp_path / "program.py"
    script.write_text(
        "import unirun\n"
        "def square(x):\n"
        "    return x * x\n"
        "def outer(n):\n"
        "    with unirun.ProcessExecutor(2) as inner:\n"
        "        return list(inner.map(square, range(n)))\n"
        "if __name__ == '__main__':\n"
        "    with unirun.ProcessExecutor(1) as ex:\n"
        "        print(ex.submit(outer, 4).result(timeout=60))\n"
    )
    assert _run(script) == ["[0, 1, 4, 9]"]
