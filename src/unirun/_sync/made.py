"""The base of unirun's primitive types, which only an executor makes.

``unirun.Queue``, ``unirun.Lock`` and the rest name what ``ex.Queue()`` and
``ex.Lock()`` return; which class that is depends on where the executor's tasks
run. ``unirun.Queue()`` written as ``queue.Queue()`` would be says so, instead of
listing abstract methods.
"""

from __future__ import annotations

from abc import ABC
from typing import Any, Self

__all__ = ["MadeByExecutor"]


class MadeByExecutor(ABC):  # noqa: B024  # abstract are its subclasses
    """A primitive type whose instances an executor makes (``ex.Queue()``)."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        """Refuse the public type itself, with how to get one."""
        if cls.__abstractmethods__:
            name = cls.__name__
            raise TypeError(
                f"{name} cannot be instantiated directly: an executor makes one "
                f"that its tasks can share, e.g. executor.{name}(...) "
                f"(can't instantiate abstract class {name})"
            )
        return super().__new__(cls)
