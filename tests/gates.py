"""File-based gates that hold a task on any backend until the test lets it go."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from _tasks import wait_for_file

_ids = itertools.count()


class Gate:
    """A task blocked in :func:`_tasks.signal_then_wait` until :meth:`open`.

    Works across threads and processes alike: the task and the test talk through
    files in a temporary folder. The test waits for a condition, never a guess.
    """

    def __init__(self, folder: Path) -> None:
        n = next(_ids)
        self.started = str(folder / f"started-{n}")
        self.release = str(folder / f"release-{n}")

    def wait_started(self, limit: float = 60.0) -> None:
        """Block until the task has started."""
        assert wait_for_file(self.started, limit), "the task never started"

    def has_started(self) -> bool:
        """Whether the task has started."""
        return os.path.exists(self.started)

    def open(self) -> None:
        """Let the task finish."""
        Path(self.release).touch()
