"""unirun: one executor API over threads, processes and coroutines.

Where to start reading: ``_base.py`` is the contract every backend implements
(and docs/architecture.md the map of the layers); ``_front.py`` what callers
schedule with; ``_future.py`` the Future every backend hands out; ``_backends/``
one module per backend; ``_auto/`` the executor that measures and routes;
``_sync/`` the primitives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._auto import AutoExecutor, Verdict, profile
from ._backends.coroutine import CoroutineExecutor
from ._backends.process import ProcessExecutor
from ._backends.thread import ThreadExecutor
from ._completion import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    as_completed,
    wait,
)
from ._errors import (
    BrokenExecutor,
    CancelledError,
    InvalidStateError,
    LoopBlockedWarning,
    RebuildError,
    RemoteError,
    RemoteTraceback,
    TaskTimeoutError,
    TransferError,
    UnirunError,
    WorkerCrashedError,
)
from ._factory import executor
from ._front import OptionsView
from ._future import Future
from ._map import MapIterator
from ._options import TaskOptions
from ._protocol import Executor
from ._stats import Statistics, WorkerStatistics
from ._sync import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Dict,
    Event,
    Lock,
    Queue,
    QueueShutDown,
    RLock,
    Semaphore,
)

if TYPE_CHECKING:
    # Imported on first use (see __getattr__): `import unirun` never imports Dask.
    from ._backends._dask import DaskExecutor

__all__ = (
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "AutoExecutor",
    "Barrier",
    "BoundedSemaphore",
    "BrokenExecutor",
    "CancelledError",
    "Condition",
    "CoroutineExecutor",
    "DaskExecutor",
    "Dict",
    "Event",
    "Executor",
    "Future",
    "InvalidStateError",
    "Lock",
    "LoopBlockedWarning",
    "MapIterator",
    "OptionsView",
    "ProcessExecutor",
    "Queue",
    "QueueShutDown",
    "RLock",
    "RebuildError",
    "RemoteError",
    "RemoteTraceback",
    "Semaphore",
    "Statistics",
    "TaskOptions",
    "TaskTimeoutError",
    "ThreadExecutor",
    "TransferError",
    "UnirunError",
    "Verdict",
    "WorkerCrashedError",
    "WorkerStatistics",
    "as_completed",
    "executor",
    "profile",
    "wait",
)

# Public names report `unirun` as their module (clean reprs, tracebacks and docs);
# they still pickle by reference, because `unirun.<name>` is the same object.
for _name in __all__:
    if _name not in globals():
        continue  # imported lazily, fixed in __getattr__
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("unirun."):
        _obj.__module__ = "unirun"
del _name, _obj


def __getattr__(name: str) -> object:
    """Import :class:`DaskExecutor` (extra ``unirun[dask]``) on first use."""
    if name != "DaskExecutor":
        raise AttributeError(f"module 'unirun' has no attribute {name!r}")
    try:
        from ._backends._dask import DaskExecutor
    except ModuleNotFoundError as exc:
        if exc.name not in ("dask", "distributed"):
            raise
        raise ModuleNotFoundError(
            "unirun.DaskExecutor needs Dask: pip install 'unirun[dask]'",
            name=exc.name,
        ) from exc
    DaskExecutor.__module__ = "unirun"
    globals()["DaskExecutor"] = DaskExecutor
    return DaskExecutor


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
