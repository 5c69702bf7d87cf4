"""The caller's interpreter settings that a process worker takes on as it starts.

A forked worker inherits what the caller's script set before the pool started:
the recursion limit, the longest int a ``str()`` converts, the switch interval
and the warning filters. A worker of ours is a fresh interpreter, so these
travel with its settings, read when it starts, as a fork would read them. A
worker started before the caller changed one keeps the old value, as a forked
one would. Light imports only: the fork server preloads this module.
"""

from __future__ import annotations

import pickle
import sys
import warnings
from typing import Any

__all__ = ["InterpreterState"]


class InterpreterState:
    """The settings of this interpreter now; :meth:`apply` sets them in another."""

    __slots__ = ("int_digits", "recursion_limit", "switch_interval", "warning_filters")

    def __init__(self) -> None:
        self.recursion_limit = sys.getrecursionlimit()
        self.int_digits = sys.get_int_max_str_digits()
        self.switch_interval = sys.getswitchinterval()
        # One pickle each: a filter whose category the worker cannot import (a
        # class of the caller's __main__) is left out there, not the others.
        self.warning_filters = [
            data for data in map(_pickled, list(warnings.filters)) if data is not None
        ]

    def apply(self) -> None:
        """Set these settings in this interpreter (a worker, as it starts)."""
        sys.setrecursionlimit(self.recursion_limit)
        sys.set_int_max_str_digits(self.int_digits)
        sys.setswitchinterval(self.switch_interval)
        filters = [f for f in map(_unpickled, self.warning_filters) if f is not None]
        warnings.resetwarnings()
        # Each goes in front of those added before it: last first keeps the order.
        for action, message, category, module, lineno in reversed(filters):
            try:
                warnings.filterwarnings(
                    action,
                    message=message.pattern if message is not None else "",
                    category=category,
                    module=module.pattern if module is not None else "",
                    lineno=lineno,
                )
            except (TypeError, ValueError, AttributeError):
                continue  # one put in the list by hand, of a shape it refuses

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


def _pickled(item: Any) -> bytes | None:
    try:
        return pickle.dumps(item)
    except Exception:  # a filter of an odd shape: the worker keeps its own
        return None


def _unpickled(data: bytes) -> Any:
    try:
        return pickle.loads(data)
    except Exception:  # a category this process cannot import
        return None
