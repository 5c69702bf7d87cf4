"""Type variables and the names of backends, shared by every module.

The backend names are written once, here: ``Model`` lists the concurrency models,
and every other list of names (executor kinds, per-task backend hints, auto's
verdicts, the registry's keys) is built from it.
"""

from __future__ import annotations

from typing import Literal, TypeVar, get_args

from typing_extensions import ParamSpec

__all__ = [
    "BACKENDS",
    "KINDS",
    "Backend",
    "Kind",
    "Model",
    "P",
    "T",
    "T_co",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = ParamSpec("P")

#: The three concurrency models; each is an executor kind and a backend.
Model = Literal["thread", "process", "coroutine"]
#: Where one task can run: a model, ``"inline"`` (as a hint: in the caller's
#: thread; as a verdict: with other short calls on one thread), or
#: ``"dask"`` (a Dask cluster: an AutoExecutor given one, or a DaskExecutor).
Backend = Literal[Model, "inline", "dask"]
#: The names accepted by :func:`unirun.executor`.
Kind = Literal[Model, "auto", "dask"]

#: Every :data:`Backend`, in order, for validating hints at run time.
BACKENDS: tuple[Backend, ...] = get_args(Backend)
#: Every :data:`Kind`, in order.
KINDS: tuple[Kind, ...] = get_args(Kind)
