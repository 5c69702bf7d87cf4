"""A tiny HTTP server on 127.0.0.1 that answers every GET after a fixed delay.

It runs in a child process of its own, so its threads never compete with the
client threads under test for the GIL. :func:`delay_server` starts it, yields
its port, and stops and joins it; the server answers ``GET /N`` with body ``N``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.connection import Connection

__all__ = ["delay_server"]


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections under a burst of
    # concurrent clients, and a dropped SYN costs a one-second retransmit.
    request_queue_size = 1024
    daemon_threads = True
    delay = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        time.sleep(self.server.delay)
        body = self.path.lstrip("/").encode("ascii")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the benchmark's output clean: no access log."""


def _serve(conn: Connection, delay: float) -> None:
    """Child process: serve until the parent sends anything (or goes away)."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.delay = delay
    thread = threading.Thread(target=server.serve_forever, name="delay-server")
    thread.start()
    conn.send(server.server_address[1])
    with contextlib.suppress(EOFError, OSError):
        conn.recv()
    server.shutdown()
    thread.join()
    server.server_close()


@contextlib.contextmanager
def delay_server(delay: float) -> Iterator[int]:
    """Run the delay server in a child process; yield its port.

    Blocks until the server listens; on exit stops it and joins the process.
    """
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(child, delay), name="delay-server")
    process.start()
    child.close()
    try:
        if not parent.poll(30):
            raise RuntimeError("the delay server did not start within 30 s")
        port: int = parent.recv()
        yield port
    finally:
        with contextlib.suppress(OSError):
            parent.send(None)
        process.join(10)
        if process.exitcode is None:
            process.kill()
            process.join()
        parent.close()
