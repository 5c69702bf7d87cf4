"""One task of a DaskExecutor on its way, and what becomes of its outcome."""

from __future__ import annotations

import pickle
import uuid
from typing import TYPE_CHECKING, Any

import distributed

from ..._errors import (
    BrokenExecutor,
    RebuildError,
    WorkerCrashedError,
    task_timed_out,
)
from ..._transfer import decode_exception
from . import remote

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._future import Future
    from ..._options import TaskOptions

__all__ = ["Job", "outcome_error", "runs_on", "settle", "task_key"]


class Job:
    """A call, pickled, from ``submit`` until its Future is complete."""

    __slots__ = (
        "dask_future",
        "future",
        "handle",
        "is_async",
        "key",
        "outcome",
        "payload",
        "timeout",
    )

    def __init__(
        self,
        future: Future[Any],
        payload: bytes,
        timeout: float | None,
        is_async: bool,
        key: str,
    ) -> None:
        self.future = future
        self.payload = payload
        self.timeout = timeout
        self.is_async = is_async
        self.key = key
        self.dask_future: distributed.Future[Any] | None = None
        self.handle: int | None = None
        self.outcome: object = None


def task_key(fn: Callable[..., Any], options: TaskOptions) -> str:
    """A unique Dask key that names the task as the dashboard shows it."""
    name = options.name
    if name is None:
        while hasattr(fn, "func"):  # functools.partial
            fn = fn.func
        name = getattr(fn, "__name__", type(fn).__name__)
    return f"{name}-{uuid.uuid4().hex}"


def runs_on(future: Future[Any], timeout: float | None) -> None:
    """Fail a task at its deadline; a plain function cannot be stopped."""
    future._set_exception_if_pending(task_timed_out(timeout, "runs on"))


def outcome_error(outcome: BaseException, what: str) -> BaseException:
    """What a task fails with when Dask itself reports a failure."""
    if isinstance(outcome, distributed.scheduler.KilledWorker):
        error: BaseException = WorkerCrashedError(
            f"the Dask workers running the task died ({what}); the scheduler "
            "gave up retrying it"
        )
    elif isinstance(outcome, distributed.client.FutureCancelledError):
        error = BrokenExecutor(
            f"the task was lost by the cluster ({what}); was the client closed "
            "or the scheduler stopped?"
        )
    else:
        return outcome
    error.__cause__ = outcome
    return error


def settle(job: Job) -> None:
    """Give the job's Future what the cluster returned."""
    future, outcome = job.future, job.outcome
    job.outcome = None
    if isinstance(outcome, BaseException):
        future._set_exception_if_pending(outcome_error(outcome, job.key))
        return
    status: int
    body: bytes
    status, body = outcome  # type: ignore[misc]  # run_call's (int, bytes)
    if status == remote.OK:
        try:
            result = pickle.loads(body)
        except BaseException as exc:  # even SystemExit from a hostile pickle
            error = RebuildError(
                "the task's result could not be unpickled here: "
                f"{type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            future._set_exception_if_pending(error)
        else:
            future._set_result_if_pending(result)
    elif status == remote.TIMED_OUT:
        future._set_exception_if_pending(task_timed_out(job.timeout, "cancelled"))
    elif status == remote.UNREADABLE:
        raised = decode_exception(body)
        error = RebuildError(
            "the task could not be unpickled on the Dask worker: "
            f"{type(raised).__name__}: {raised}"
        )
        error.__cause__ = raised
        future._set_exception_if_pending(error)
    else:
        future._set_exception_if_pending(decode_exception(body))
