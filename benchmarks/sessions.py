"""Sessions: one live pool of one contender, driven through one small interface.

The suite runs batches through a session with one of three APIs:

    "submit"  submit every item, then collect every result (in order)
    "map"     the library's own map, with its own batching (chunksize)
    "async"   an async function, every item gathered on an event loop

This module holds the interface and the sessions for unirun, the stdlib, anyio
and the serial baseline; peers.py has those for the optional peers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.from_thread
import anyio.to_process
import anyio.to_thread

import unirun

if TYPE_CHECKING:
    import concurrent.futures as cf
    from collections.abc import Awaitable, Callable

__all__ = [
    "AnyioSession",
    "Api",
    "AsyncioSession",
    "Batch",
    "Chunk",
    "ExecutorSession",
    "SerialSession",
    "Session",
    "UnirunInLoopSession",
    "columns",
]

Api = Literal["submit", "map", "async"]
# map(chunksize=...): an int, None (the library chooses) or "auto" (joblib's).
Chunk = int | Literal["auto"] | None


@dataclass(frozen=True)
class Batch:
    """One run's worth of work: the task (sync and async forms) and its inputs."""

    fn: Callable[..., Any]
    afn: Callable[..., Awaitable[Any]] | None
    items: list[tuple[Any, ...]]


class Session:
    """One contender's pool, open for the cells of one workload.

    Methods a library has no form of raise :class:`NotImplementedError`; the
    workloads only ask each contender for the APIs it has.
    """

    def submit_all(self, batch: Batch) -> list[Any]:
        """Submit every item, then wait for every result, in input order."""
        raise NotImplementedError

    def map_all(self, batch: Batch, chunksize: Chunk) -> list[Any]:
        """Run the library's map over the items, in input order."""
        raise NotImplementedError

    def gather_async(self, batch: Batch) -> list[Any]:
        """Run ``batch.afn`` for every item concurrently on an event loop."""
        raise NotImplementedError

    def run(self, api: Api, batch: Batch, chunksize: Chunk = None) -> list[Any]:
        """Run ``batch`` through ``api``; block until every result is in."""
        if api == "submit":
            return self.submit_all(batch)
        if api == "map":
            return self.map_all(batch, chunksize)
        return self.gather_async(batch)

    def close(self) -> None:
        """Shut the pool down and wait for its threads and processes to exit."""


