"""How a call that cannot be pickled fails: a TransferError that is also what
pickling raised, as ``ProcessPoolExecutor`` fails it with the latter."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import unirun
from unirun._errors import transfer_error_from


class _Meta(type):
    pass


class WithMetaclass(Exception, metaclass=_Meta):
    """An exception class with a metaclass of its own."""


class Slotted(Exception):
    """An exception class with slots."""

    __slots__ = ("detail",)


class NeedsTwo(Exception):
    """An exception whose constructor and text need arguments of its own."""

    def __init__(self, first: Any, second: Any) -> None:
        super().__init__(first, second)
        self.first = first

    def __str__(self) -> str:
        return f"{self.first}!"


class Final(Exception):
    """An exception class that refuses subclasses."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise RuntimeError("Final cannot be subclassed")


@pytest.mark.parametrize(
    "cause",
    [
        RuntimeError("mp objects travel by inheritance"),
        RecursionError("too deep"),
        OSError(5, "input/output error"),
        WithMetaclass("meta"),
        Slotted("slotted"),
        NeedsTwo(1, 2),
    ],
    ids=lambda cause: type(cause).__name__,
)
def test_a_transfer_error_is_also_what_pickling_raised(cause: Exception) -> None:
    error = transfer_error_from(cause, "cannot send it")
    assert isinstance(error, unirun.TransferError)
    assert isinstance(error, type(cause))
    assert isinstance(error, pickle.PicklingError)
    assert isinstance(error, TypeError)
    assert error.__cause__ is cause
    assert str(error) == "cannot send it"  # its own text, never the cause's
    assert type(error).__name__ == "TransferError"


def test_a_wrapped_recursion_error_is_one_too() -> None:
    # cloudpickle turns a too-deep object's RecursionError into a PicklingError.
    wrapped = pickle.PicklingError("excessively deep recursion")
    wrapped.__cause__ = RecursionError("maximum recursion depth exceeded")
    error = transfer_error_from(wrapped, "cannot send it")
    assert isinstance(error, RecursionError)
    assert error.__cause__ is wrapped


def test_a_class_that_refuses_subclasses_gives_a_plain_transfer_error() -> None:
    cause = Final("final")
    error = transfer_error_from(cause, "cannot send it")
    assert type(error) is unirun.TransferError
    assert error.__cause__ is cause


@pytest.mark.parametrize("dumps", [pickle.dumps, __import__("cloudpickle").dumps])
def test_a_combined_transfer_error_pickles_as_both(dumps: Any) -> None:
    error = transfer_error_from(RuntimeError("no"), "cannot send it")
    error.hint = "kept"  # type: ignore[attr-defined]  # an attribute of its own
    again = pickle.loads(dumps(error))
    assert type(again) is type(error)
    assert isinstance(again, RuntimeError)
    assert again.args == ("cannot send it",)
    assert vars(again)["hint"] == "kept"
