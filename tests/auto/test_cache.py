"""Auto's tables: entries by the callable's identity, keeping no callable alive."""

from __future__ import annotations

import functools
import gc
import io
import operator
import weakref
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unirun._auto import cache
from unirun._auto.cache import (
    cached,
    keep_known,
    lookup,
    owner_ref,
    target_of,
)


class Entry:
    """The least entry a table takes."""

    def __init__(self, target: object) -> None:
        self.owner = owner_ref(target)


class Counter:
    def tick(self) -> int:
        return 1

    def __call__(self) -> int:
        return 2

    __hash__ = None  # type: ignore[assignment]  # unhashable on purpose


def plus_one(value: int) -> int:
    return value + 1


def test_a_bound_method_is_known_by_its_function() -> None:
    one, two = Counter(), Counter()
    assert target_of(one.tick) is target_of(two.tick) is Counter.tick
    assert target_of(plus_one) is plus_one


class Slotted:
    """A callable object that takes no weak reference."""

    __slots__ = ()

    def __call__(self) -> int:
        return 3


def test_a_callable_object_is_known_by_itself() -> None:
    # Two models, two decorated functions: one class, different calls.
    one = Counter()
    assert target_of(one) is one
    assert target_of(Counter) is Counter  # a class is called to make one


def test_one_that_takes_no_weak_reference_by_its_classs_call() -> None:
    # Kept alive otherwise: by its class's __call__, as a bound __call__.
    assert target_of(Slotted()) is target_of(Slotted()) is Slotted.__call__
    getter = operator.itemgetter(1)  # no __call__ written in Python: itself
    assert target_of(getter) is getter


def test_a_c_method_bound_to_an_object_is_known_by_its_types_method() -> None:
    # Each access makes a new bound object: the type's method stays.
    one, two = io.BytesIO(), io.BytesIO()
    assert target_of(one.getvalue) is target_of(two.getvalue)
    assert target_of(one.getvalue) is vars(type(one))["getvalue"]
    assert target_of([].append) is vars(list)["append"]
    assert target_of(dict.fromkeys) is vars(dict)["fromkeys"]  # of the type
    assert target_of((1).__add__) is vars(int)["__add__"]  # a method-wrapper
    assert target_of(len) is len  # a builtin function, bound to its module


def test_entries_are_found_by_identity_only() -> None:
    entries: dict[int, Entry] = {}
    one, two = Counter(), Counter()
    first = cached(entries, one, Entry)
    assert cached(entries, one, Entry) is first
    assert lookup(entries, one) is first
    assert lookup(entries, two) is None
    assert cached(entries, two, Entry) is not first


def test_a_table_keeps_no_target_alive_and_a_reused_id_finds_nothing() -> None:
    entries: dict[int, Entry] = {}
    payload = Counter()  # what a partial made for one call carries
    made = functools.partial(target_of, payload)
    ref = weakref.ref(payload)
    cached(entries, made, Entry)
    key = id(made)
    del made, payload
    gc.collect()
    assert ref() is None
    # Whatever object gets that id next is not taken for the one that died.
    stale = entries[key]
    assert stale.owner() is None
    newcomer = Counter()
    entries[id(newcomer)] = stale  # as if the newcomer had reused the id
    assert lookup(entries, newcomer) is None
    assert cached(entries, newcomer, Entry) is not stale


def test_a_target_that_takes_no_weak_reference_is_kept() -> None:
    getter = operator.itemgetter(1)
    entries: dict[int, Entry] = {}
    entry = cached(entries, getter, Entry)
    assert entry.owner() is getter
    assert lookup(entries, getter) is entry


def test_an_entry_made_over_a_gone_ones_id_is_the_newest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache, "CACHE_SIZE", 3)
    entries: dict[int, Entry] = {}
    newcomer, others = Counter(), [Counter(), Counter()]
    gone = Entry(Counter())  # its target died: the newcomer took its id
    entries[id(newcomer)] = gone
    for other in others:
        cached(entries, other, Entry)
    made = cached(entries, newcomer, Entry)
    assert made is not gone
    assert list(entries) == [id(others[0]), id(others[1]), id(newcomer)]


def test_a_full_table_lets_gone_entries_go_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache, "CACHE_SIZE", 3)
    entries: dict[int, Entry] = {}
    kept, newcomer = Counter(), Counter()  # alive throughout: ids of their own
    cached(entries, kept, Entry)  # the oldest
    dying = [Counter(), Counter()]
    for target in dying:
        cached(entries, target, Entry)
    del dying, target
    gc.collect()
    cached(entries, newcomer, Entry)
    assert lookup(entries, kept) is not None
    assert lookup(entries, newcomer) is not None
    assert len(entries) == 2


