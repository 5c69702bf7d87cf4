"""AutoExecutor: measure each callable, route it to the backend that runs it best.

Data flow::

    submit(fn) --hint?--> that backend
       | async def? ------> coroutine backend (steps timed: loop-blocking -> thread)
       | verdict cached? -> inline (in the caller) | thread | process
       | probe running? --> held until the verdict, then routed (nothing runs twice)
       v
    probe: the call itself, on a worker thread, measured (profiling.py);
           the monitor's canary measures the GIL while it runs; the verdict
           (classify.py) is cached, and revised when later calls disagree.

    map(fn, items) -> the first item is the probe; the rest are routed as a
    whole: process chunks, thread batches (tiny items) or one task per item.

Inner executors are created on first need, so an all-thread workload never
starts a process.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import logging
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

from .._base import SHUTDOWN_MESSAGE, BaseExecutor
from .._call import is_async_callable
from .._checks import check_callable, check_initializer, check_size, describe
from .._cpu import usable_cpus
from .._errors import LoopBlockedWarning, TransferError, task_timed_out
from .._future import Future, chain
from .._map import MapIterator
from .._options import NO_OPTIONS, TaskOptions
from .._stats import Statistics, combine
from .._transfer import dumps_call
from .classify import BUSY_MIN, Costs, Facts, Verdict, busy_share, classify
from .loopguard import LOOP_BLOCK_S, StepReport, StepTimer
from .profiling import Monitor, Probe, ProbeSample, Window, free_threaded

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .._backends.coroutine import CoroutineExecutor
    from .._backends.process import ProcessExecutor
    from .._backends.thread import ThreadExecutor
    from .._progress import Progress

__all__ = ["AutoExecutor"]

_LOGGER = logging.getLogger("unirun")

#: An inline call this many times over the inline limit sends the callable back
#: to probing (its cost depends on its arguments).
REVISE_INLINE = 20.0
#: A thread-routed call this many times longer than its verdict's call, and
#: CPU-bound, sends the callable back to probing.
REVISE_GROWTH = 4.0
#: A process-routed call whose round trip is within this many no-op round trips
#: sends the callable back to probing.
REVISE_PROCESS = 3.0
#: A map whose remaining work is below this (seconds, estimated) never starts
#: processes for it.
MAP_PROCESS_MIN_S = 0.05
#: The most a thread hand-off is taken to cost (seconds), whatever was timed.
THREAD_COST_CAP = 0.001
#: Threads of the inner pool by default: waiting work needs many (anyio's
#: default thread limit); they start on demand.
AUTO_THREADS = 40
#: Worker processes per usable CPU in the pool for calls that compute and wait
#: (started on demand); CPU-bound calls get a pool of one per usable CPU.
PROCESSES_PER_CPU = 4
#: After the first call of an ``async def``, one call in this many has its steps
#: timed (the others run untouched, at the coroutine backend's own cost).
TIME_EVERY = 16
#: How many more probes a CPU-bound callable gets when the GIL test could not
#: tell (no free CPU during the canary, or too short a call).
RECHECKS = 1
#: The most callables whose verdicts are kept.
CACHE_SIZE = 4096


def _noop() -> None:
    """Do nothing: the task whose round trip is the dispatch cost."""


def _key(fn: Callable[..., Any]) -> Any:
    func = getattr(fn, "__func__", None)  # a bound method: its function
    target = fn if func is None else func
    try:
        hash(target)
    except TypeError:
        return id(target)
    return target


class _Held:
    __slots__ = ("args", "fn", "kwargs", "options", "outer")

    def __init__(
        self,
        outer: Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> None:
        self.outer = outer
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.options = options


class _Entry:
    """What is known about one callable."""

    __slots__ = (
        "async_calls",
        "blocks_loop",
        "held",
        "probe",
        "rechecks",
        "samples",
        "stale",
        "suspect",
        "timed",
        "transferable",
        "verdict",
    )

    def __init__(self) -> None:
        self.verdict: Verdict | None = None
        self.probe: Probe | None = None  # the undecided probe in flight
        self.held: list[_Held] = []
        self.stale = False
        self.rechecks = 0
        self.samples = 0
        self.blocks_loop = False
        self.suspect = False  # a long coroutine step not yet explained
        self.timed = False  # a coroutine call was timed in detail
        self.async_calls = 0
        self.transferable: tuple[bool, str] | None = None


class AutoExecutor(BaseExecutor):
    """Run each callable on the backend measured to suit it: threads, processes,
    coroutines or inline.

    ``async def`` functions run on the coroutine backend. A plain function's first
    call is a *probe*: it runs on a worker thread while its wall time, its own CPU
    time and its use of the GIL are measured; calls that arrive meanwhile wait for
    the verdict (nothing runs twice). Waiting work and GIL-releasing work go to
    threads, GIL-holding CPU work long enough to pay for a process round trip
    (measured on this machine) to processes, calls too short for any hand-off run
    inline. ``explain(fn)`` says what was decided and why; ``options(backend=...)``
    forces a backend. See docs/auto.md.

    Capabilities depend on the route a task takes: tasks routed to processes must
    pickle, and only tasks on the coroutine backend can be cancelled while running.

    Args:
        max_workers: the most workers of each inner pool (threads; processes,
            capped at the usable CPUs); default 40 threads (waiting work needs
            many; they start on demand), one process per usable CPU for
            CPU-bound calls, four per CPU for calls that compute and wait
            (their waits overlap).
        initializer: called in each worker (thread, process, event loop) before
            its first task. With an initializer, nothing runs inline.
        initargs: arguments for ``initializer``.
    """

    kind = "auto"
    default_chunksize = None
    _counts_submissions = False  # its inner executors count the tasks
    # Tasks may be routed to processes: arguments must pickle there, and the
    # executor's primitives must work across processes.
    crosses_processes = True
    uses_chunks = True
    cancels_running: ClassVar[bool] = False
    stops_on_timeout: ClassVar[bool] = False

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__()
        self._max_workers = check_size(max_workers, "max_workers")
        check_initializer(initializer)
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._entries: dict[Any, _Entry] = {}
        # async functions seen before, by the function itself: the fast path.
        self._async: dict[Any, _Entry] = {}
        self._thread: ThreadExecutor | None = None
        self._process: ProcessExecutor | None = None
        self._wide: ProcessExecutor | None = None
        self._coroutine: CoroutineExecutor | None = None
        self._process_lock = threading.Lock()
        self._thread_s: float | None = None
        self._process_s: float | None = None
        self._cpus = usable_cpus()
        self._free_threaded = free_threaded()
        self._monitor = Monitor(self._on_window)
        self._measurements = 0  # no-op tasks it ran to time the inner pools
        self._held_cancelled = 0  # calls cancelled while held behind a probe

    def _check_backend(self, backend: str | None) -> None:
        """Every backend hint is followed (TaskOptions validated the name)."""

    # -- inner executors ------------------------------------------------------------

    def _thread_executor(self) -> ThreadExecutor:
        with self._process_lock:
            if self._thread is None:
                from .._backends.thread import ThreadExecutor

                self._thread = ThreadExecutor(
                    self._max_workers or AUTO_THREADS,
                    thread_name_prefix=f"AutoExecutor-{id(self):#x}",
                    initializer=self._initializer,
                    initargs=self._initargs,
                )
            return self._thread

    def _process_executor(self, wide: bool = False) -> ProcessExecutor:
        """The pool for CPU-bound calls (one process per usable CPU), or with
        ``wide`` the one for calls that compute and wait (oversubscribed, so
        that their waits overlap). Each is started on first need."""
        with self._process_lock:
            inner = self._wide if wide else self._process
            if inner is None:
                from .._backends.process import ProcessExecutor

                workers = self._cpus * (PROCESSES_PER_CPU if wide else 1)
                if self._max_workers is not None:
                    workers = min(workers, self._max_workers)
                inner = ProcessExecutor(
                    workers, initializer=self._initializer, initargs=self._initargs
                )
                # Primitives of this executor may travel into its process tasks.
                inner._primitive_scope = self._primitive_scope
                if wide:
                    self._wide = inner
                else:
                    self._process = inner
            return inner

    def _coroutine_executor(self) -> CoroutineExecutor:
        with self._process_lock:
            if self._coroutine is None:
                from .._backends.coroutine import CoroutineExecutor

                self._coroutine = CoroutineExecutor(
                    initializer=self._initializer, initargs=self._initargs
                )
            return self._coroutine

    def _inner(self, backend: str) -> BaseExecutor:
        if backend == "thread":
            return self._thread_executor()
        if backend == "process":
            return self._process_executor()
        return self._coroutine_executor()

    # -- measured costs -------------------------------------------------------------

    def _thread_cost(self) -> float:
        if self._thread_s is None:
            pool = self._thread_executor()
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                pool._submit(_noop, (), {}, NO_OPTIONS).result()
                best = min(best, time.perf_counter() - start)
                self._measurements += 1
            # Busy neighbours holding the GIL inflate any timing taken in Python;
            # a hand-off never costs more than a millisecond by itself.
            self._thread_s = min(best, THREAD_COST_CAP)
        return self._thread_s

    def _process_cost(self) -> float:
        if self._process_s is None:
            pool = self._process_executor()
            try:
                pool._submit(_noop, (), {}, NO_OPTIONS).result()  # start a worker
                self._measurements += 1
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    pool._submit(_noop, (), {}, NO_OPTIONS).result()
                    best = min(best, time.perf_counter() - start)
                    self._measurements += 1
            except Exception:
                # No worker process can start here (e.g. a __main__ without the
                # `if __name__ == "__main__":` guard): never route to processes.
                _LOGGER.warning(
                    "AutoExecutor: worker processes cannot start; CPU-bound work "
                    "stays on threads",
                    exc_info=True,
                )
                best = float("inf")
            self._process_s = best
        return self._process_s

    def _costs(self) -> Costs:
        return Costs(
            thread_s=self._thread_s or 0.0,
            process_s=self._process_s,
            cpus=self._cpus,
            free_threaded=self._free_threaded,
        )

    # -- submit ---------------------------------------------------------------------

    def _schedule(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        return self._dispatch(fn, args, kwargs, options)

    def _dispatch(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        if options.backend is not None:
            return self._run_on(options.backend, fn, args, kwargs, options)
        try:
            known = self._async.get(fn)
        except TypeError:  # unhashable
            known = None
        if known is not None:
            # The common path for coroutines: no lock, no wrapper (the counter
            # may race; it only spaces out the timed calls).
            known.async_calls += 1
            if not (
                known.blocks_loop
                or known.suspect
                or known.async_calls % TIME_EVERY == 0
            ):
                inner = self._coroutine or self._coroutine_executor()
                return inner._submit(fn, args, kwargs, options)
            return self._submit_async(fn, args, kwargs, options, counted=True)
        if is_async_callable(fn):
            return self._submit_async(fn, args, kwargs, options)
        if self._thread_s is None:
            self._thread_cost()
        key = _key(fn)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= CACHE_SIZE:
                    del self._entries[next(iter(self._entries))]
                entry = self._entries[key] = _Entry()
            verdict = entry.verdict
            if entry.probe is not None:
                outer: Future[Any] = Future()
                entry.held.append(_Held(outer, fn, args, kwargs, options))
                return outer
            if verdict is None or entry.stale:
                probe = entry.probe = Probe()
                entry.stale = False
            else:
                probe = None
        if probe is not None:
            return self._start_probe(entry, probe, fn, args, kwargs, options)
        assert verdict is not None
        return self._route(entry, verdict, fn, args, kwargs, options)

    def _route(
        self,
        entry: _Entry,
        verdict: Verdict,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        backend = verdict.backend
        if backend == "inline":
            if options.timeout is None and self._initializer is None:
                return self._inline(entry, fn, args, kwargs)
            backend = "thread"
        if backend == "process":
            try:
                pool = self._process_executor(wide=verdict.busy < BUSY_MIN)
                future = pool._submit(fn, args, kwargs, options)
            except TransferError:
                backend = "thread"  # these arguments cannot travel: stay here
            else:
                self._watch_process_call(entry, future)
                return future
        if backend == "coroutine":
            return self._coroutine_executor()._submit(
                _await_call, (fn, args, kwargs), {}, options
            )
        measured = self._measured(entry, verdict, fn)
        return self._thread_executor()._submit(measured, args, kwargs, options)

    def _run_on(
        self,
        backend: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        """Run on the backend the caller asked for: the hint always wins."""
        if backend == "inline":
            self._counters.submitted()
            future: Future[Any] = self._new_future()
            future._start()
            if options.timeout is not None and options.timeout <= 0:
                future.set_exception(task_timed_out(options.timeout, "runs on"))
                return future
            start = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
                if is_async_callable(fn) or _is_coroutine(result):
                    from .._call import run_awaitable

                    result = run_awaitable(result)
            except BaseException as exc:
                future.set_exception(exc)
                return future
            took = time.perf_counter() - start
            if options.timeout is not None and took > options.timeout:
                future.set_exception(task_timed_out(options.timeout, "runs on"))
            else:
                future.set_result(result)
            return future
        return self._inner(backend)._submit(fn, args, kwargs, options)

    def _inline(
        self,
        entry: _Entry,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Future[Any]:
        self._counters.submitted()
        future: Future[Any] = self._new_future()
        future._start()
        start = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        took = time.perf_counter() - start
        if took > REVISE_INLINE * max(self._thread_s or 0.0, 50e-6):
            entry.stale = True  # far longer than its verdict said: probe again
        return future

    def _watch_process_call(self, entry: _Entry, future: Future[Any]) -> None:
        """A process-routed call back within three no-op round trips was far too
        small to send (a process verdict needs four): probe again. Queueing only
        ever makes the latency longer, so this never fires for a heavy call."""
        limit = REVISE_PROCESS * (self._process_s or 0.0)
        start = time.perf_counter()

        def check(done: cf.Future[Any]) -> None:
            if not done.cancelled() and time.perf_counter() - start < limit:
                entry.stale = True

        future.add_done_callback(check)

    def _measured(
        self, entry: _Entry, verdict: Verdict, fn: Callable[..., Any]
    ) -> Callable[..., Any]:
        """Wrap a thread-routed call so that a much heavier call triggers revision."""
        limit = max(REVISE_GROWTH * verdict.wall_s, 0.005)

        def measured(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                wall = time.perf_counter() - start
                if wall > limit and (time.thread_time() - cpu) >= BUSY_MIN * wall:
                    entry.stale = True

        return measured

    # -- probing ----------------------------------------------------------------------

    def _start_probe(
        self,
        entry: _Entry,
        probe: Probe,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
    ) -> Future[Any]:
        monitor = self._monitor
        probe.context = (entry, fn, args, kwargs)

        def probed(*args: Any, **kwargs: Any) -> Any:
            monitor.watch(probe)
            probe.begin()
            result: Any = None
            try:
                result = fn(*args, **kwargs)
            finally:
                sample = probe.end(_is_awaitable(result))
                self._decide(entry, probe, fn, args, kwargs, sample)
            return result

        try:
            future = self._thread_executor()._submit(probed, args, kwargs, options)
        except BaseException:
            self._release(entry, probe)
            raise
        # A probe that never ran (cancelled, or timed out before it started)
        # measured nothing: the calls held behind it probe again.
        future.add_done_callback(lambda _: self._release(entry, probe))
        return future

    def _on_window(self, probe: Probe, window: Window) -> None:
        """Decide early, from the canary's window, while a long probe still runs."""
        entry, fn, args, kwargs = probe.context
        sample = ProbeSample(
            wall_s=probe.elapsed(),
            cpu_s=window.probe_cpu,
            wait_s=window.probe_wait,
            others_cpu_s=window.others_cpu,
            window=window,
        )
        self._decide(entry, probe, fn, args, kwargs, sample, early=True)

    def _facts(
        self,
        entry: _Entry,
        sample: ProbeSample,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Facts:
        busy, overlap = busy_share(sample)
        transferable, why = entry.transferable or (None, "")
        return Facts(
            wall_s=sample.wall_s,
            cpu_s=sample.cpu_s,
            busy=busy,
            overlap=overlap,
            returned_awaitable=sample.returned_awaitable,
            transferable=transferable,
            transfer_error=why,
            samples=entry.samples + 1,
            saturated=sample.window is not None and sample.window.saturated,
        )

    def _decide(
        self,
        entry: _Entry,
        probe: Probe,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        sample: ProbeSample,
        *,
        early: bool = False,
    ) -> None:
        try:
            facts = self._facts(entry, sample, fn, args, kwargs)
            verdict = classify(facts, self._costs())
            if verdict is None:
                if entry.transferable is None and fn is not None:
                    entry.transferable = _transferable(fn, args, kwargs)
                facts = self._facts(entry, sample, fn, args, kwargs)
                verdict = classify(facts, self._costs())
                if verdict is None:
                    self._process_cost()
                    verdict = classify(facts, self._costs())
            assert verdict is not None
        except Exception:
            _LOGGER.exception("auto: could not classify a probe")
            verdict = None
        with self._lock:
            if not early:
                entry.samples += 1
            if verdict is not None:
                entry.verdict = dataclasses.replace(
                    verdict, samples=max(1, entry.samples)
                )
                if (
                    not early
                    and verdict.backend == "process"
                    and verdict.releases_gil is None
                    and entry.rechecks < RECHECKS
                ):
                    # Sent to processes though the GIL test could not tell (the
                    # machine lent no second CPU): measure again on a later call.
                    entry.rechecks += 1
                    entry.stale = True
            if entry.probe is not probe or entry.verdict is None:
                return
            entry.probe = None
            held, entry.held = entry.held, []
            self._settled.notify_all()
        self._dispatch_held(held)

    def _release(self, entry: _Entry, probe: Probe) -> None:
        """Let calls held behind a probe go on, once it is over either way."""
        with self._lock:
            if entry.probe is not probe:
                return
            entry.probe = None
            held, entry.held = entry.held, []
            self._settled.notify_all()
        self._dispatch_held(held)

    def _dispatch_held(self, held: list[_Held]) -> None:
        for call in held:
            if call.outer.cancelled():
                call.outer._start()  # notify concurrent.futures.wait()
                self._held_cancelled += 1
                continue
            try:
                inner = self._dispatch(call.fn, call.args, call.kwargs, call.options)
            except BaseException as exc:
                call.outer._set_exception_if_pending(exc)
                continue
            chain(call.outer, inner)

    # -- coroutines -------------------------------------------------------------------

    def _submit_async(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: TaskOptions,
        counted: bool = False,
    ) -> Future[Any]:
        key = _key(fn)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry()
        if len(self._async) >= CACHE_SIZE:
            self._async.clear()
        try:
            self._async[fn] = entry
        except TypeError:  # unhashable: always the slow path
            pass
        if entry.blocks_loop:
            # Off the shared loop: a worker thread runs it on its own loop.
            return self._thread_executor()._submit(fn, args, kwargs, options)
        with self._lock:
            # The first call, and every call while a long step is unexplained,
            # is timed in detail (CPU time and context switches per step); one
            # call in TIME_EVERY is timed lightly; the others run untouched.
            detailed = entry.suspect or not entry.timed
            entry.timed = True
            if not counted:
                entry.async_calls += 1
            timed = detailed or entry.async_calls % TIME_EVERY == 0
        if not timed:
            return self._coroutine_executor()._submit(fn, args, kwargs, options)

        def on_done(report: StepReport) -> None:
            self._coroutine_done(entry, fn, report)

        return self._coroutine_executor()._submit(
            _guarded, (fn, args, kwargs, on_done, detailed), {}, options
        )

    def _coroutine_done(
        self, entry: _Entry, fn: Callable[..., Any], report: StepReport
    ) -> None:
        longest, wall, busy = report.longest, report.wall, report.busy
        with self._lock:
            entry.samples += 1
            first_block = report.blocked and not entry.blocks_loop
            if report.blocked:
                entry.blocks_loop = True
                reason = (
                    f"it is a coroutine, but one step ran {longest * 1e3:.0f} ms "
                    "without awaiting and blocked the event loop, so it runs on a "
                    "worker thread's own loop"
                )
                backend = "thread"
            elif entry.blocks_loop:
                return
            else:
                # A long step that a detailed timer did not confirm was GIL
                # starvation: the suspicion is cleared.
                entry.suspect = longest > LOOP_BLOCK_S and not report.detailed
                reason = "it is an async function, so it runs on the event loop"
                backend = "coroutine"
            entry.verdict = Verdict(
                backend=backend,  # type: ignore[arg-type]  # one of the literals
                reason=reason,
                wall_s=wall,
                cpu_s=busy,
                cpu_ratio=min(1.0, busy / wall) if wall else 0.0,
                busy=min(1.0, busy / wall) if wall else 0.0,
                releases_gil=None,
                transferable=None,
                samples=entry.samples,
            )
        if first_block:
            with contextlib.suppress(Warning):  # a warnings filter set to "error"
                warnings.warn(
                    f"coroutine {describe(fn)} blocked the event loop for "
                    f"{longest * 1e3:.0f} ms in one step; AutoExecutor runs its "
                    "later calls off the shared loop",
                    LoopBlockedWarning,
                    stacklevel=1,
                )

    # -- explain ----------------------------------------------------------------------

    def explain(self, fn: Callable[..., Any]) -> Verdict | None:
        """Return the current verdict for ``fn``, or ``None`` if it has not run here.

        The verdict names the backend, says why in one sentence, and carries the
        measurements behind it. Thread-safe; does not block.
        """
        with self._lock:
            entry = self._entries.get(_key(fn))
            return None if entry is None else entry.verdict

    # -- map --------------------------------------------------------------------------

    def _is_settled(self, fn: Callable[..., Any]) -> bool:
        """Whether ``fn`` has a verdict that no probe is about to replace."""
        with self._lock:
            entry = self._entries.get(_key(fn))
            return (
                entry is not None
                and entry.verdict is not None
                and entry.probe is None
                and not entry.stale
            )

    def _map(
        self,
        fn: Callable[..., Any],
        iterables: tuple[Iterable[Any], ...],
        timeout: float | None,
        chunksize: int | None,
        buffersize: int | None,
        options: TaskOptions,
        progress: Progress | None = None,
    ) -> MapIterator[Any]:
        if (
            buffersize is not None
            or options.backend is not None
            or is_async_callable(fn)
        ):
            # One task per item through submit: bounded submission, a forced
            # backend, or coroutines (which need no batching).
            return super()._map(
                fn, iterables, timeout, 1, buffersize, options, progress
            )
        if chunksize is not None and chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        check_callable(fn)
        if self._shutdown:
            raise RuntimeError(SHUTDOWN_MESSAGE)
        end_time = None if timeout is None else timeout + time.monotonic()
        items = list(zip(*iterables, strict=False))
        from .mapping import RoutedMap

        routed = RoutedMap(self, fn, items, options, chunksize)
        return MapIterator(
            lambda item: None,
            iter(()),
            end_time=end_time,
            buffersize=None,
            chunked=True,
            keep_alive=self,
            batches=routed,  # type: ignore[arg-type]  # same interface as AdaptiveBatches
            progress=progress,
            total=len(items),
        )

    def _map_plan(self, fn: Callable[..., Any], rest: list[tuple[Any, ...]]) -> str:
        """Where the items after the probe go: process, batch, thread or submit."""
        verdict = self.explain(fn)
        with self._lock:
            entry = self._entries.get(_key(fn))
        if verdict is None or entry is None:
            return "submit"
        if verdict.backend == "process":
            return "process"
        if verdict.backend == "coroutine":
            return "submit"
        if verdict.backend == "inline":
            # Too small for any hand-off: batches on one thread beat even
            # chunked processes (each item would still be pickled twice).
            return "batch"
        cpu_holding = (
            verdict.busy >= BUSY_MIN
            and verdict.releases_gil is not True
            and not self._free_threaded
            and self._cpus >= 2
        )
        # Its own cost: CPU time (the wall time may hold GIL waits).
        cost = verdict.cpu_s
        if cpu_holding and len(rest) * cost >= MAP_PROCESS_MIN_S:
            # Short calls, but many: chunks can pay for the trip where one can't.
            if entry.transferable is None:
                entry.transferable = _transferable(fn, rest[0], {})
            if entry.transferable[0]:
                per_chunk = len(rest) * cost / (2 * self._cpus)
                if per_chunk >= 4 * self._process_cost():
                    return "process"
        return "thread"

    # -- shutdown ---------------------------------------------------------------------

    def _close(self, wait: bool, cancel_futures: bool) -> None:
        # Calls held behind a running probe are routed first (or cancelled, with
        # cancel_futures).
        with self._lock:
            if cancel_futures:
                for entry in self._entries.values():
                    for call in entry.held:
                        call.outer.cancel()
        if cancel_futures:
            # Cancel what waits in the inner queues now (probes included: a
            # cancelled probe releases the calls held behind it).
            with self._process_lock:
                inners = [self._coroutine, self._thread, self._process, self._wide]
            for inner in inners:
                if inner is not None:
                    inner.shutdown(False, cancel_futures=True)
        with self._lock:
            if wait:
                while any(e.probe is not None for e in self._entries.values()):
                    self._settled.wait()
        if wait:
            self._close_inner(wait, cancel_futures)
        else:
            threading.Thread(
                target=self._close_after_probes,
                args=(cancel_futures,),
                name=f"AutoExecutor-shutdown-{id(self):#x}",
            ).start()

    def _close_after_probes(self, cancel_futures: bool) -> None:
        with self._lock:
            while any(e.probe is not None for e in self._entries.values()):
                self._settled.wait()
        self._close_inner(True, cancel_futures)

    def _close_inner(self, wait: bool, cancel_futures: bool) -> None:
        self._monitor.close()
        with self._process_lock:
            inners = [self._coroutine, self._thread, self._process, self._wide]
        for inner in inners:
            if inner is not None:
                inner.shutdown(wait, cancel_futures=cancel_futures)

    def statistics(self) -> Statistics:
        """A snapshot of the tasks of every inner executor, and the verdicts.

        Calls held behind a running probe count as queued.
        """
        with self._process_lock:
            inners = [self._coroutine, self._thread, self._process, self._wide]
        parts = [inner.statistics() for inner in inners if inner is not None]
        parts.append(self._counters.snapshot())  # calls run inline
        with self._lock:
            calls = [call for entry in self._entries.values() for call in entry.held]
            skipped = self._held_cancelled
            verdicts = {
                describe(key) if callable(key) else str(key): entry.verdict
                for key, entry in self._entries.items()
                if entry.verdict is not None
            }
        parts.append(_held_record(calls, skipped))
        return combine(parts, verdicts, self._measurements)

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown else "running"
        return f"<AutoExecutor max_workers={self._max_workers} {state}>"


async def _await_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Call a function that returns an awaitable, on the loop, and await it."""
    return await fn(*args, **kwargs)


async def _guarded(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    on_done: Callable[[StepReport], None],
    detailed: bool,
) -> Any:
    """Await ``fn(*args, **kwargs)`` with each of its steps timed."""
    return await StepTimer(fn(*args, **kwargs), on_done, detailed)


def _is_awaitable(value: object) -> bool:
    return hasattr(type(value), "__await__") and not isinstance(value, cf.Future)


def _is_coroutine(value: object) -> bool:
    import inspect

    return inspect.iscoroutine(value)


def _held_record(calls: list[_Held], skipped: int) -> Statistics:
    """Calls held behind probes as a record to combine: queued, or cancelled
    (``skipped``: cancelled ones no longer held)."""
    cancelled = sum(1 for call in calls if call.outer.cancelled())
    return Statistics(
        submitted=len(calls) + skipped,
        queued=len(calls) - cancelled,
        running=0,
        done=0,
        failed=0,
        cancelled=cancelled + skipped,
        timed_out=0,
        workers_alive=0,
        workers_started=0,
        workers_replaced=0,
    )


def _transferable(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, str]:
    try:
        dumps_call(fn, args, kwargs)
    except TransferError as exc:
        cause = exc.__cause__
        text = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
        return False, text.splitlines()[0][:120]
    return True, ""
