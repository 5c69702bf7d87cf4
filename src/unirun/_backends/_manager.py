"""What the manager thread of a :class:`~._pool.Pool` does with each event.

The manager waits on every worker's pipe and exit sentinel, the wake-up pipe
and the next deadline (:meth:`ManagerSteps._step`), then::

    a message     REPLY/CHUNK -> the task's Future; PARTIAL -> a chunk's values;
                  OUTPUT/LOG -> the pool's OutputRelay         (_handle)
    an exit       the worker's task fails, a chunk keeps its values (_reap)
    a deadline    the worker is killed, its task fails          (_time_out)

and then starts the workers that are missing and feeds the idle ones.
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import time
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from .._checks import wait_time
from .._errors import WorkerCrashedError, task_timed_out
from . import _wire
from ._outcomes import chunk_result, decode, deliver
from ._records import SENT, UNSENT, describe_exit, read_values

if TYPE_CHECKING:
    import threading
    from collections import deque

    from ._output import OutputRelay
    from ._records import Task, WorkerRecord

__all__ = ["ManagerSteps"]


class ManagerSteps:
    """The manager thread's steps of a :class:`~._pool.Pool` (a mixin).

    Only the manager thread runs them (and :meth:`_break`, :meth:`_receive`
    also the pool's close); they change the pool's lists under its lock.
    """

    lock: threading.Lock
    workers: list[WorkerRecord]
    idle: list[WorkerRecord]
    new: list[WorkerRecord]
    pending: deque[Task]
    expired: list[Task]
    selector: selectors.BaseSelector
    relay: OutputRelay
    settings: dict[str, Any]
    max_workers: int
    wake_r: int
    handing: tuple[WorkerRecord, Task] | None
    interrupted: bool
    shutting_down: bool
    broken: str | None
    lost: int

    if TYPE_CHECKING:  # in Pool

        def _start_worker(self) -> None: ...
        def _feed_idle(self) -> None: ...

    def _watch_new_workers(self) -> None:
        with self.lock:
            new, self.new = self.new, []
        for worker in new:
            self.selector.register(worker.conn, selectors.EVENT_READ, worker)
            self.selector.register(
                worker.process.sentinel, selectors.EVENT_READ, worker
            )

    def _step(self) -> bool:
        """Wait for and handle events once; return True when the pool is done."""
        self._watch_new_workers()
        with self.lock:
            deadlines = [
                w.task.deadline
                for w in self.workers
                if w.task is not None and w.task.deadline is not None
            ]
        ready = self.selector.select(wait_time(min(deadlines)) if deadlines else None)
        exited = []
        for key, _ in ready:
            worker = key.data
            if worker is None:
                os.read(self.wake_r, 4096)
            elif key.fileobj is worker.conn:
                self._receive_one(worker)
            else:
                exited.append(worker)
        if self.interrupted:
            self._repair()
        for worker in exited:
            self._reap(worker)
        now = time.monotonic()
        with self.lock:
            workers = list(self.workers)
        for worker in workers:
            task = worker.task
            if worker.killing or (
                task is not None and task.deadline is not None and task.deadline <= now
            ):
                self._time_out(worker)
        self._replace_workers()
        self._feed_idle()
        self._fail_expired()
        with self.lock:
            if self.broken:
                return True
            busy = any(w.task is not None for w in self.workers)
            return self.shutting_down and not self.pending and not busy

    def _repair(self) -> None:
        """Finish the hand-over of a task to a worker that a signal handler's
        error (Ctrl-C) cut short in the main thread (``Pool._feed_idle``).

        The main thread recorded the pair before changing anything. A task
        not given to the worker yet is still first in line (a started one is
        handed over as such by the next feed); one given to it is sent unless
        its message was. A message cut while being written is ended by
        replacing the worker, which fails that task; but one no bigger than
        ``PIPE_BUF`` is written whole or not at all, and the worker, idle, has
        read its pipe empty: it was written.
        """
        with self.lock:
            handing = self.handing
            if not self.interrupted or handing is None:
                return  # another thread repairs it, or nothing to repair
            self.interrupted = False  # this thread repairs it
            worker, task = handing
            sending = SENT
            if worker.task is task:
                if task in self.pending:
                    self.pending.remove(task)
                if worker in self.idle:
                    self.idle.remove(worker)
                sending = worker.sending
                if sending > select.PIPE_BUF:
                    worker.killing = True  # cut mid-message: see the docstring
        # If the main thread is cut short again here, the record is still
        # there, and the worker's `sending` tells how far this went.
        if sending == UNSENT:
            with contextlib.suppress(OSError):  # died: its sentinel tells
                worker.send(task)
        elif sending > select.PIPE_BUF and worker.process.exitcode is None:
            worker.process.kill()
        with self.lock:
            if self.handing is handing:  # not a later hand-over's
                self.handing = None

    def _fail_expired(self) -> None:
        """Fail the tasks that had no time left as they started: here, in the
        manager's own loop, holding no lock. Where a worker was found for them
        (maybe a submit, holding its executor's locks) their done-callbacks,
        which may submit again, would run under those locks."""
        with self.lock:
            expired, self.expired = self.expired, []
        for task in expired:
            task.future.set_exception(task_timed_out(task.timeout, "cancelled"))

    def _receive_one(self, worker: WorkerRecord) -> None:
        """Handle the message the selector saw (it reports the next one again)."""
        try:
            self._handle(worker, worker.conn.recv_bytes())
        except (EOFError, OSError):
            pass  # the worker is gone; _reap handles it

    def _receive(self, worker: WorkerRecord) -> None:
        """Handle every message waiting from ``worker``."""
        try:
            while worker.conn.poll():
                self._handle(worker, worker.conn.recv_bytes())
        except (EOFError, OSError):
            pass  # the worker is gone; _reap handles it

    def _handle(self, worker: WorkerRecord, message: bytes) -> None:
        kind = message[0]
        if kind == _wire.K_OUTPUT:
            stream = message[1]
            self.relay.output(worker.id, stream, message[_wire.OUTPUT.size :])
            return
        if kind == _wire.K_LOG:
            self.relay.log(worker.id, message[_wire.LOG.size :])
            return
        _, task_id, status = _wire.REPLY.unpack_from(message)
        body = memoryview(message)[_wire.REPLY.size :]
        if kind == _wire.K_INIT_FAILED:
            # As the stdlib: broken once the worker has exited, so that what it
            # logged on its way out (through a queue's thread) is delivered.
            worker.process.join(5)
            self._break(
                "A process initializer failed, the process pool is not usable anymore"
            )
            return
        task = worker.task
        if task is None or task.id != task_id:
            return
        if kind == _wire.K_PARTIAL:
            error = read_values(bytes(body), task.values)
            if error is not None:
                task.values.append(error)  # kept in order; reported at its place
            return
        with self.lock:
            worker.task = None
            worker.clock.end()
            worker.done += 1
            retiring = (
                self.settings["max_tasks"] is not None
                and worker.done >= self.settings["max_tasks"]
            )
            if not worker.killing and not retiring:
                self.idle.append(worker)
        outcome = decode(worker, task, kind, status, body)
        self.relay.end_of_task(worker.id, lambda: deliver(task.future, outcome))

    def _reap(self, worker: WorkerRecord) -> None:
        self._receive(worker)  # a reply may have been sent just before the exit
        worker.process.join()
        with self.lock:
            if worker in self.workers:
                self.workers.remove(worker)
            if worker in self.idle:
                self.idle.remove(worker)
            task, worker.task = worker.task, None
            retired = (
                task is None
                and not worker.killing
                and worker.process.exitcode == 0
                and worker.done > 0
            )
            if not retired and not self.shutting_down:
                self.lost += 1
        for fileobj in (worker.conn, worker.process.sentinel):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fileobj)
        if task is not None and not task.future.done() and not worker.abandoned:
            if task.timed_out:
                error: BaseException = task_timed_out(task.timeout, "killed")
            else:
                error = WorkerCrashedError(
                    "A process in the process pool was terminated abruptly while the "
                    f"future was running ({describe_exit(worker.process.exitcode)})."
                )
            if task.chunk:
                outcome: tuple[bool, Any] = (
                    True,
                    chunk_result(worker, task, error),
                )
            else:
                outcome = (False, error)
            self.relay.end_of_task(worker.id, lambda: deliver(task.future, outcome))
        worker.conn.close()
        worker.log.close()

    def _time_out(self, worker: WorkerRecord) -> None:
        task = worker.task
        if task is not None and not worker.killing:
            if task.chunk:
                task.timed_out = True  # its values so far are read when it is reaped
            else:
                task.future._set_exception_if_pending(
                    task_timed_out(task.timeout, "killed")
                )
        with self.lock:
            worker.killing = True
            if worker in self.idle:
                self.idle.remove(worker)
        if worker.process.exitcode is None:
            worker.process.kill()

    def _replace_workers(self) -> None:
        stranded: list[Task] = []
        with self.lock:
            if self.broken:
                return
            live = [w for w in self.workers if not w.killing]
            missing = min(len(self.pending), self.max_workers - len(self.workers))
            missing -= len([w for w in live if w in self.idle])
            try:
                for _ in range(max(0, missing)):
                    self._start_worker()
            except Exception as exc:
                # As a submit whose worker cannot start fails (in the stdlib
                # too): the pool stays usable, the next submit tries again.
                error = exc
                if not self.workers:  # no worker will ever take these
                    stranded, self.pending = list(self.pending), type(self.pending)()
        for task in stranded:
            broken = BrokenProcessPool(f"a worker process could not start: {error!r}")
            broken.__cause__ = error
            task.future._set_exception_if_pending(broken)

    def _break(self, reason: str) -> None:
        with self.lock:
            self.broken = reason
            tasks = list(self.pending)
            self.pending.clear()
            for worker in self.workers:
                # Not killed: every worker gets the stop message and exits on its
                # own (killed only after a grace period), flushing what it logged.
                if worker.task is not None:
                    tasks.append(worker.task)
                    worker.task = None
        for task in tasks:
            task.future._set_exception_if_pending(BrokenProcessPool(reason))
