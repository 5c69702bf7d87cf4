"""A FastAPI service that offloads CPU work to processes, blocking calls to threads.

An ``async def`` endpoint runs on the server's event loop: CPU work or a
blocking call made there stalls every other request. Awaiting a unirun Future
hands the work off and frees the loop:

- ``/primes/{limit}``: pure-Python CPU work, on a ``ProcessExecutor``;
- ``/lookup/{key}``: a blocking call (a synchronous database driver, say), on a
  ``ThreadExecutor``;
- ``/nap`` (``async def``, awaits a sleep) and ``/nap-sync`` (a plain ``def``
  that blocks, which FastAPI itself runs in its thread pool): the article's
  third mix, side by side.

The executors live as long as the app (FastAPI's lifespan), so leaving it shuts
them down and no worker process outlives the server. The example starts uvicorn
on 127.0.0.1, sends a burst of requests with httpx, stops the server and checks.

    pip install fastapi uvicorn httpx   # or: pip install "unirun[examples]"
    python examples/web_service.py
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from fastapi import FastAPI, Request

import unirun

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


def count_primes(limit: int) -> tuple[int, int]:
    """CPU-bound: count the primes below ``limit``; also say which process."""
    count = sum(
        1 for n in range(2, limit) if all(n % d for d in range(2, int(n**0.5) + 1))
    )
    return count, os.getpid()


def blocking_lookup(key: str) -> str:
    """A blocking call, as a synchronous client library makes."""
    time.sleep(0.05)
    return key.upper()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # ``async with`` shuts both down when the server stops, without blocking
    # the event loop while the workers finish.
    async with unirun.ProcessExecutor() as cpu, unirun.ThreadExecutor() as io:
        app.state.cpu, app.state.io = cpu, io
        yield


app = FastAPI(lifespan=lifespan)


@app.get("/primes/{limit}")
async def primes(limit: int, request: Request) -> dict[str, int]:
    count, pid = await request.app.state.cpu.submit(count_primes, limit)
    return {"limit": limit, "primes": count, "pid": pid}


@app.get("/lookup/{key}")
async def lookup(key: str, request: Request) -> dict[str, str]:
    return {
        "key": key,
        "value": await request.app.state.io.submit(blocking_lookup, key),
    }


@app.get("/nap")
async def nap() -> dict[str, float]:
    await asyncio.sleep(0.05)  # awaits: the loop serves others meanwhile
    return {"slept": 0.05}


@app.get("/nap-sync")
def nap_sync() -> dict[str, float]:
    time.sleep(0.05)  # blocks, but FastAPI runs a plain def off the loop
    return {"slept": 0.05}


async def timed_get(client: httpx.AsyncClient, path: str) -> tuple[str, float, Any]:
    start = time.perf_counter()
    response = await client.get(path)
    response.raise_for_status()
    return path.split("/")[1], time.perf_counter() - start, response.json()


async def burst(base: str) -> set[int]:
    """Send 24 requests at once; print the slowest reply of each kind."""
    paths = [f"/primes/{20_000 + i}" for i in range(6)]
    paths += [f"/lookup/key{i}" for i in range(6)] + ["/nap", "/nap-sync"] * 6
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        replies = await asyncio.gather(*(timed_get(client, path) for path in paths))
    for endpoint in ("primes", "lookup", "nap", "nap-sync"):
        slowest = max(t for name, t, _ in replies if name == endpoint)
        print(f"/{endpoint:<9} slowest of 6 replies: {slowest:.3f} s")
    return {body["pid"] for name, _, body in replies if name == "primes"}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    return True


async def main() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # any free port
    # Listening already: requests sent before uvicorn is up wait in the backlog.
    listener.listen()
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    pids = await burst(f"http://127.0.0.1:{port}")
    server.should_exit = True  # what Ctrl-C does: finish, run the lifespan's exit
    await serving
    listener.close()
    print(f"worker pids: {' '.join(map(str, sorted(pids)))}")
    print(f"worker processes left after shutdown: {sum(map(alive, pids))}")


if __name__ == "__main__":
    asyncio.run(main())
