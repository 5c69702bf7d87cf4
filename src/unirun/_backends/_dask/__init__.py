"""The Dask backend (extra ``unirun[dask]``): never imported by ``import unirun``.

``executor`` is the executor (``jobs`` its tasks on their way, ``cluster`` the
embedded cluster), ``remote`` what runs on the workers, and ``primitives`` the
queues, locks and events held by the scheduler (``tokens``, ``queues``,
``locks``, ``events``).
"""

from __future__ import annotations

from .executor import DaskExecutor

__all__ = ["DaskExecutor"]
