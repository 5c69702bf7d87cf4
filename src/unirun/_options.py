"""Per-task options (time-out, name, backend hint), given without touching a task's
``**kwargs``."""

from __future__ import annotations

from dataclasses import dataclass

from ._checks import check_timeout
from ._types import BACKENDS, Backend

__all__ = ["NO_OPTIONS", "TaskOptions"]


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Options that travel with each task of an :meth:`Executor.options` view.

    Attributes:
        timeout: seconds a task may run, counted from when it starts; ``None``
            (or ``inf``) means no limit. A task still running at its deadline
            fails with :class:`unirun.TaskTimeoutError`; a zero or negative
            time-out fails it at once, as stdlib time-outs in the past do.
        name: a label for the task, shown in reprs and reports.
        backend: run the task on this backend (``"thread"``, ``"process"``,
            ``"coroutine"``, ``"inline"`` or ``"dask"``). An
            :class:`unirun.AutoExecutor` always follows it (``"dask"`` when it
            was given a cluster); a fixed executor accepts only its own kind.
    """

    timeout: float | None = None
    name: str | None = None
    backend: Backend | None = None

    def __post_init__(self) -> None:
        check_timeout(self.timeout)
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a string or None, not {self.name!r}")
        if self.backend is not None and self.backend not in BACKENDS:
            known = ", ".join(repr(name) for name in BACKENDS)
            raise ValueError(
                f"backend must be one of {known} or None, not {self.backend!r}"
            )


NO_OPTIONS = TaskOptions()
