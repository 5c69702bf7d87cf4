"""The backend registry: kind -> "module:Class", imported on first use."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._base import BaseExecutor

__all__ = ["BACKENDS", "load_backend"]

BACKENDS: dict[str, str] = {
    "thread": "unirun._backends.thread:ThreadExecutor",
    "process": "unirun._backends.process:ProcessExecutor",
    "coroutine": "unirun._backends.coroutine:CoroutineExecutor",
    "auto": "unirun._auto.executor:AutoExecutor",
    # The extra "dask": imported only when asked for.
    "dask": "unirun._backends._dask:DaskExecutor",
}


def load_backend(kind: str) -> type[BaseExecutor]:
    """Return the executor class registered for ``kind``.

    Raises:
        ValueError: no backend is registered under that name.
    """
    try:
        target = BACKENDS[kind]
    except (KeyError, TypeError):
        known = ", ".join(repr(name) for name in sorted(BACKENDS))
        raise ValueError(
            f"unknown executor kind {kind!r}; choose one of {known}"
        ) from None
    module_name, _, class_name = target.partition(":")
    cls: type[BaseExecutor] = getattr(importlib.import_module(module_name), class_name)
    return cls