@pytest.mark.parametrize("count", [1, 7, 8, 9, 10, 11, 12, 20])
def test_a_full_table_drops_its_oldest_quarter(
    monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    monkeypatch.setattr(cache, "CACHE_SIZE", 8)
    entries: dict[int, Entry] = {}
    targets = [Counter() for _ in range(count)]
    for target in targets:
        cached(entries, target, Entry)
    kept = targets[:count]
    while len(kept) > 8:
        kept = kept[8 - 6 :]  # full: down to 6, then the newcomer
    assert len(entries) == len(kept)
    assert all(lookup(entries, target) is not None for target in kept)
    assert all(lookup(entries, target) is None for target in targets[: -len(kept)])


def test_a_dropped_entry_is_found_by_no_fast_path_either(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fast path's copy of an entry the table dropped used to go on routing
    # the calls, while the table (explain(), statistics()) no longer knew it.
    monkeypatch.setattr(cache, "CACHE_SIZE", 8)
    entries: dict[int, Entry] = {}
    known: dict[int, Entry] = {}
    keep_known(known, plus_one, cached(entries, plus_one, Entry))
    targets = [Counter() for _ in range(8)]
    for target in targets:
        cached(entries, target, Entry)
    assert lookup(entries, plus_one) is None  # the oldest: dropped
    assert lookup(known, plus_one) is None  # and retired
    assert [lookup(entries, target) is not None for target in targets] == [
        False,  # down to three quarters: the two oldest went
        *[True] * 7,
    ]
    again = cached(entries, plus_one, Entry)  # a new entry, the newest
    keep_known(known, plus_one, again)
    assert lookup(known, plus_one) is again


def test_a_full_table_keeps_an_entry_whose_probe_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Calls wait behind a probe, and statistics() counts them from the table.
    monkeypatch.setattr(cache, "CACHE_SIZE", 8)
    entries: dict[int, Entry] = {}
    targets = [Counter() for _ in range(9)]
    for target in targets[:8]:
        cached(entries, target, Entry)
    probing = lookup(entries, targets[0])
    assert probing is not None
    probing.probe = object()  # type: ignore[attr-defined]  # as verdicts.Entry has
    cached(entries, targets[8], Entry)
    kept = [target for target in targets if lookup(entries, target) is not None]
    assert kept == [targets[0], *targets[3:]]  # the two oldest idle ones went


def test_a_full_table_of_live_entries_is_looked_through_once_a_quarter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each new target past a full table of live ones used to look through every
    # entry: 4096 weak-reference calls for each new callable.
    monkeypatch.setattr(cache, "CACHE_SIZE", 64)
    calls = 0

    class Counted(Entry):
        def __init__(self, target: object) -> None:
            ref = owner_ref(target)

            def owner() -> object:
                nonlocal calls
                calls += 1
                return ref()

            self.owner = owner

    entries: dict[int, Counted] = {}
    targets = [Counter() for _ in range(64 + 16 * 10)]
    for target in targets[:64]:
        cached(entries, target, Counted)
    calls = 0
    for target in targets[64:]:
        cached(entries, target, Counted)
    # Ten scans of a full table (64 each), and a look at each new id: far
    # under one scan per newcomer (160 * 64).
    assert calls <= 10 * 64 + 160, calls
    assert len(entries) <= 64


@st.composite
def _steps(draw: st.DrawFn) -> list[tuple[str, int]]:
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(["new", "new", "die", "ask"]), st.integers(0, 40)
            ),
            max_size=120,
        )
    )


@given(steps=_steps())
@settings(max_examples=150, deadline=None)
def test_a_table_matches_its_model(steps: list[tuple[str, int]]) -> None:
    # The model: entries in the order made, each alive or gone. A new target
    # whose id a gone entry had replaces it; past a full table, the gone go,
    # then the oldest, down to three quarters of the size.
    size = 8
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "CACHE_SIZE", size)
        entries: dict[int, Entry] = {}
        alive: dict[int, Counter] = {}  # id -> target, for the ones alive
        model: list[int] = []  # ids, oldest first
        for step, index in steps:
            if step == "new":
                target = Counter()
                key = id(target)
                if key in model:  # a gone entry's id, reused
                    model.remove(key)
                elif len(model) >= size:
                    model = [k for k in model if k in alive]
                    model = model[max(0, len(model) - size * 3 // 4) :]
                model.append(key)
                alive[key] = target
                cached(entries, target, Entry)
                del target
            elif step == "die" and alive:
                del alive[list(alive)[index % len(alive)]]
            elif step == "ask" and alive:
                key = list(alive)[index % len(alive)]
                assert (lookup(entries, alive[key]) is not None) == (key in model)
            assert list(entries) == model
            assert len(entries) <= size


def test_only_plain_functions_take_a_fast_path() -> None:
    known: dict[int, Any] = {}
    counter = Counter()
    for fn in (plus_one, counter.tick, counter, functools.partial(plus_one, 1)):
        keep_known(known, fn, Entry(target_of(fn)))
    assert set(known) == {id(plus_one), id(Counter.tick)}
    assert known[id(Counter.tick)].owner() is Counter.tick


def test_a_full_fast_path_table_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "CACHE_SIZE", 2)
    known: dict[int, Any] = {}

    def one() -> None: ...
    def two() -> None: ...
    def three() -> None: ...

    for fn in (one, two, three):
        keep_known(known, fn, Entry(fn))
    assert set(known) == {id(three)}
