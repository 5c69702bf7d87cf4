"""What runs inside a worker process of :class:`ProcessExecutor`.

Light imports only. Messages are length-framed by the Connection:
parent -> worker: 8-byte task id + cloudpickled ``(fn, args, kwargs)``; empty
bytes ask the worker to exit. worker -> parent: 8-byte task id + 1 status byte +
payload (a pickled result, or an encoded exception).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import struct
import threading
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._call import call
from .._transfer import encode_exception

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

HEADER = struct.Struct("!Q")
REPLY = struct.Struct("!QB")
OK, FAILED, INIT_FAILED = 0, 1, 2
INIT_TASK_ID = 0


def _watch_parent(lifeline: Connection, parent_pid: int) -> None:
    """Exit this process as soon as the parent process is gone."""
    while True:
        try:
            if lifeline.poll(1.0):  # readable means EOF: the parent has died
                break
        except (EOFError, OSError):
            break
        if os.getppid() != parent_pid:
            break
    os._exit(1)


def _dumps_result(value: Any) -> bytes:
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)  # type: ignore[no-any-return]


def worker_main(
    conn: Connection,
    lifeline: Connection,
    initializer: bytes | None,
    initargs: tuple[Any, ...],
    max_tasks: int | None,
) -> None:
    """Serve tasks from ``conn`` until told to stop, the limit, or parent death."""
    # One Ctrl-C in the terminal reaches every process of the group: the parent
    # handles it; workers must not each print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_watch_parent, args=(lifeline, os.getppid()), daemon=True
    ).start()
    if initializer is not None:
        try:
            pickle.loads(initializer)(*initargs)
        except BaseException as exc:
            logging.getLogger("concurrent.futures").critical(
                "Exception in initializer:", exc_info=True
            )
            conn.send_bytes(
                REPLY.pack(INIT_TASK_ID, INIT_FAILED) + encode_exception(exc)
            )
            return
    done = 0
    while max_tasks is None or done < max_tasks:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        (task_id,) = HEADER.unpack_from(message)
        try:
            fn, args, kwargs = pickle.loads(memoryview(message)[HEADER.size :])
            del message
            reply = REPLY.pack(task_id, OK) + _dumps_result(call(fn, args, kwargs))
        except BaseException as exc:
            reply = REPLY.pack(task_id, FAILED) + encode_exception(exc)
        fn = args = kwargs = None
        conn.send_bytes(reply)
        del reply
        done += 1
