"""PNG bar charts of the results, one per workload (needs matplotlib).

matplotlib is imported by name, only here: without it the suite writes no plots
and the page says so.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from .suite import WorkloadResult

__all__ = ["available", "plot_workload"]

COLORS = {
    "unirun": "#1f77b4",
    "stdlib": "#9467bd",
    "peer": "#ff7f0e",
    "baseline": "#c7c7c7",
}


def available() -> bool:
    """Whether matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def plot_workload(result: WorkloadResult, path: Path) -> None:
    """Draw one horizontal bar per verified cell: median, with min-max whiskers.

    Per-task workloads are drawn in µs per task; the others in seconds, with
    the ideal time as a dashed line where there is one.
    """
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")  # files only, never a window
    pyplot = importlib.import_module("matplotlib.pyplot")
    cells = sorted(
        (c for c in result.cells if c.status == "ok"),
        key=lambda c: c.median,
        reverse=True,
    )
    if not cells:
        return
    per_task = result.job.per_task
    scale = 1e6 / result.job.tasks if per_task else 1.0
    medians = [c.median * scale for c in cells]
    low = [(c.median - min(c.times)) * scale for c in cells]
    high = [(max(c.times) - c.median) * scale for c in cells]
    colors = [COLORS[c.family] for c in cells]
    figure, axes = pyplot.subplots(figsize=(9, 0.38 * len(cells) + 1.3))
    try:
        positions = range(len(cells))
        axes.barh(positions, medians, xerr=[low, high], color=colors, capsize=3)
        axes.set_yticks(list(positions), [c.label for c in cells], fontsize=8)
        axes.set_xlabel("µs per task (median)" if per_task else "seconds (median)")
        if per_task:
            axes.set_xscale("log")
        patches = importlib.import_module("matplotlib.patches")
        handles = [
            patches.Patch(color=color, label=family)
            for family, color in COLORS.items()
            if any(c.family == family for c in cells)
        ]
        ideal = result.ideal_s
        if ideal is not None and not per_task:
            handles.append(
                axes.axvline(ideal, color="green", linestyle="--", label="ideal")
            )
        # Outside the axes, so that it never hides a bar.
        axes.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8
        )
        axes.set_title(f"{result.workload.title} (lower is better)", fontsize=10)
        axes.grid(axis="x", alpha=0.3)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=110)
    finally:
        pyplot.close(figure)
