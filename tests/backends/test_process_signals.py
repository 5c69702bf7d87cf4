"""Ctrl-C and a killed parent: a real child interpreter, real signals, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="POSIX signals and process groups"
)

SCRIPT = textwrap.dedent(
    """
    import sys
    import threading
    import time

    import unirun


    def stuck(seconds):
        time.sleep(seconds)
        return seconds


    def announce_when_waiting():
        # Tell the test once the main thread is inside Future.result(), so that
        # the signal lands there and not a line earlier.
        main = threading.main_thread().ident
        while True:
            frame = sys._current_frames().get(main)
            while frame is not None:
                code = frame.f_code
                if code.co_name == "result" and code.co_filename.endswith("_future.py"):
                    print("waiting", flush=True)
                    return
                frame = frame.f_back
            time.sleep(0.01)


    if __name__ == "__main__":
        ex = unirun.ProcessExecutor(max_workers=2)
        futures = [ex.submit(stuck, 3600) for _ in range(2)]
        while len(ex._processes) < 2 or not all(f.running() for f in futures):
            time.sleep(0.01)
        print(" ".join(str(pid) for pid in ex._processes), flush=True)
        threading.Thread(target=announce_when_waiting, daemon=True).start()
        if sys.argv[1] == "map":
            list(ex.map(stuck, [3600, 3600]))
        elif sys.argv[1] == "gather":
            ex.gather(*futures).result()
        else:
            futures[0].result()
    """
)


def _start(tmp_path: object, mode: str) -> tuple[subprocess.Popen[str], list[int]]:
    script = os.path.join(str(tmp_path), "child.py")
    with open(script, "w") as f:
        f.write(SCRIPT)
    child = subprocess.Popen(
        [sys.executable, script, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal would make
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    waiting = child.stdout.readline()
    pids = [int(pid) for pid in line.split()]
    if len(pids) != 2 or waiting.strip() != "waiting":
        child.kill()
        _, stderr = child.communicate()
        raise AssertionError(f"the child did not start: {line!r} {stderr}")
    return child, pids


def _wait_gone(pids: list[int], limit: float = 30.0) -> list[int]:
    deadline = time.monotonic() + limit
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [
            pid
            for pid in alive
            if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]
        time.sleep(0.05)
    return alive


@pytest.mark.parametrize("mode", ["result", "map", "gather"])
def test_ctrl_c_stops_the_pool_without_orphans(tmp_path: object, mode: str) -> None:
    child, pids = _start(tmp_path, mode)
    try:
        # One Ctrl-C in a terminal reaches the whole foreground process group.
        os.killpg(child.pid, signal.SIGINT)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    assert child.returncode != 0
    assert "KeyboardInterrupt" in stderr
    # Only the parent reports it: workers ignore SIGINT, so no worker prints a
    # traceback of its own (multiprocessing prefixes those with the process name).
    assert "Process ForkServerProcess" not in stderr, stderr
    assert "worker_main" not in stderr, stderr
    assert "in stuck" not in stderr, stderr
    assert _wait_gone(pids) == []


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killed_parent_leaves_no_orphans(tmp_path: object, signum: int) -> None:
    child, pids = _start(tmp_path, "result")
    child.send_signal(signum)  # no clean-up code runs in the parent
    _, stderr = child.communicate(timeout=60)  # once the workers let go of it too
    try:
        assert _wait_gone(pids) == []
    finally:
        for pid in pids:
            if psutil.pid_exists(pid):
                os.kill(pid, signal.SIGKILL)
    # Nothing was left to clean up, so nothing says it cleaned up (a stdlib pool
    # leaves no such warning either).
    assert "resource_tracker" not in stderr, stderr
    for directory in ("/dev/shm", "/tmp"):
        if os.path.isdir(directory):
            assert not [n for n in os.listdir(directory) if f"-{child.pid}-" in n]


def test_workers_ignore_sigint() -> None:
    import unirun
    from _tasks import sleep_then

    with unirun.ProcessExecutor(max_workers=1) as ex:
        pid = ex.submit(os.getpid).result(timeout=60)
        os.kill(pid, signal.SIGINT)  # a Ctrl-C meant for the parent
        # The worker runs Python code (where a handler would act) and lives on.
        assert ex.submit(sleep_then, 0.2, "on").result(timeout=60) == "on"
        assert ex.submit(os.getpid).result(timeout=60) == pid


JOIN_SCRIPT = textwrap.dedent(
    """
    import asyncio
    import atexit
    import os
    import signal
    import sys
    import threading
    import time

    import unirun

    #: Where the main thread waits in shutdown(wait=True), by kind.
    WAITS_IN = {
        "process": ("_pool.py", "shutdown"),  # for the manager thread
        "thread": ("_starting.py", "join_launched"),  # for a worker
        "coroutine": ("_starting.py", "join_launched"),  # for the loop's thread
    }


    def hold(release):
        while not os.path.exists(release):
            time.sleep(0.01)
        time.sleep(0.5)  # still running when an exit that does not wait ends
        return "done"


    async def hold_async(release):
        while not os.path.exists(release):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        return "done"


    def interrupt_in_shutdown_then_release(release, where, name):
        # Ctrl-C once the main thread blocks in shutdown()'s wait for a thread
        # (in threading.py, called from WAITS_IN).
        main = threading.main_thread().ident
        while True:
            frame = sys._current_frames().get(main)
            inside = frame is not None and frame.f_code.co_filename.endswith(
                "threading.py"
            )
            while inside and frame is not None:
                code = frame.f_code
                if code.co_name == name and code.co_filename.endswith(where):
                    os.kill(os.getpid(), signal.SIGINT)
                    interrupted.wait()  # it landed: now let the task end
                    open(release, "w").close()
                    return
                frame = frame.f_back
            time.sleep(0.01)


    interrupted = threading.Event()


    if __name__ == "__main__":
        release, kind = sys.argv[1:]
        ex = unirun.executor(kind, max_workers=1)
        future = ex.submit(hold_async if kind == "coroutine" else hold, release)
        while not future.running():
            time.sleep(0.01)
        # Runs after the interpreter waited for threads at exit.
        atexit.register(lambda: print("done at exit:", future.done(), flush=True))
        threading.Thread(
            target=interrupt_in_shutdown_then_release,
            args=(release, *WAITS_IN[kind]),
            daemon=True,
        ).start()
        try:
            with ex:
                pass
        except KeyboardInterrupt:
            interrupted.set()
            print("interrupted", flush=True)
    """
)


@pytest.mark.parametrize("kind", ["process", "thread", "coroutine"])
def test_a_ctrl_c_in_shutdowns_wait_still_lets_the_exit_wait(
    tmp_path: object, kind: str
) -> None:
    # Before 3.13 a Ctrl-C landing in Thread.join() leaves the thread taken for
    # ended: the exit did not wait for the running task (the process pool's
    # manager thread, a thread worker, the coroutine loop's thread). A process
    # pool then ended with its shared memory left to the resource tracker,
    # which warned of it.
    script = os.path.join(str(tmp_path), "child.py")
    with open(script, "w") as f:
        f.write(JOIN_SCRIPT)
    release = os.path.join(str(tmp_path), "release")
    child = subprocess.run(
        [sys.executable, script, release, kind],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "interrupted" in child.stdout, child.stderr
    assert "done at exit: True" in child.stdout, child.stderr
    assert "leaked" not in child.stderr, child.stderr
