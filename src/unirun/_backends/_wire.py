"""The messages between a process pool and its workers, and how they are framed.

Each message is one frame of :class:`multiprocessing.connection.Connection`'s
format (a length, then the bytes), so either end may read it with
``recv_bytes``; :func:`send_parts` writes one frame from several buffers with a
single ``writev``, never joining them into a copy. A frame starts with a header
(:data:`TASK`, :data:`REPLY`...) whose first byte says its kind. Light imports
only: workers load this module.

parent -> worker::

    TASK    task id, flags (CHUNK, FN_BYTES), function key | [function] | arguments
    FORGET  function keys the worker may drop
    b""     stop

worker -> parent::

    REPLY   task id, status | a pickled result, or an encoded exception
    CHUNK   task id, status | (error or None, seconds); the values are in the
            worker's result log (see _worker.ResultLog) and earlier PARTIALs
    PARTIAL task id | pickles of values, one after another (the log was full)
    OUTPUT  stream | text a task wrote to sys.stdout (1) or sys.stderr (2)
    LOG     | a pickled logging record
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence
    from multiprocessing.connection import Connection

__all__ = [
    "CHUNK",
    "FORGET",
    "LOG",
    "OUTPUT",
    "PARTIAL",
    "REPLY",
    "TASK",
    "send_parts",
]

# Message kinds (the first byte of every frame).
K_TASK, K_FORGET = 1, 2
K_REPLY, K_CHUNK, K_PARTIAL, K_OUTPUT, K_LOG, K_INIT_FAILED = 11, 12, 13, 14, 15, 16

#: A task: kind, task id, flags, function key (-1: the function travels inline).
TASK = struct.Struct("!BQBq")
#: Flags of a task.
F_CHUNK, F_FN_BYTES = 1, 2
#: The length of the function's bytes, when ``F_FN_BYTES`` is set.
LENGTH = struct.Struct("!Q")
#: A reply to a task: kind, task id, status.
REPLY = struct.Struct("!BQB")
#: Statuses of a reply.
OK, FAILED, UNREADABLE = 0, 1, 2
#: Kind and one byte (a stream number for OUTPUT, unused otherwise).
SHORT = struct.Struct("!BB")
#: A chunk's end, or values flushed from a full log: kind, task id, status.
CHUNK = PARTIAL = REPLY
#: Header of FORGET, OUTPUT and LOG messages.
FORGET = OUTPUT = LOG = SHORT

_SMALL = struct.Struct("!i")
_LARGE = struct.Struct("!iQ")


def send_parts(
    conn: Connection, parts: Sequence[bytes | memoryview], record: Any = None
) -> None:
    """Send ``parts`` as one message that ``conn.recv_bytes()`` reads whole.

    Blocks until everything is written. Writes with one ``writev`` (more only
    for messages bigger than the pipe buffer), without concatenating. With a
    ``record``, its ``sending`` becomes the message's size right before the
    first write, with no call between: a signal handler's error comes after
    it, or before anything was written.
    """
    total = sum(len(part) for part in parts)
    header = _LARGE.pack(-1, total) if total > 0x7FFFFFFF else _SMALL.pack(total)
    buffers = [memoryview(header), *(memoryview(part).cast("B") for part in parts)]
    fd = conn.fileno()
    if record is not None:
        record.sending = total + len(header)
    while buffers:
        written = os.writev(fd, buffers)
        while buffers and written >= len(buffers[0]):
            written -= len(buffers[0])
            buffers.pop(0)
        if buffers and written:
            buffers[0] = buffers[0][written:]
