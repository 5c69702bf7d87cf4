"""Type variables and literals shared by every module."""

from __future__ import annotations

from typing import Literal, TypeVar

from typing_extensions import ParamSpec

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = ParamSpec("P")

#: The names accepted by :func:`unirun.executor`.
Kind = Literal["thread", "process", "coroutine", "auto"]
