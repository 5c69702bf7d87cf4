"""How ``map(chunksize=None)`` cuts its chunks (``AdaptiveBatches``), driven by hand."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import TYPE_CHECKING, Any

import unirun
from unirun._batches import AdaptiveBatches
from unirun._call import ChunkResult

if TYPE_CHECKING:
    import pytest


class Chunks:
    """Stands in for an executor: records each chunk, and ends it on demand."""

    def __init__(self) -> None:
        self.cut: list[tuple[list[tuple[Any, ...]], cf.Future[Any]]] = []

    def submit(self, chunk: list[tuple[Any, ...]]) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        future.set_running_or_notify_cancel()
        self.cut.append((chunk, future))
        return future

    def end(self, index: int, per_item: float) -> None:
        chunk, future = self.cut[index]
        values = [args[0] for args in chunk]
        future.set_result(ChunkResult(values, None, per_item * len(values)))

    def sizes(self) -> list[int]:
        return [len(chunk) for chunk, _ in self.cut]


def test_one_cheap_item_does_not_send_the_rest_to_one_worker() -> None:
    # The first item took 10 µs: a chunk of all 299 left would run them on one
    # worker, one after the other, whatever they cost.
    chunks = Chunks()
    batches = AdaptiveBatches(chunks.submit, [(n,) for n in range(300)], workers=2)
    batches.start()
    assert chunks.sizes() == [1, 1, 1, 1]
    chunks.end(0, per_item=1e-5)
    assert chunks.sizes()[4] <= 4


def test_chunks_grow_with_what_was_measured() -> None:
    chunks = Chunks()
    batches = AdaptiveBatches(chunks.submit, [(n,) for n in range(100_000)], workers=1)
    batches.start()
    for index in range(12):
        chunks.end(index, per_item=1e-6)
    sizes = chunks.sizes()
    assert sizes[:2] == [1, 1]
    assert all(b <= 4 * sum(sizes[: i + 1]) for i, b in enumerate(sizes[2:], 1))
    assert sizes[-1] >= 1000  # tiny items soon travel in big chunks


def test_a_flush_queues_every_item_left_at_once() -> None:
    chunks = Chunks()
    batches = AdaptiveBatches(chunks.submit, [(n,) for n in range(50)], workers=2)
    batches.start()
    batches.flush()
    queued = [args[0] for chunk, _ in chunks.cut for args in chunk]
    assert queued == list(range(50))
    assert len(batches.slots) == len(chunks.cut)


def test_batches_for_one_worker_spread_once_the_items_prove_long() -> None:
    chunks = Chunks()
    batches = AdaptiveBatches(
        chunks.submit, [(n,) for n in range(100)], workers=1, widen_to=4
    )
    batches.start()
    assert chunks.sizes() == [1, 1]
    chunks.end(0, per_item=0.01)  # half the target: worth a worker of its own
    assert len(chunks.cut) == 2 + 1 + 2 * (4 - 1)  # two in flight per worker
    chunks.end(1, per_item=0.01)
    assert len(chunks.cut) == 10  # spread once; then one new chunk per end


def test_batches_of_tiny_items_stay_on_one_worker() -> None:
    chunks = Chunks()
    batches = AdaptiveBatches(
        chunks.submit, [(n,) for n in range(100)], workers=1, widen_to=4
    )
    batches.start()
    chunks.end(0, per_item=1e-6)
    chunks.end(1, per_item=1e-6)
    assert len(chunks.cut) == 4


def test_a_flush_before_the_start_cuts_nothing() -> None:
    # The map may yet swap in its own slots (progress=): the start, refused
    # after shutdown, raises at the call to map instead.
    chunks = Chunks()
    batches = AdaptiveBatches(chunks.submit, [(n,) for n in range(50)], workers=2)
    batches.flush()
    assert chunks.cut == []
    assert not batches.slots


def test_a_shutdown_on_the_thread_cutting_a_chunk_does_not_wait_for_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As a signal handler's shutdown() lands: inside the map's own cut.
    executor = unirun.ThreadExecutor(max_workers=2)
    real = AdaptiveBatches._size

    def size(batches: AdaptiveBatches) -> int:
        monkeypatch.setattr(AdaptiveBatches, "_size", real)  # once
        executor.shutdown(wait=False)
        return real(batches)

    monkeypatch.setattr(AdaptiveBatches, "_size", size)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            list(executor.map(abs, range(100), chunksize=None))
        except RuntimeError as exc:
            raised.append(exc)

    mapping = threading.Thread(target=run)
    mapping.start()
    mapping.join(60)
    assert not mapping.is_alive(), "the shutdown waited for its own thread"
    assert [str(e) for e in raised] == ["cannot schedule new futures after shutdown"]
    executor.shutdown()
