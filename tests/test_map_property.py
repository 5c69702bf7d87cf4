"""map equals the builtin map, for any inputs and chunk size, exceptions included."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _tasks import fail_if_negative
from conftest import KINDS, make_executor

if TYPE_CHECKING:
    from collections.abc import Iterator

    from unirun._base import BaseExecutor


def builtin_outcome(xs: list[int]) -> tuple[list[int], type[BaseException] | None, str]:
    results: list[int] = []
    try:
        for value in map(fail_if_negative, xs):
            results.append(value)  # noqa: PERF402  # keep what came before the error
    except Exception as exc:
        return results, type(exc), str(exc)
    return results, None, ""


def executor_outcome(
    ex: BaseExecutor, xs: list[int], chunksize: int | None
) -> tuple[list[int], type[BaseException] | None, str]:
    results: list[int] = []
    try:
        for value in ex.map(fail_if_negative, xs, chunksize=chunksize):
            results.append(value)  # noqa: PERF402  # keep what came before the error
    except Exception as exc:
        return results, type(exc), str(exc)
    return results, None, ""


@pytest.fixture(scope="module", params=KINDS)
def shared_executor(request: pytest.FixtureRequest) -> Iterator[BaseExecutor]:
    ex = make_executor(request.param)
    yield ex
    ex.shutdown()


@pytest.fixture(autouse=True)
def no_leaks() -> None:
    # The module-scoped executor outlives each test by design; it is shut down
    # (and checked by its own teardown) at the end of the module.
    return


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    xs=st.lists(st.integers(min_value=-3, max_value=50), max_size=40),
    chunksize=st.one_of(st.none(), st.integers(min_value=1, max_value=12)),
)
def test_map_matches_builtin_map(
    shared_executor: BaseExecutor, xs: list[int], chunksize: int | None
) -> None:
    assert executor_outcome(shared_executor, xs, chunksize) == builtin_outcome(xs)
