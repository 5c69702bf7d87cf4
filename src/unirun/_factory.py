"""``unirun.executor(kind, **options)``: an executor by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._backends import load_backend

if TYPE_CHECKING:
    from ._base import BaseExecutor
    from ._types import Kind

__all__ = ["executor"]


def executor(kind: Kind = "auto", /, **options: Any) -> BaseExecutor:
    """Create an executor of the given kind with the constructor ``options``.

    ``executor("thread", max_workers=4)`` is ``ThreadExecutor(max_workers=4)``;
    ``executor()`` is an :class:`AutoExecutor`.

    Raises:
        ValueError: ``kind`` is not one of the registered kinds.
        TypeError: an option is not accepted by that kind's constructor.
    """
    return load_backend(kind)(**options)
