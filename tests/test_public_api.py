"""The public surface: names, docstrings, module names, pickling."""

from __future__ import annotations

import inspect
import pickle

import cloudpickle
import pytest

import unirun
from unirun import _errors

#: Modules whose classes unirun re-exports as they are.
STDLIB_REEXPORTS = ("concurrent.futures", "queue")


def test_all_is_sorted_and_complete() -> None:
    # Sorted the way ruff's RUF022 sorts: CONSTANTS, then Classes, then functions.
    def key(name: str) -> tuple[bool, bool, str]:
        return (not name.isupper(), not name[0].isupper(), name)

    assert list(unirun.__all__) == sorted(unirun.__all__, key=key)
    public = {name for name in dir(unirun) if not name.startswith("_")}
    assert set(unirun.__all__) <= public


@pytest.mark.parametrize("name", unirun.__all__)
def test_public_name_has_docstring(name: str) -> None:
    obj = getattr(unirun, name)
    if isinstance(obj, str):  # the wait constants
        return
    if getattr(obj, "__module__", "").startswith(STDLIB_REEXPORTS):
        return  # re-exported from the stdlib on purpose; documented there
    assert inspect.getdoc(obj), f"{name} has no docstring"


@pytest.mark.parametrize(
    "name",
    [n for n in unirun.__all__ if inspect.isclass(getattr(unirun, n))],
)
def test_public_class_reports_unirun_module_and_pickles(name: str) -> None:
    cls = getattr(unirun, name)
    if cls.__module__.startswith(STDLIB_REEXPORTS):
        return  # re-exported from the stdlib on purpose (queue.ShutDown from 3.13)
    assert cls.__module__ == "unirun"
    assert pickle.loads(pickle.dumps(cls)) is cls


def _error_classes() -> list[type[BaseException]]:
    return [
        obj
        for obj in vars(_errors).values()
        if inspect.isclass(obj) and issubclass(obj, unirun.UnirunError)
    ]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_every_error_round_trips(cls: type[BaseException], dumps: object) -> None:
    args = (
        ("builtins.ValueError", "msg", "tb") if cls is unirun.RemoteError else ("msg",)
    )
    error = cls(*args)
    copy = pickle.loads(dumps(error))  # type: ignore[operator]  # a dumps function
    assert type(copy) is cls
    assert str(copy) == str(error)


def test_error_hierarchy_matches_stdlib_catches() -> None:
    from concurrent.futures.process import BrokenProcessPool

    assert issubclass(unirun.TaskTimeoutError, TimeoutError)
    assert issubclass(unirun.WorkerCrashedError, BrokenProcessPool)
    assert issubclass(unirun.TransferError, pickle.PicklingError)
    for cls in _error_classes():
        assert issubclass(cls, unirun.UnirunError)
    assert (
        unirun.CancelledError is __import__("concurrent.futures").futures.CancelledError
    )


def test_executor_factory() -> None:
    with unirun.executor("thread", max_workers=2) as ex:
        assert isinstance(ex, unirun.ThreadExecutor)
    with pytest.raises(ValueError, match="unknown executor kind 'nope'"):
        unirun.executor("nope")  # type: ignore[call-overload]  # bad input on purpose
    with pytest.raises(TypeError):
        unirun.executor("thread", bogus=1)  # type: ignore[call-overload]  # on purpose


@pytest.mark.parametrize("cls", [unirun.ThreadExecutor, unirun.ProcessExecutor])
def test_constructor_signature_matches_stdlib(cls: type) -> None:
    import concurrent.futures as cf

    stdlib = (
        cf.ThreadPoolExecutor
        if cls is unirun.ThreadExecutor
        else cf.ProcessPoolExecutor
    )
    ours = inspect.signature(cls)
    theirs = inspect.signature(stdlib)
    # The stdlib's parameters first, the same way; anything more is keyword-only
    # with a default, so that every call written for the stdlib works unchanged.
    assert list(ours.parameters)[: len(theirs.parameters)] == list(theirs.parameters)
    for name, param in theirs.parameters.items():
        assert ours.parameters[name].default == param.default
        assert ours.parameters[name].kind == param.kind
    for name in list(ours.parameters)[len(theirs.parameters) :]:
        extra = ours.parameters[name]
        assert extra.kind is inspect.Parameter.KEYWORD_ONLY
        assert extra.default is not inspect.Parameter.empty


def test_executors_satisfy_protocol() -> None:
    for cls in (
        unirun.ThreadExecutor,
        unirun.ProcessExecutor,
        unirun.CoroutineExecutor,
        unirun.AutoExecutor,
    ):
        assert issubclass(cls, __import__("concurrent.futures").futures.Executor)
    with unirun.ThreadExecutor(1) as ex:
        assert isinstance(ex, unirun.Executor)


def test_auto_executor_satisfies_protocol_and_verdict_is_frozen() -> None:
    import dataclasses

    with unirun.AutoExecutor(max_workers=1) as ex:
        assert isinstance(ex, unirun.Executor)
        assert isinstance(ex.options(backend="thread"), unirun.Executor)
    verdict = unirun.Verdict("thread", "why", 1.0, 0.0, 0.0, 0.0, None, None, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.backend = "process"  # type: ignore[misc]  # frozen on purpose
    assert not hasattr(verdict, "__dict__")  # slotted
    assert issubclass(unirun.LoopBlockedWarning, RuntimeWarning)


PRIMITIVES = [
    ("Queue", ()),
    ("Lock", ()),
    ("RLock", ()),
    ("Condition", ()),
    ("Semaphore", (2,)),
    ("BoundedSemaphore", (2,)),
    ("Event", ()),
    ("Barrier", (2,)),
    ("Dict", ()),
]


@pytest.mark.parametrize(("name", "args"), PRIMITIVES)
def test_a_primitive_type_says_an_executor_makes_it(
    name: str, args: tuple[object, ...]
) -> None:
    # Written as queue.Queue() and threading.Barrier(2) are.
    with pytest.raises(TypeError, match=rf"executor\.{name}\(") as caught:
        getattr(unirun, name)(*args)
    assert "abstract" in str(caught.value)  # what a type check would say too
    with unirun.ThreadExecutor(max_workers=1) as executor:
        made = getattr(executor, name)(*args)
    assert isinstance(made, getattr(unirun, name))