def columns(items: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Turn a list of argument tuples into map()'s one iterable per argument."""
    return list(zip(*items, strict=True))


class ExecutorSession(Session):
    """A ``concurrent.futures.Executor``: unirun's three, the stdlib's two, loky."""

    def __init__(self, executor: cf.Executor) -> None:
        self.executor = executor

    def submit_all(self, batch: Batch) -> list[Any]:
        futures = [self.executor.submit(batch.fn, *args) for args in batch.items]
        return [future.result() for future in futures]

    def map_all(self, batch: Batch, chunksize: Chunk) -> list[Any]:
        if chunksize == "auto":
            raise ValueError("chunksize='auto' is joblib's; executors take None")
        # unirun takes chunksize=None (it chooses); the stdlib's stubs say int.
        size: Any = 1 if chunksize is None and not self._is_unirun() else chunksize
        results = self.executor.map(batch.fn, *columns(batch.items), chunksize=size)
        return list(results)

    def gather_async(self, batch: Batch) -> list[Any]:
        # unirun executors take async functions; gather() waits for them all.
        if batch.afn is None or not isinstance(
            self.executor, unirun.CoroutineExecutor | unirun.AutoExecutor
        ):
            raise NotImplementedError
        executor = self.executor
        futures = [executor.submit(batch.afn, *args) for args in batch.items]
        return executor.gather(*futures).result()

    def _is_unirun(self) -> bool:
        return isinstance(
            self.executor,
            unirun.ThreadExecutor
            | unirun.ProcessExecutor
            | unirun.CoroutineExecutor
            | unirun.AutoExecutor,
        )

    def close(self) -> None:
        self.executor.shutdown(wait=True)


class _LoopSession(Session):
    """A session that owns an asyncio event loop, reused by every run."""

    def __init__(self, concurrency: int | None) -> None:
        self.concurrency = concurrency
        self.runner = asyncio.Runner()

    def close(self) -> None:
        self.runner.close()


class UnirunInLoopSession(_LoopSession):
    """``async with CoroutineExecutor()`` inside a running loop: tasks share it.

    The executor lives for one run (entering it starts no thread), since its
    task group must be entered and left by the same task.
    """

    def gather_async(self, batch: Batch) -> list[Any]:
        afn = batch.afn
        assert afn is not None
        limit = self.concurrency

        async def main() -> list[Any]:
            async with unirun.CoroutineExecutor(max_concurrency=limit) as executor:
                futures = [executor.submit(afn, *args) for args in batch.items]
                return await executor.gather(*futures)

        return self.runner.run(main())


class AsyncioSession(_LoopSession):
    """Bare ``asyncio.gather`` (with a semaphore when concurrency is limited)."""

    def gather_async(self, batch: Batch) -> list[Any]:
        afn = batch.afn
        assert afn is not None
        limit = self.concurrency

        async def main() -> list[Any]:
            if limit is None:
                return await asyncio.gather(*(afn(*args) for args in batch.items))
            semaphore = asyncio.Semaphore(limit)

            async def limited(args: tuple[Any, ...]) -> Any:
                async with semaphore:
                    return await afn(*args)

            return await asyncio.gather(*(limited(args) for args in batch.items))

        return self.runner.run(main())


class AnyioSession(_LoopSession):
    """anyio on asyncio: a task group of coroutines, or ``anyio.to_thread``.

    With ``concurrency`` set, ``to_thread`` uses a limiter of that many threads;
    otherwise anyio's default limiter (40 threads).
    """

    async def _gather(
        self,
        items: list[tuple[Any, ...]],
        call: Callable[[tuple[Any, ...]], Awaitable[Any]],
    ) -> list[Any]:
        """Await ``call(args)`` for every item in one task group, in input order."""
        out: list[Any] = [None] * len(items)

        async def one(index: int, args: tuple[Any, ...]) -> None:
            out[index] = await call(args)

        async with anyio.create_task_group() as group:
            for index, args in enumerate(items):
                group.start_soon(one, index, args)
        return out

    def submit_all(self, batch: Batch) -> list[Any]:
        fn, limit = batch.fn, self.concurrency

        async def main() -> list[Any]:
            # A limiter belongs to the running loop, so it is made in here.
            limiter = None if limit is None else anyio.CapacityLimiter(limit)

            async def in_thread(args: tuple[Any, ...]) -> Any:
                return await anyio.to_thread.run_sync(fn, *args, limiter=limiter)

            return await self._gather(batch.items, in_thread)

        return self.runner.run(main())

    def gather_async(self, batch: Batch) -> list[Any]:
        afn = batch.afn
        assert afn is not None

        async def direct(args: tuple[Any, ...]) -> Any:
            return await afn(*args)

        return self.runner.run(self._gather(batch.items, direct))


class AnyioProcessSession(Session):
    """``anyio.to_process.run_sync`` with a limiter of ``workers`` processes.

    anyio keeps its worker processes for the life of the event loop's root task,
    so the session runs one loop in a background thread (a blocking portal) for
    all its runs: the warm-up starts the processes, the timed runs reuse them.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._portal_cm = anyio.from_thread.start_blocking_portal("asyncio")
        self.portal = self._portal_cm.__enter__()

    def submit_all(self, batch: Batch) -> list[Any]:
        fn, workers = batch.fn, self.workers

        async def main() -> list[Any]:
            limiter = anyio.CapacityLimiter(workers)
            out: list[Any] = [None] * len(batch.items)

            async def one(index: int, args: tuple[Any, ...]) -> None:
                out[index] = await anyio.to_process.run_sync(fn, *args, limiter=limiter)

            async with anyio.create_task_group() as group:
                for index, args in enumerate(batch.items):
                    group.start_soon(one, index, args)
            return out

        return self.portal.call(main)

    def close(self) -> None:
        self._portal_cm.__exit__(None, None, None)


class SerialSession(Session):
    """A plain loop in the calling thread: the baseline every speed-up divides."""

    def submit_all(self, batch: Batch) -> list[Any]:
        return [batch.fn(*args) for args in batch.items]

    def map_all(self, batch: Batch, chunksize: Chunk) -> list[Any]:
        return list(map(batch.fn, *columns(batch.items)))
