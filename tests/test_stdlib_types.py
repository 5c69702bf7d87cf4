"""Code that checks for the stdlib's pool types, as asyncio does.

``loop.set_default_executor()`` takes only a ``ThreadPoolExecutor`` (a
``TypeError`` for anything else since Python 3.11), and libraries pick how to
ship a call by ``isinstance(executor, ProcessPoolExecutor)``. A drop-in passes
those checks, and brings nothing of the stdlib's own code with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import pickle
import threading

import pytest

import unirun

PAIRS: list[tuple[type[unirun.ThreadExecutor | unirun.ProcessExecutor], type]] = [
    (unirun.ThreadExecutor, cf.ThreadPoolExecutor),
    (unirun.ProcessExecutor, cf.ProcessPoolExecutor),
]


@pytest.mark.parametrize(("ours", "stdlib"), PAIRS)
def test_an_executor_is_an_instance_of_the_stdlib_pool_it_replaces(
    ours: type[unirun.ThreadExecutor | unirun.ProcessExecutor], stdlib: type
) -> None:
    with ours(max_workers=1) as executor:
        assert isinstance(executor, stdlib)
        assert executor.submit(abs, -3).result() == 3


@pytest.mark.parametrize(("ours", "stdlib"), PAIRS)
def test_no_method_of_the_stdlib_pool_runs_on_ours(ours: type, stdlib: type) -> None:
    # Each of its names is ours, or absent as it was before the stdlib's class
    # became a base: the stdlib's code would run on attributes ours lacks.
    for name in vars(stdlib):
        owner = next((c for c in ours.__mro__ if name in vars(c)), None)
        assert owner is not stdlib, f"{stdlib.__name__}.{name} runs on {ours.__name__}"


@pytest.mark.parametrize("name", ["_spawn_process", "_adjust_process_count"])
def test_the_process_pools_own_helpers_stay_absent(name: str) -> None:
    assert hasattr(cf.ProcessPoolExecutor, name)  # what the test stands on
    with unirun.ProcessExecutor(max_workers=1) as executor:
        assert not hasattr(executor, name)


def test_unirun_threads_serve_as_asyncios_default_executor() -> None:
    executor = unirun.ThreadExecutor(max_workers=2, thread_name_prefix="app")

    async def main() -> list[str]:
        asyncio.get_running_loop().set_default_executor(executor)
        name = threading.current_thread
        names = await asyncio.gather(
            *(asyncio.to_thread(lambda: name().name) for _ in range(4))
        )
        await asyncio.get_running_loop().run_in_executor(None, abs, -1)
        return names

    names = asyncio.run(main())
    assert len(names) == 4
    assert all(name.startswith("app") for name in names)
    # asyncio.run() shut the default executor down, waiting for its threads.
    assert executor._shutdown
    with pytest.raises(RuntimeError):
        executor.submit(abs, 1)


WRONG_CALLS = {
    "submit": lambda ex: ex.submit(),
    "map": lambda ex: ex.map(),
    "shutdown": lambda ex: ex.shutdown(True, False),
}


@pytest.mark.parametrize(("ours", "stdlib"), PAIRS)
@pytest.mark.parametrize("method", list(WRONG_CALLS))
def test_a_wrong_call_names_the_executor_as_the_stdlib_names_its_pool(
    ours: type[unirun.ThreadExecutor | unirun.ProcessExecutor],
    stdlib: type[cf.ThreadPoolExecutor | cf.ProcessPoolExecutor],
    method: str,
) -> None:
    messages = []
    for cls in (stdlib, ours):
        with cls(max_workers=1) as executor, pytest.raises(TypeError) as caught:
            WRONG_CALLS[method](executor)
        messages.append(str(caught.value).replace(cls.__name__, "<pool>"))
    theirs, mine = messages
    if method == "map" and stdlib is cf.ThreadPoolExecutor:  # inherited there
        theirs = theirs.replace("Executor.map", "<pool>.map")
    assert mine == theirs


@pytest.mark.parametrize("method", list(WRONG_CALLS))
@pytest.mark.parametrize(("ours", "stdlib"), PAIRS)
def test_an_executor_s_methods_pickle_by_name_as_the_stdlib_pool_s(
    ours: type, stdlib: type, method: str
) -> None:
    for cls in (stdlib, ours):
        function = getattr(cls, method)
        assert pickle.loads(pickle.dumps(function)) is function
