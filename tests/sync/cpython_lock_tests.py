"""Run CPython's own ``Lib/test/lock_tests.py`` and the ``queue.Queue`` tests of
``Lib/test/test_queue.py`` against unirun's primitives.

By hand, where the interpreter ships its ``test`` package::

    python tests/sync/cpython_lock_tests.py thread    # in-process primitives
    python tests/sync/cpython_lock_tests.py process   # shared with processes

Not part of the pytest run: those tests time threads with ``sleep``. Skipped:
tests of reprs, weak references and the private ``_at_fork_reinit``, and the
Condition test that hands a ``threading.Lock`` in (a unirun Condition takes its
own executor's locks only). The queue tests are those every ``queue.Queue``
passes (``LifoQueue``, ``PriorityQueue`` and ``SimpleQueue`` have no unirun
counterpart).
"""

from __future__ import annotations

import queue
import sys
import types
import unittest
from typing import Any

import unirun

SKIPPED = (
    "test_repr",
    "test_locked_repr",
    "test_at_fork_reinit",
    "test_weakref_exists",
    "test_weakref_deleted",
)


def suite(ex: unirun.Executor) -> unittest.TestSuite:
    """CPython's lock tests, each made to test ``ex``'s primitives."""
    from test import lock_tests  # type: ignore[import-not-found]  # no stubs

    def condition(lock: Any = None) -> unirun.Condition:
        return ex.Condition(None if lock is None else ex.Lock())

    cases: list[tuple[Any, str, Any]] = [
        (lock_tests.LockTests, "locktype", ex.Lock),
        (lock_tests.RLockTests, "locktype", ex.RLock),
        (lock_tests.EventTests, "eventtype", ex.Event),
        (lock_tests.ConditionTests, "condtype", condition),
        (lock_tests.SemaphoreTests, "semtype", ex.Semaphore),
        (lock_tests.BoundedSemaphoreTests, "semtype", ex.BoundedSemaphore),
        (lock_tests.BarrierTests, "barriertype", ex.Barrier),
    ]
    skip = unittest.skip("a repr, a weak reference, a private method, a stdlib lock")
    loaded = unittest.TestSuite()
    for base, attribute, factory in cases:
        namespace: dict[str, Any] = {attribute: staticmethod(factory)}
        stdlib_lock = ("test_acquire",) if base is lock_tests.ConditionTests else ()
        for name in (*SKIPPED, *stdlib_lock):
            if hasattr(base, name):
                namespace[name] = skip(lambda self: None)
        case = type(f"Unirun{base.__name__}", (base,), namespace)
        loaded.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(case))
    loaded.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(queue_tests(ex)))
    return loaded


def queue_tests(ex: unirun.Executor) -> type[unittest.TestCase]:
    """CPython's tests of every ``queue.Queue``, made to test ``ex.Queue``."""
    from test import test_queue  # no stubs

    def make(maxsize: int = 0) -> unirun.Queue[Any]:
        q = ex.Queue(maxsize)
        # The tests look the expected order up by the class's name.
        q.__class__ = type("Queue", (type(q),), {"__slots__": ()})
        return q

    names = ("Queue", "Full", "Empty", "ShutDown")
    stdlib = {name: getattr(queue, name, None) for name in names}
    stdlib["Queue"] = make

    class UnirunQueueTests(test_queue.BaseQueueTestMixin, unittest.TestCase):  # type: ignore[misc]
        queue = types.SimpleNamespace(**stdlib)

        def setUp(self) -> None:
            self.type2test = make
            super().setUp()

    return UnirunQueueTests


def main(kind: str) -> int:
    """Run the suite on an executor of ``kind``; return the exit status."""
    with unirun.executor(kind, max_workers=1) as ex:  # type: ignore[call-overload]  # checked
        result = unittest.TextTestRunner(verbosity=1).run(suite(ex))
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "thread"))
