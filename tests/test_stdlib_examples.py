"""The examples of the concurrent.futures documentation, with only the names swapped."""

from __future__ import annotations

import http.server
import math
import threading
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest

import unirun

if TYPE_CHECKING:
    from collections.abc import Iterator

PRIMES = [
    112272535095293,
    112582705942171,
    112272535095293,
    115280095190773,
    115797848077099,
    1099726899285419,
]


def is_prime(n: int) -> bool:
    """The documentation's prime check, unchanged."""
    if n < 2:
        return False
    if n == 2:
        return True
    if n % 2 == 0:
        return False
    sqrt_n = math.floor(math.sqrt(n))
    return all(n % i != 0 for i in range(3, sqrt_n + 1, 2))


@pytest.mark.parametrize("cls", [unirun.ProcessExecutor, unirun.ThreadExecutor])
def test_process_pool_prime_example(cls: type[unirun.ThreadExecutor]) -> None:
    printed = []
    with cls() as executor:
        for number, prime in zip(PRIMES, executor.map(is_prime, PRIMES), strict=True):
            printed.append("%d is prime: %s" % (number, prime))  # noqa: UP031  # the documentation's own line
    assert printed == ["%d is prime: %s" % (n, is_prime(n)) for n in PRIMES]  # noqa: UP031


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the name http.server calls
        body = f"page {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def local_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def load_url(url: str, timeout: float) -> bytes:
    """The documentation's loader, unchanged."""
    with urllib.request.urlopen(url, timeout=timeout) as conn:
        return conn.read()  # type: ignore[no-any-return]  # urlopen is untyped here


@pytest.mark.parametrize(
    "cls", [unirun.ThreadExecutor, unirun.ProcessExecutor, unirun.CoroutineExecutor]
)
def test_thread_pool_url_example(local_server: str, cls: type[Any]) -> None:
    urls = [f"{local_server}/{name}" for name in ("a", "b", "c", "d", "e")]
    pages: dict[str, int] = {}
    with (
        cls(max_workers=5) if cls is not unirun.CoroutineExecutor else cls()
    ) as executor:
        future_to_url = {executor.submit(load_url, url, 60): url for url in urls}
        for future in unirun.as_completed(future_to_url):
            url = future_to_url[future]
            data = future.result()
            pages[url] = len(data)
    assert pages == {url: len(f"page /{url.rsplit('/', 1)[1]}") for url in urls}
