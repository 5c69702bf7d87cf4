"""Ctrl-C landing inside submit(): nothing is left locked, shutdown returns,
and the statistics still add up.

A real child interpreter takes a storm of KeyboardInterrupts (SIGALRM, raised
by a Python handler at whatever bytecode the main thread is at) while it
submits, then shuts its executor down. A lock an interrupted submit left held
hangs that shutdown: the child then never prints its last line.

The thread pool's workers (auto's too) all start before the storm: an
interrupt landing in CPython's own ``Thread.start()`` can leave the new thread's
start-up event locked for good (a ``with`` interrupted inside ``__enter__``),
and that thread then never begins: no executor can join it.
``backends/test_thread_start.py`` covers what the pool does about interrupts in
``start()`` that CPython survives.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not hasattr(__import__("signal"), "setitimer"), reason="POSIX interval timers"
)

SCRIPT = textwrap.dedent(
    """
    import random, signal, sys, threading, time
    import unirun

    def echo(x):
        return x

    def interrupt(*_):
        raise KeyboardInterrupt

    kind = sys.argv[1]
    ex = unirun.executor(kind, max_workers=4)
    ex.submit(echo, 0).result()  # auto: the probe; later calls take the lane
    # Every worker of the pool (auto's thread pool: where its lane runs calls)
    # starts now, outside the storm.
    pool = ex if kind != "auto" else ex._router.pools.thread()
    if kind == "process":
        everyone = ex.Barrier(pool._max_workers + 1)
    else:
        everyone = threading.Barrier(pool._max_workers + 1)
    arrived = [pool.submit(everyone.wait) for _ in range(pool._max_workers)]
    everyone.wait(60)
    for future in arrived:
        future.result(timeout=60)
    signal.signal(signal.SIGALRM, interrupt)
    random.seed(0)
    interrupted = 0
    for _ in range(300):
        futures = []
        try:
            signal.setitimer(signal.ITIMER_REAL, random.uniform(1e-5, 3e-4))
            for i in range(50):
                futures.append(ex.submit(echo, i))
                time.sleep(0)
        except KeyboardInterrupt:
            interrupted += 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for future in futures:
            future.result(timeout=30)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    ex.shutdown(wait=True)
    print("shut down after", interrupted, "interruptions", flush=True)
    s = ex.statistics()
    print(s.submitted, s.queued, s.running, s.done + s.failed + s.cancelled)
    """
)


@pytest.mark.parametrize("kind", ["thread", "coroutine", "process", "auto"])
def test_shutdown_returns_after_interrupts_inside_submit(kind: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", SCRIPT, kind],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    words = child.stdout.split()
    assert words[:3] == ["shut", "down", "after"], child.stdout
    assert int(words[3]) > 0  # the storm did land inside submit()
    # Each interrupted submit counts once, as a task that ended (it ran, or
    # was cancelled with the Future its caller never got): none is left
    # queued, none is counted as ending without being submitted.
    submitted, queued, running, ended = map(int, words[-4:])
    assert (queued, running, ended) == (0, 0, submitted), child.stdout
