"""Sessions for the optional peers: joblib, mpire and pebble.

Each peer is imported by name when its session opens (loky, a plain executor,
uses :class:`~benchmarks.sessions.ExecutorSession`), so nothing here is needed
to import the suite, and a missing peer only skips its cells.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any

from .sessions import Batch, Chunk, Session, columns

__all__ = ["JoblibSession", "MpireSession", "PebbleSession", "version_of"]


def version_of(distribution: str) -> str | None:
    """Return the installed version of ``distribution``, or ``None``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


class JoblibSession(Session):
    """``joblib.Parallel`` kept open (``with Parallel(...)``) across runs.

    joblib has no submit: every workload runs it through map, with its automatic
    batching unless the workload asks for a fixed ``batch_size``.
    """

    def __init__(self, backend: str, workers: int, chunksize: Chunk) -> None:
        joblib = importlib.import_module("joblib")
        self.backend = backend
        self.delayed = joblib.delayed
        batch_size = "auto" if chunksize in (None, "auto") else chunksize
        self.parallel = joblib.Parallel(
            n_jobs=workers, backend=backend, batch_size=batch_size
        )
        self.parallel.__enter__()

    def map_all(self, batch: Batch, chunksize: Chunk) -> list[Any]:
        delayed = self.delayed
        return list(self.parallel(delayed(batch.fn)(*args) for args in batch.items))

    def close(self) -> None:
        self.parallel.__exit__(None, None, None)
        if self.backend == "loky":
            # joblib keeps its loky workers alive for the next Parallel call;
            # shut that executor down so no process outlives the session.
            reusable = importlib.import_module(
                "joblib.externals.loky.reusable_executor"
            )
            executor = getattr(reusable, "_executor", None)
            if executor is not None:
                executor.shutdown(wait=True)


class MpireSession(Session):
    """``mpire.WorkerPool(keep_alive=True)``: map only, its own chunking by default.

    ``start_method`` ``None`` keeps mpire's default (fork where available);
    ``"threading"`` gives its thread pool.
    """

    def __init__(self, workers: int, start_method: str | None) -> None:
        mpire = importlib.import_module("mpire")
        # mpire imports tqdm, whose monitor thread would outlive the pool (a
        # daemon thread nobody stops); we never show a progress bar.
        importlib.import_module("tqdm").tqdm.monitor_interval = 0
        options: dict[str, Any] = {"n_jobs": workers, "keep_alive": True}
        if start_method is not None:
            options["start_method"] = start_method
        self.pool = mpire.WorkerPool(**options)

    def map_all(self, batch: Batch, chunksize: Chunk) -> list[Any]:
        chunk = None if chunksize in (None, "auto") else chunksize
        # mpire unpacks each tuple into positional arguments.
        return list(self.pool.map(batch.fn, batch.items, chunk_size=chunk))

    def close(self) -> None:
        self.pool.stop_and_join()
        self.pool.terminate()


class PebbleSession(Session):
    """``pebble.ProcessPool`` or ``pebble.ThreadPool``: schedule() and map()."""

    def __init__(self, kind: str, workers: int) -> None:
        pebble = importlib.import_module("pebble")
        self.pool = getattr(pebble, kind)(max_workers=workers)

    def submit_all(self, batch: Batch) -> list[Any]:
        futures = [self.pool.schedule(batch.fn, args=args) for args in batch.items]
        return [future.result() for future in futures]

    def map_all(self, batch: Batch, chunksize: Chunk) -> list[Any]:
        size = chunksize if isinstance(chunksize, int) else 1
        future = self.pool.map(batch.fn, *columns(batch.items), chunksize=size)
        return list(future.result())

    def close(self) -> None:
        self.pool.close()
        self.pool.join()
