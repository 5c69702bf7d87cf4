"""Per-task options (time-out, name, backend hint), given without touching a task's
``**kwargs``."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BACKEND_HINTS", "NO_OPTIONS", "TaskOptions"]

#: The backends a task can be pinned to with ``options(backend=...)``.
BACKEND_HINTS = ("thread", "process", "coroutine", "inline")


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Options that travel with each task of an :meth:`Executor.options` view.

    Attributes:
        timeout: seconds a task may run, counted from when it starts; ``None``
            means no limit. A task still running at its deadline fails with
            :class:`unirun.TaskTimeoutError`; a zero or negative time-out fails
            it at once, as stdlib time-outs in the past do.
        name: a label for the task, shown in reprs and reports.
        backend: run the task on this backend (``"thread"``, ``"process"``,
            ``"coroutine"`` or ``"inline"``). An :class:`unirun.AutoExecutor`
            always follows it; a fixed executor accepts only its own kind.
    """

    timeout: float | None = None
    name: str | None = None
    backend: str | None = None

    def __post_init__(self) -> None:
        if self.timeout is not None:
            if isinstance(self.timeout, bool) or not isinstance(
                self.timeout, (int, float)
            ):
                raise TypeError(
                    f"timeout must be a number of seconds or None, not {self.timeout!r}"
                )
            if math.isnan(self.timeout):
                raise ValueError("timeout must not be NaN")
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a string or None, not {self.name!r}")
        if self.backend is not None and self.backend not in BACKEND_HINTS:
            known = ", ".join(repr(name) for name in BACKEND_HINTS)
            raise ValueError(
                f"backend must be one of {known} or None, not {self.backend!r}"
            )


NO_OPTIONS = TaskOptions()
