"""Run CPython's own ``test_concurrent_futures`` against unirun's executors.

``concurrent.futures.ThreadPoolExecutor`` and ``ProcessPoolExecutor`` are
swapped for :class:`unirun.ThreadExecutor` and :class:`unirun.ProcessExecutor`
before CPython's test modules are imported, so every test of the suite runs on
ours; the futures the suite makes by hand are :class:`unirun.Future`. Where
the interpreter ships its ``test`` package (a package from 3.12)::

    python tests/cpython_futures_tests.py                 # every start method
    python tests/cpython_futures_tests.py --part threads  # futures, thread pools
    python tests/cpython_futures_tests.py --part forkserver

It prints what failed and exits 1 if anything failed that :data:`DIFFERENCES`
does not list, or if a listed difference no longer shows. ``--json FILE`` also
writes the outcome; tests/test_cpython_futures.py runs the two parts so.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import importlib
import json
import sys
import unittest
from typing import Any

import unirun

#: The suite's modules, in the order they run.
MODULES = (
    "test_future",
    "test_init",
    "test_thread_pool",
    "test_as_completed",
    "test_wait",
    "test_shutdown",
    "test_deadlock",
    "test_process_pool",
)

#: Tests that fail on unirun on purpose, by name (process pools, any start
#: method), with why; docs/semantics.md and docs/process-backend.md say the same.
DIFFERENCES = {
    "test_killed_child": "a worker that dies fails only its task; the pool goes on",
    "test_max_tasks_per_child_defaults_to_spawn_context": (
        "max_tasks_per_child keeps unirun's fork server, not spawn"
    ),
    "test_saturation": "workers start on demand, one per task waiting",
    "test_processes_terminate": (
        "a call that cannot be pickled (a multiprocessing Semaphore) fails at "
        "submit, before any worker starts"
    ),
    "test_python_finalization_error": (
        "it makes the pool's second thread fail to start; the pool starts one"
    ),
}

#: Tests that run the stdlib's classes, by name, in an isolated child
#: interpreter (``-I``): they test the stdlib, not unirun, so they are skipped.
#: tests/backends/test_scripts.py runs the same scripts on unirun.
STDLIB_CHILDREN = (
    "test_interpreter_shutdown",
    "test_submit_after_interpreter_shutdown",
    "test_hang_gh83386",
)

#: What each ``--part`` runs: the pool test classes whose names start so
#: (``None``: every one). The tests that use no pool (futures, ``wait`` and
#: ``as_completed`` on plain futures) run with the thread pools.
PARTS = {
    "all": None,
    "threads": "ThreadPool",
    "forkserver": "ProcessPoolForkserver",
}


def _swap() -> None:
    # Ours stand in for the stdlib's classes: that is what is tested.
    cf.ThreadPoolExecutor = unirun.ThreadExecutor  # type: ignore[misc]
    cf.ProcessPoolExecutor = unirun.ProcessExecutor  # type: ignore[misc]
    # And for the futures the suite makes itself (test_future's, and those of
    # its create_future() helper): FutureTests run on unirun.Future.
    for name in ("util", "test_future"):
        module = importlib.import_module(f"test.test_concurrent_futures.{name}")
        setattr(module, "Future", unirun.Future)  # noqa: B010  # not typed


def _cases(suite: unittest.TestSuite) -> list[unittest.TestCase]:
    found: list[unittest.TestCase] = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            found += _cases(item)
        else:
            found.append(item)
    return found


def _kept(case: unittest.TestCase, part: str) -> bool:
    name, pools = type(case).__name__, PARTS[part]
    if pools is None:
        return True
    if not name.startswith(("ThreadPool", "ProcessPool")):
        return part == "threads"
    return name.startswith(pools)


def load(part: str = "all") -> unittest.TestSuite:
    """CPython's suite, on unirun's executors (one of :data:`PARTS`)."""
    _swap()
    suite = unittest.TestSuite()
    skip = unittest.skip("runs the stdlib's own class in an isolated child")
    for module in MODULES:
        loaded = unittest.defaultTestLoader.loadTestsFromName(
            f"test.test_concurrent_futures.{module}"
        )
        for case in _cases(loaded):
            name = case._testMethodName
            if name in STDLIB_CHILDREN:
                setattr(type(case), name, skip(getattr(type(case), name)))
            if _kept(case, part):
                suite.addTest(case)
    return suite


def outcome(result: unittest.TestResult, part: str) -> dict[str, Any]:
    """What ran and what failed, and how that compares with :data:`DIFFERENCES`."""
    failed = sorted(case.id() for case, _ in result.failures + result.errors)
    names = {test_id.rsplit(".", 1)[-1] for test_id in failed}
    processes = part != "threads"
    return {
        "ran": result.testsRun,
        "skipped": len(result.skipped),
        "failed": failed,
        "unexpected": [t for t in failed if t.rsplit(".", 1)[-1] not in DIFFERENCES],
        "expected_but_passed": sorted(set(DIFFERENCES) - names) if processes else [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=sorted(PARTS), default="all")
    parser.add_argument("--json", help="also write the outcome to this file")
    args = parser.parse_args(argv)
    try:
        suite = load(args.part)
    except ImportError as error:
        print(f"CPython's test package is not installed here: {error}")
        return 2
    result = unittest.TextTestRunner(verbosity=1).run(suite)
    found = outcome(result, args.part)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(found, file, indent=1)
    for test_id in found["failed"]:
        why = DIFFERENCES.get(test_id.rsplit(".", 1)[-1], "NOT EXPECTED")
        print(f"{test_id}: {why}")
    for name in found["expected_but_passed"]:
        print(f"{name}: listed as a difference, but passed or did not run")
    return 1 if found["unexpected"] or found["expected_but_passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
