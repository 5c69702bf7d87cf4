"""Fetch many URLs at once: aiohttp on coroutines, urllib on threads, both on auto.

The example starts its own aiohttp server on 127.0.0.1 (each reply waits 50 ms,
like a remote service) in a background thread, then fetches 40 URLs three ways
and prints the times. Waiting on the network is I/O-bound work: coroutines and
threads both overlap the waits; processes would add cost and nothing else.

    pip install aiohttp   # or: pip install "unirun[examples]"
    python examples/http_client.py
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

import unirun

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

LATENCY = 0.05
URLS = 40


async def reply(request: web.Request) -> web.Response:
    await asyncio.sleep(LATENCY)
    return web.Response(text=f"page {request.match_info['n']}")


@contextmanager
def local_server() -> Iterator[str]:
    """Serve ``/page/{n}`` on 127.0.0.1 from a thread; yield the base URL."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/page/{n}", reply)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)  # port 0: any free port
    loop.run_until_complete(site.start())
    host, port = runner.addresses[0][:2]
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def fetch(session: aiohttp.ClientSession, url: str) -> str:
    """Async client: thousands of these cost little more than one."""
    async with session.get(url) as response:
        return await response.text()


def fetch_blocking(url: str) -> str:
    """Blocking client from the stdlib: needs a thread per request in flight."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text: str = response.read().decode()
        return text


async def fetch_all(urls: list[str]) -> list[str]:
    """One task that fetches every URL over one session."""
    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(*(fetch(session, url) for url in urls))


async def on_coroutines(urls: list[str]) -> list[str]:
    # ``async with``: the tasks run on this loop, so they can share a session
    # that belongs to it.
    async with unirun.CoroutineExecutor() as ex, aiohttp.ClientSession() as session:
        return await ex.gather(*(ex.submit(fetch, session, url) for url in urls))


def timed(label: str, run: Callable[[], list[str]]) -> None:
    start = time.perf_counter()
    pages = run()
    elapsed = time.perf_counter() - start
    assert pages == [f"page {n}" for n in range(URLS)], pages  # in order, all
    print(f"{label:<40} {URLS} pages in {elapsed:.2f} s")


def main() -> None:
    with local_server() as base:
        urls = [f"{base}/page/{n}" for n in range(URLS)]
        print(f"one page takes {LATENCY} s; one after another: {URLS * LATENCY} s")
        timed("aiohttp, CoroutineExecutor", lambda: asyncio.run(on_coroutines(urls)))
        with unirun.ThreadExecutor(max_workers=URLS) as threads:
            timed(
                "urllib, ThreadExecutor(40)",
                lambda: list(threads.map(fetch_blocking, urls)),
            )
        with unirun.AutoExecutor() as ex:
            # auto sends the coroutine function to its event loop and measures
            # the blocking one: mostly waiting, so it goes to threads. A session
            # belongs to the loop that opened it, so from plain code the aiohttp
            # version opens its session inside the task (fetch_all).
            timed("urllib, AutoExecutor", lambda: list(ex.map(fetch_blocking, urls)))
            timed("aiohttp, AutoExecutor", lambda: ex.submit(fetch_all, urls).result())
            for fn in (fetch_blocking, fetch_all):
                print(f"auto ran {fn.__name__} on: {ex.explain(fn).backend}")


if __name__ == "__main__":
    main()
