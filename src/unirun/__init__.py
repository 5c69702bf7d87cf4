"""unirun: one executor API over threads, processes and coroutines."""

from __future__ import annotations

from ._auto import AutoExecutor, Verdict, profile
from ._backends.coroutine import CoroutineExecutor
from ._backends.process import ProcessExecutor
from ._backends.thread import ThreadExecutor
from ._base import OptionsView
from ._errors import (
    BrokenExecutor,
    CancelledError,
    InvalidStateError,
    LoopBlockedWarning,
    RemoteError,
    RemoteTraceback,
    TaskTimeoutError,
    TransferError,
    UnirunError,
    WorkerCrashedError,
)
from ._factory import executor
from ._future import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    Future,
    as_completed,
    wait,
)
from ._map import MapIterator
from ._options import TaskOptions
from ._protocol import Executor
from ._sync import BoundedSemaphore, Event, Lock, Queue, Semaphore

__all__ = (
    "ALL_COMPLETED",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "AutoExecutor",
    "BoundedSemaphore",
    "BrokenExecutor",
    "CancelledError",
    "CoroutineExecutor",
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
    "RemoteError",
    "RemoteTraceback",
    "Semaphore",
    "TaskOptions",
    "TaskTimeoutError",
    "ThreadExecutor",
    "TransferError",
    "UnirunError",
    "Verdict",
    "WorkerCrashedError",
    "as_completed",
    "executor",
    "profile",
    "wait",
)

# Public classes report `unirun` as their module (clean reprs and docs); they still
# pickle by reference because `unirun.<name>` resolves to the same object.
for _name in (
    "BoundedSemaphore",
    "Event",
    "Lock",
    "LoopBlockedWarning",
    "Queue",
    "Semaphore",
    "RemoteError",
    "TaskTimeoutError",
    "TransferError",
    "UnirunError",
    "WorkerCrashedError",
    "TaskOptions",
    "as_completed",
    "wait",
    "executor",
):
    globals()[_name].__module__ = "unirun"
del _name
