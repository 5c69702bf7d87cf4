"""ProcessExecutor: a drop-in for ``ProcessPoolExecutor`` that survives its workers.

Data flow::

    submit(fn, args) -> fn pickled once per executor (CallableCache), arguments
                        per call; a call that cannot be pickled -> a failed Future
                     -> Pool (_pool.py): one pipe per worker, a manager thread
    worker (_worker.py): started by unirun's fork server (_launch.py), never
                        runs the user's __main__; keeps each function it got

Each worker runs one task at a time, so the pool knows which task a worker
holds: a dead worker fails only its own task and is replaced, a time-out kills
only the stuck task's worker, a cancelled awaiter stops only its task.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import sys
import weakref
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Literal

import anyio.to_thread

from .._base import BaseExecutor
from .._call import run_chunk
from .._checks import check_initializer, check_size, initializer_args
from .._cpu import usable_cpus
from .._sync import sending_to
from .._transfer import (
    CallableCache,
    SpawnArgs,
    dumps_args,
    transfer_error,
    unsendable,
    unsendable_raises,
    unwrap,
)
from ._launch import WorkerContext, default_context, start_server
from ._pool import Pool, registry
from ._records import Task, describe_exit

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess
    from typing import Self

    from .._future import Future
    from .._options import TaskOptions
    from .._stats import WorkerFigures

__all__ = ["ProcessExecutor", "default_context", "describe_exit"]

_LOGGER = logging.getLogger("unirun")


def _native_threads(setting: int | Literal["auto"] | None, workers: int) -> int | None:
    if setting == "auto":
        return max(1, usable_cpus() // workers)
    if setting is None:
        return None
    return check_size(setting, "native_threads")


class ProcessExecutor(BaseExecutor, cf.ProcessPoolExecutor):
    """Run tasks in worker processes; a drop-in for ``ProcessPoolExecutor``.

    Takes the same arguments, and is a ``ProcessPoolExecutor`` to ``isinstance``.
    Beyond the stdlib:

    * the main module never runs again in a worker (scripts without an
      ``if __name__ == "__main__":`` guard, ``python - < file``, ``-c`` and
      notebooks work), and functions travel with cloudpickle (lambdas, closures
      and ``__main__`` functions work), each sent to a worker once;
    * a worker that dies fails only its own task with
      :class:`unirun.WorkerCrashedError` (a ``BrokenProcessPool``) and is
      replaced; a task past its ``options(timeout=...)`` has its worker killed
      and fails with :class:`unirun.TaskTimeoutError`; cancelling a coroutine
      that awaits a running task kills its worker; Ctrl-C while waiting for a
      result stops the pool without orphans;
    * what tasks print and log reaches this process's ``sys.stdout``,
      ``sys.stderr`` and loggers; native thread pools (BLAS, OpenMP) are sized
      so that the workers do not oversubscribe the CPUs.

    ``cancel()`` of a running task returns ``False``, as in the stdlib.

    Args:
        max_workers: the most worker processes; default: the CPUs this process
            may really use (affinity and cgroup quota).
        mp_context: a :mod:`multiprocessing` context; by default unirun's own
            fork server (:func:`default_context`), which never re-runs the main
            module. With a context given, workers start as that context starts
            processes (``spawn`` re-imports the main module, as in the stdlib).
        initializer: called in each worker process before its first task.
        initargs: arguments for ``initializer``.
        max_tasks_per_child: replace a worker after this many tasks.
        native_threads: the thread count of native libraries in each worker,
            through ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and the like
            (variables the caller set are left alone): ``"auto"`` gives each
            worker its share of the usable CPUs, ``None`` leaves them alone.
        forward_output: send what tasks write to ``sys.stdout``/``sys.stderr``,
            and their logging records, to this process.
    """

    kind = "process"
    crosses_processes = True
    stops_on_timeout = True
    uses_chunks = True
    _exit_registry = registry

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: BaseContext | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
        *,
        max_tasks_per_child: int | None = None,
        native_threads: int | Literal["auto"] | None = "auto",
        forward_output: bool = True,
    ) -> None:
        super().__init__()
        max_workers = check_size(max_workers, "max_workers")
        if max_workers is None:
            max_workers = usable_cpus()
            if sys.platform == "win32":
                max_workers = min(max_workers, 61)
        if mp_context is None:
            mp_context = default_context()
        check_initializer(initializer)
        if max_tasks_per_child is not None:
            if not isinstance(max_tasks_per_child, int):
                raise TypeError("max_tasks_per_child must be an integer")
            if max_tasks_per_child <= 0:
                raise ValueError("max_tasks_per_child must be >= 1")
            if mp_context.get_start_method(allow_none=False) == "fork":
                raise ValueError(
                    "max_tasks_per_child is incompatible with the 'fork' "
                    "multiprocessing start method; supply a different mp_context."
                )
        self._max_workers = max_workers
        self._mp_context = mp_context
        # As ProcessPoolExecutor keeps them (code outside the stdlib reads them).
        self._initializer = initializer  # type: ignore[assignment]
        self._initargs = initargs
        self._max_tasks_per_child = max_tasks_per_child
        # Workers forked from this process have its __main__: functions of it
        # go by name, and find their globals as inherited, as in the stdlib.
        inherit = mp_context.get_start_method(allow_none=False) == "fork"
        self._functions = CallableCache(inherit)
        pool = Pool(
            max_workers,
            mp_context,
            {
                # Pickled as tasks are: a __main__ initializer shares the
                # worker's __main__ namespace with them (its globals reach them).
                "initializer": (
                    None
                    if initializer is None
                    else self._functions.lookup(initializer)[1]
                ),
                "inherit_main": inherit,
                "initargs": SpawnArgs(initializer_args(initializer, initargs)),
                "max_tasks": max_tasks_per_child,
                "native_threads": _native_threads(native_threads, max_workers),
                "forward_output": bool(forward_output),
            },
        )
        self._take(pool)

    def _take(self, pool: Pool) -> None:
        self._pool = pool
        self._finalizer = weakref.finalize(self, pool.shutdown, False)
        terminate = weakref.WeakMethod(pool.terminate)

        def on_interrupt() -> None:
            # Weakly: a future the caller keeps must not keep the pool alive.
            method = terminate()
            if method is not None:
                method()

        self._on_interrupt = on_interrupt

    def _after_fork(self) -> None:
        # A new pool, as yet without workers; the parent's stays the parent's
        # (the registry's hook closed this process's copies of its pipes).
        self._finalizer.detach()
        self._functions = CallableCache(self._functions.inherit)
        self._take(self._pool.copy())

    @property
    def _processes(self) -> dict[int, BaseProcess]:  # type: ignore[override]
        """The live worker processes by pid, as ``ProcessPoolExecutor`` has them."""
        return self._pool.processes()

    @property
    def _executor_manager_thread(self) -> threading.Thread | None:  # type: ignore[override]
        """The thread that collects results, as ``ProcessPoolExecutor`` names it."""
        return self._pool.manager

    @property
    def _call_queue(self) -> _CallQueue:
        """Where tasks wait for a worker, as ``ProcessPoolExecutor`` names it."""
        return _CallQueue(self._pool)

    @property
    def _broken(self) -> str | bool:  # type: ignore[override]
        return self._pool.broken or False

    def _parallelism(self) -> int:
        return self._max_workers

    def _refuse_if_broken(self) -> None:
        if self._pool.broken:
            raise BrokenProcessPool(self._pool.broken)

    def _workers(self) -> WorkerFigures:
        return self._pool.figures()

    def _schedule(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        refuse = unsendable_raises()  # first: nothing after it sees the request
        if self._pool.broken:
            raise BrokenProcessPool(self._pool.broken)
        future = self._new_future(self._on_interrupt)
        chunk = fn is run_chunk
        payload: Any
        if chunk:  # a batch of map items: (fn, [args, ...])
            fn, payload = args
        else:
            fn, args, kwargs = unwrap(fn, args, kwargs)
            payload = (args, kwargs)
        with sending_to(self._primitive_scope) as primitives:
            try:
                key, fn_bytes = self._functions.lookup(fn)
                payload_bytes = dumps_args(payload, self._functions.inherit)
            except Exception as exc:
                if refuse:  # the caller runs it elsewhere
                    raise unsendable(exc) from exc
                # As the stdlib: the future fails, the caller's loop goes on.
                future._start()
                future.set_exception(transfer_error(exc, fn, args, kwargs))
                return future
        if primitives:  # alive until the worker has them (the caller may drop them)
            future.add_done_callback(lambda _: primitives.clear())
        task = Task(
            future,
            key,
            fn_bytes,
            payload_bytes,
            chunk=chunk,
            timeout=options.timeout,
        )
        self._making = task  # the pool marks it as it queues it: Task.queued
        self._pool.submit(task)
        return future

    def _close(self, wait: bool, cancel_futures: bool) -> None:
        self._pool.shutdown(wait, cancel_futures)

    async def __aenter__(self) -> Self:
        # The fork server starts in a worker thread, not in the event loop's
        # first submit, which it would hold up for a few hundred milliseconds.
        if isinstance(self._mp_context, WorkerContext):
            try:
                await anyio.to_thread.run_sync(start_server)
            except Exception:  # the first submit will say what is wrong
                _LOGGER.debug("the fork server did not start", exc_info=True)
        return self

    def terminate_workers(self) -> None:
        """Shut down at once and send SIGTERM to every worker process.

        As Python 3.14's ``ProcessPoolExecutor.terminate_workers()``: pending
        tasks are cancelled, running ones fail (their workers die), and the
        executor accepts no more tasks.
        """
        self._force_shutdown(kill=False)

    def kill_workers(self) -> None:
        """Shut down at once and send SIGKILL to every worker process.

        As Python 3.14's ``ProcessPoolExecutor.kill_workers()``; see
        :meth:`terminate_workers`.
        """
        self._force_shutdown(kill=True)

    def _force_shutdown(self, *, kill: bool) -> None:
        self.shutdown(wait=False, cancel_futures=True)
        self._pool.signal_workers(kill)

    def __repr__(self) -> str:
        return f"<ProcessExecutor max_workers={self._max_workers}>"


class _CallQueue:
    """The stdlib's ``_call_queue`` as far as code outside the pool uses it.

    Here the manager thread feeds the workers (there is no feeder thread), so
    :meth:`join_thread` waits for it, as the stdlib's waits for its feeder. It
    holds the pool, never the executor: a dropped executor is still collected.
    """

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def join_thread(self) -> None:
        """Wait until the thread that feeds the workers has ended (after shutdown)."""
        self._pool.join_manager()
