"""Auto-selection: measure each callable and route it to the backend that suits it.

``profiling`` measures (with ``canary``, the GIL test), ``classify`` decides (a
pure function), ``verdicts`` caches the verdicts and runs the probes, ``pools``
holds the inner executors, ``routing`` sends each call where its verdict says,
``coroutines`` (with ``loopguard``) times coroutine steps, ``mapping`` plans a
``map``, and ``executor`` is the front that ties them together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .classify import Verdict
from .executor import AutoExecutor

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["AutoExecutor", "Verdict", "profile"]


def profile(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Verdict:
    """Call ``fn(*args, **kwargs)`` once now, measured, and return its verdict.

    The call runs as an :class:`AutoExecutor` probe would: on a worker thread
    (an ``async def`` on an event loop), with its wall time, CPU time and use of
    the GIL measured; a CPU-bound call that holds the GIL also has a process
    round trip measured, which starts a worker process. Blocks until the call
    returns.

    Raises:
        TypeError: ``fn`` is not callable.
        Exception: whatever the call raised.
    """
    with AutoExecutor(max_workers=2) as executor:
        executor.submit(fn, *args, **kwargs).result()
        verdict = executor.explain(fn)
    assert verdict is not None  # set before the call's result is delivered
    return verdict
