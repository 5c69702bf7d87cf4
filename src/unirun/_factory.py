"""``unirun.executor(kind, **options)``: an executor by name.

Typed per kind: ``executor("process")`` is a :class:`ProcessExecutor` to a type
checker, and a keyword the kind does not take is an error there too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

from typing_extensions import Unpack

from ._backends import load_backend

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from multiprocessing.context import BaseContext

    import distributed

    from ._auto import AutoExecutor
    from ._backends._dask import DaskExecutor
    from ._backends.coroutine import CoroutineExecutor
    from ._backends.process import ProcessExecutor
    from ._backends.thread import ThreadExecutor
    from ._base import BaseExecutor
    from ._types import Kind

__all__ = ["executor"]


class _Common(TypedDict, total=False):
    max_workers: int | None
    initializer: Callable[..., object] | None
    initargs: tuple[Any, ...]


class _ThreadOptions(_Common, total=False):
    thread_name_prefix: str


class _ProcessOptions(_Common, total=False):
    mp_context: BaseContext | None
    max_tasks_per_child: int | None
    native_threads: int | Literal["auto"] | None
    forward_output: bool


class _CoroutineOptions(_Common, total=False):
    backend: Literal["asyncio", "trio"]
    max_concurrency: int | None


class _DaskOptions(_Common, total=False):
    address: str | None
    client: distributed.Client | None
    dashboard: bool | str
    cluster_options: Mapping[str, Any] | None
    native_threads: int | Literal["auto"] | None
    forward_output: bool


class _AutoOptions(_Common, total=False):
    cluster: DaskExecutor | distributed.Client | str | None


@overload
def executor(
    kind: Literal["thread"], /, **options: Unpack[_ThreadOptions]
) -> ThreadExecutor: ...


@overload
def executor(
    kind: Literal["process"], /, **options: Unpack[_ProcessOptions]
) -> ProcessExecutor: ...


@overload
def executor(
    kind: Literal["coroutine"], /, **options: Unpack[_CoroutineOptions]
) -> CoroutineExecutor: ...


@overload
def executor(
    kind: Literal["dask"], /, **options: Unpack[_DaskOptions]
) -> DaskExecutor: ...


@overload
def executor(
    kind: Literal["auto"] = "auto", /, **options: Unpack[_AutoOptions]
) -> AutoExecutor: ...


def executor(kind: Kind = "auto", /, **options: Any) -> BaseExecutor:
    """Create an executor of the given kind with the constructor ``options``.

    ``executor("thread", max_workers=4)`` is ``ThreadExecutor(max_workers=4)``;
    ``executor()`` is an :class:`AutoExecutor`. Every kind takes
    ``max_workers``, ``initializer`` and ``initargs``, with one meaning.

    Raises:
        ValueError: ``kind`` is not one of the registered kinds.
        TypeError: an option is not accepted by that kind's constructor.
    """
    return load_backend(kind)(**options)
