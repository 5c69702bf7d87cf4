"""Stateful tests of ``ex.Dict()`` against :class:`dict`, on every kind of executor.

Every method must return what a dict returns (in the same order), or raise
what it raises, including keys that compare equal across types (1, 1.0, True).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from _stateful import PrimitiveMachine, run_machine
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

import _primitive_tasks as tasks

if TYPE_CHECKING:
    import unirun
    from unirun._base import BaseExecutor

KEYS = st.one_of(
    st.integers(-2, 3),
    st.sampled_from([1.0, 2.5, True, False, None]),
    st.text(max_size=3),
    st.tuples(st.integers(0, 2), st.text(max_size=2)),
)
VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
)
WORDS = st.text(alphabet="abc", min_size=1, max_size=2)


class DictMachine(PrimitiveMachine):
    """``ex.Dict()`` against a plain ``dict``."""

    def __init__(self) -> None:
        super().__init__()
        self.d: unirun.Dict[Any, Any]
        self.model: dict[Any, Any] = {}

    @initialize()
    def create(self) -> None:
        self.d = self.executor.Dict()

    @rule(key=KEYS, value=VALUES)
    def set_item(self, key: object, value: object) -> None:
        self.same(
            lambda: self.d.__setitem__(key, value),
            lambda: self.model.__setitem__(key, value),
        )

    @rule(value=VALUES)
    def set_unhashable(self, value: object) -> None:
        self.same(
            lambda: self.d.__setitem__([1], value),
            lambda: self.model.__setitem__([1], value),
        )

    @rule(key=KEYS)
    def get_item(self, key: object) -> None:
        self.same(lambda: self.d[key], lambda: self.model[key])

    @rule(key=KEYS)
    def del_item(self, key: object) -> None:
        self.same(lambda: self.d.__delitem__(key), lambda: self.model.__delitem__(key))

    @rule(key=KEYS, default=VALUES)
    def get(self, key: object, default: object) -> None:
        self.same(
            lambda: self.d.get(key, default), lambda: self.model.get(key, default)
        )

    @rule(key=KEYS)
    def get_without_default(self, key: object) -> None:
        self.same(lambda: self.d.get(key), lambda: self.model.get(key))

    @rule(key=KEYS, default=VALUES)
    def setdefault(self, key: object, default: object) -> None:
        self.same(
            lambda: self.d.setdefault(key, default),
            lambda: self.model.setdefault(key, default),
        )

    @rule(key=KEYS)
    def pop(self, key: object) -> None:
        self.same(lambda: self.d.pop(key), lambda: self.model.pop(key))

    @rule(key=KEYS, default=VALUES)
    def pop_with_default(self, key: object, default: object) -> None:
        self.same(
            lambda: self.d.pop(key, default), lambda: self.model.pop(key, default)
        )

    @rule()
    def popitem(self) -> None:
        self.same(self.d.popitem, self.model.popitem)

    @rule(other=st.dictionaries(KEYS, VALUES, max_size=3))
    def update_mapping(self, other: dict[Any, Any]) -> None:
        self.same(lambda: self.d.update(other), lambda: self.model.update(other))

    @rule(pairs=st.lists(st.tuples(KEYS, VALUES), max_size=3))
    def update_pairs(self, pairs: list[tuple[Any, Any]]) -> None:
        self.same(lambda: self.d.update(pairs), lambda: self.model.update(pairs))

    @rule(words=st.dictionaries(WORDS, VALUES, max_size=2))
    def update_keywords(self, words: dict[str, Any]) -> None:
        self.same(lambda: self.d.update(**words), lambda: self.model.update(**words))

    @rule()
    def clear(self) -> None:
        self.same(self.d.clear, self.model.clear)

    @rule(key=KEYS)
    def contains(self, key: object) -> None:
        self.same(lambda: key in self.d, lambda: key in self.model)

    @invariant()
    def contents_match(self) -> None:
        self.same(lambda: len(self.d), lambda: len(self.model))
        self.same(lambda: list(self.d), lambda: list(self.model))
        self.same(lambda: list(self.d.items()), lambda: list(self.model.items()))
        self.same(lambda: list(self.d.values()), lambda: list(self.model.values()))
        self.same(lambda: self.d.copy(), lambda: self.model.copy())
        assert self.d == self.model


def test_matches_dict(executor: BaseExecutor) -> None:
    run_machine(DictMachine, executor)


def test_many_changes_keep_every_key(executor: BaseExecutor) -> None:
    """Megabytes of writes (the shared log rewrites itself) lose nothing."""
    d = executor.Dict()
    model: dict[int, bytes] = {}
    for i in range(4000):
        key = i % 37
        if i % 11 == 0:
            assert d.pop(key, None) == model.pop(key, None)
        else:
            d[key] = model[key] = i.to_bytes(4, "little") * 300
    assert d.copy() == model
    assert list(d) == list(model)
    assert executor.submit(tasks.keys_of, d).result(timeout=60) == repr(list(model))


@pytest.mark.parametrize("key", [1, 1.0, True])
def test_equal_keys_keep_the_first_one(executor: BaseExecutor, key: object) -> None:
    d = executor.Dict()
    model: dict[object, object] = {}
    for k in (1, key):
        d[k] = model[k] = repr(k)
    for i in range(3000):  # enough for the shared log to rewrite itself
        d["other"] = model["other"] = bytes(i % 7) * 500
    assert repr(list(d)) == repr(list(model))
    assert d[1] == model[1]
    # In a task (another process, on some kinds), which reads the rewritten log:
    assert executor.submit(tasks.keys_of, d).result(timeout=60) == repr(list(model))
