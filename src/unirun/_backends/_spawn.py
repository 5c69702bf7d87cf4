"""How a :class:`~._loop.LoopRunner` makes a task of each job, on the loop.

::

    on asyncio   an async def, no time-out, no limit, no task factory:
                   a JobTask running _run_plain (start_now(): made inside
                   submit(), when called on the loop itself before 3.12)
                 the rest: a task running _run_asyncio, made by the caller's
                   task factory if there is one
    on trio      _run_anyio, started in the anyio task group

From 3.12 a task starts eagerly: it runs up to its first real wait as it is
made, so a job that never waits has ended before it is put in ``_tasks``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .._future import Future
from ._bodies import JobBodies
from ._job import JobTask

if TYPE_CHECKING:
    import asyncio
    from collections import deque
    from collections.abc import Callable

    from anyio.abc import TaskGroup

    from .._stats import TaskCounters
    from ._job import Job

__all__ = ["JobSpawner"]


class JobSpawner(JobBodies):
    """Makes the tasks of a :class:`~._loop.LoopRunner`'s jobs (a mixin).

    Only the loop's thread calls it.
    """

    direct: asyncio.AbstractEventLoop | None
    loop_thread: int | None
    _inbox: deque[Job]
    _task_group: TaskGroup | None
    _on_asyncio: bool

    def start_now(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        counters: TaskCounters,
    ) -> Future[Any] | None:
        """Start an ``async def`` call with no time-out as a task, if it can start
        here: asyncio before 3.12, no limit, nothing queued first, no task
        factory. Its Future (uncounted), or ``None``.

        Called on the loop's thread (:attr:`loop_thread`), holding the executor's
        shutdown lock. No :class:`~._job.Job`, only the task.
        """
        loop = self.direct
        if loop is None or self._inbox or loop.get_task_factory() is not None:
            return None
        future: Future[Any] = Future(None, counters, self.loop_thread)
        # The loop's thread, so no lock (see submit()); _start_plain(), inlined.
        context = self._context.copy()  # type: ignore[union-attr]  # attached
        task = JobTask(
            self._run_plain(future, fn, args, kwargs), loop=loop, context=context
        )
        future._stopper = task  # before it runs; see _run_plain
        task.future = future
        self._tasks.add(task)
        return future

    def _start_plain(
        self,
        loop: asyncio.AbstractEventLoop,
        future: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> JobTask:
        # A copy of the loop's own context for each task, as asyncio does: a
        # wake-up scheduled from another thread runs in that thread's context,
        # where sniffio may name another library.
        context = self._context.copy()  # type: ignore[union-attr]  # attached
        run = self._run_plain(future, fn, args, kwargs)
        if sys.version_info >= (3, 12):  # EAGER, spelled for type checkers
            # On the loop's turn (never inside submit): run it at once, up to
            # its first real wait; one that never waits costs no turn at all.
            return JobTask(run, loop=loop, context=context, eager_start=True)
        # What create_task() does with no factory, minus its checks: the loop
        # runs (this is its thread), and the task has no name.
        task = JobTask(run, loop=loop, context=context)
        future._stopper = task  # before it runs; see _run_plain
        task.future = future  # until it runs: see close()
        return task

    def _future_of(self, task: asyncio.Task[None]) -> Future[Any] | None:
        """The Future of a job's task, while it may not have run yet."""
        if isinstance(task, JobTask):
            return getattr(task, "future", None)  # not kept by an eager task
        return self._foreign.get(task)

    def _spawn(self, job: Job) -> None:
        """Start one job as a task of the loop (on the loop's thread)."""
        loop = self._loop
        if not (self._on_asyncio and loop is not None):
            assert self._task_group is not None
            assert self._context is not None
            self._unstarted.add(job)  # until it runs: see close()
            self._live += 1
            # In the executor's context, whoever submits (trio copies the current
            # one), as on asyncio.
            self._context.run(self._task_group.start_soon, self._run_anyio, job)
        elif (
            job.is_async
            and job.timeout is None
            and self._slots is None
            and loop.get_task_factory() is None
        ):
            assert job.future is not None
            plain = self._start_plain(loop, job.future, job.fn, job.args, job.kwargs)
            if not plain.done():  # it may have run to its end already
                self._tasks.add(plain)  # it leaves the set as it ends
        else:
            # A time-out, a limit, a sync function, or the caller's task factory.
            run = self._run_asyncio(job)
            context = self._context.copy()  # type: ignore[union-attr]  # attached
            future = job.future
            assert future is not None
            task: asyncio.Task[None]
            if loop.get_task_factory() is not None:
                # The caller's factory, called as create_task() calls it with no
                # context (a factory may take only the loop and the coroutine).
                task = context.run(loop.create_task, run)
                if not task.done():
                    self._foreign[task] = future  # until it runs: see close()
            elif sys.version_info >= (3, 12):  # EAGER, spelled for type checkers
                task = JobTask(run, loop=loop, context=context, eager_start=True)
            else:
                task = JobTask(run, loop=loop, context=context)
                task.future = future  # until it runs: see close()
            if not task.done():  # it may have run to its end already
                job.task = task  # how to stop it; it leaves the set as it ends
                self._tasks.add(task)
