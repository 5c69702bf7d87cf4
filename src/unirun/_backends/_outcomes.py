"""How a process task ends: its worker's reply decoded, or its worker killed.

The manager thread of a :class:`~._pool.Pool` reads a finished task's reply and
turns it into an outcome here (a result, a chunk's values, or the exception to
raise); the task's Future gets it once the task's output is written. A task
whose awaiter left is stopped by killing the worker that holds it.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

from .._call import ChunkResult
from .._errors import RebuildError
from .._transfer import decode_exception
from . import _wire

if TYPE_CHECKING:
    import weakref

    from .._future import Future, Stopper
    from ._pool import Pool
    from ._records import Task, WorkerRecord

__all__ = ["Outcome", "chunk_result", "decode", "deliver", "stopper"]

#: ``(True, result)`` or ``(False, exception)``.
Outcome = tuple[bool, Any]


def decode(
    worker: WorkerRecord, task: Task, kind: int, status: int, body: memoryview
) -> Outcome:
    """The outcome of ``task``, from the reply ``worker`` sent."""
    if kind == _wire.K_CHUNK:
        error_bytes, elapsed = pickle.loads(body)
        error = decode_exception(error_bytes) if error_bytes else None
        return True, chunk_result(worker, task, error, elapsed)
    if status == _wire.OK:
        try:
            return True, pickle.loads(body)
        except BaseException as exc:  # even SystemExit from a hostile __reduce__
            error = RebuildError(
                "the task's result could not be unpickled in the parent: "
                f"{type(exc).__name__}: {exc}"
            )
            error.__cause__ = exc
            return False, error
    raised = decode_exception(bytes(body))
    if status == _wire.UNREADABLE:
        error = RebuildError(
            "the task could not be unpickled in the worker process: "
            f"{type(raised).__name__}: {raised}"
        )
        error.__cause__ = raised
        return False, error
    return False, raised


def chunk_result(
    worker: WorkerRecord,
    task: Task,
    error: BaseException | None,
    elapsed: float = 0.0,
) -> ChunkResult:
    """A chunk's values so far (streamed, then from the result log) and its error."""
    values = task.values
    for index, value in enumerate(values):  # a PARTIAL that failed to unpickle
        if isinstance(value, RebuildError):
            return ChunkResult(values[:index], value, elapsed)
    failed = worker.log.read(values)
    return ChunkResult(values, failed or error, elapsed)


def deliver(future: Future[Any], outcome: Outcome) -> None:
    """Give ``future`` its outcome, unless it already has one."""
    ok, value = outcome
    if ok:
        future._set_result_if_pending(value)
    else:
        future._set_exception_if_pending(value)


def stopper(pool_ref: weakref.ref[Pool], task_id: int) -> Stopper:
    """How the future of task ``task_id`` stops it: by killing its worker.

    Only an abandoned task is stopped; ``cancel()`` of a running one returns
    False, as in the stdlib. Holds the pool weakly: a future kept by the caller
    does not keep a shut-down pool alive.
    """

    def stop(abandon: bool) -> bool:
        pool = pool_ref()
        if not abandon or pool is None:
            return False
        with pool.lock:
            for worker in pool.workers:
                if worker.task is not None and worker.task.id == task_id:
                    worker.killing = True
                    # Its future is being marked cancelled: the death this
                    # causes must not fail it first.
                    worker.abandoned = True
        pool.wake()
        return True

    return stop
