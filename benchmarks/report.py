"""Turn results into the markdown page (docs/benchmarks.md) and the JSON record.

Ratios: "x best" divides a cell's median by the fastest verified contender's
(the serial loop is a baseline, never "best"); "x ideal" divides it by the ideal
time; "speed-up" is the serial loop's median over the cell's.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from .suite import Cell, WorkloadResult

__all__ = [
    "auto_versus_fixed",
    "format_seconds",
    "headline",
    "markdown",
    "write_json",
]

#: unirun's fixed backends, which the auto executor is compared with.
FIXED = ("unirun-thread", "unirun-process", "unirun-coroutine")

# Typographic characters of the page, spelled as escapes so that the source stays
# plain ASCII (ruff's RUF001 flags them as look-alikes of x and -).
TIMES = "\u00d7"
DASH = "\u2013"
BEST = f"{TIMES} best"
IDEAL = f"{TIMES} ideal"
RANGE = f"min {DASH} max"


def format_seconds(seconds: float) -> str:
    """Format a duration with three significant digits and a fitting unit."""
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= factor or unit == "µs":
            value = seconds / factor
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


def _ratio(value: float) -> str:
    return f"{value:.2f}{TIMES}" if value < 10 else f"{value:.0f}{TIMES}"


def headline(results: list[WorkloadResult]) -> list[dict[str, Any]]:
    """Return, per workload and model, unirun's best cell against the best other.

    A model is what runs the tasks (threads, processes, an event loop): unirun's
    thread executor is compared with the other thread pools, and so on.
    """
    rows = []
    for result in results:
        ok = [c for c in result.cells if c.status == "ok"]
        for model in ("thread", "process", "event loop"):
            ours = [c for c in ok if c.model == model and c.family == "unirun"]
            theirs = [
                c for c in ok if c.model == model and c.family in ("stdlib", "peer")
            ]
            if not ours or not theirs:
                continue
            best_ours = min(ours, key=lambda c: c.median)
            best_theirs = min(theirs, key=lambda c: c.median)
            rows.append(
                {
                    "workload": result.workload.name,
                    "model": model,
                    "unirun": best_ours.label,
                    "unirun_s": best_ours.median,
                    "other": best_theirs.label,
                    "other_s": best_theirs.median,
                    "ratio": best_ours.median / best_theirs.median,
                }
            )
    return rows


def auto_versus_fixed(results: list[WorkloadResult]) -> dict[str, Any]:
    """Return auto's median per workload against each fixed unirun backend.

    Per workload: auto's best cell, each fixed backend's best cell, and auto
    divided by the best fixed one. For the suite: per fixed backend, the sum of
    its medians and the sum of auto's over the workloads both ran.
    """
    rows = []
    totals: dict[str, list[float]] = {key: [0.0, 0.0] for key in FIXED}
    for result in results:
        ok = [c for c in result.cells if c.status == "ok"]
        autos = [c for c in ok if c.contender == "unirun-auto"]
        if not autos:
            continue
        auto = min(autos, key=lambda c: c.median)
        fixed = {}
        for key in FIXED:
            cells = [c for c in ok if c.contender == key]
            if cells:
                fixed[key] = min(cells, key=lambda c: c.median).median
                totals[key][0] += auto.median
                totals[key][1] += fixed[key]
        if not fixed:
            continue
        best = min(fixed, key=lambda k: fixed[k])
        rows.append(
            {
                "workload": result.workload.name,
                "auto_s": auto.median,
                "fixed_s": fixed,
                "best": best,
                "ratio": auto.median / fixed[best],
            }
        )
    suite = {
        key: {"auto_s": a, "fixed_s": f, "ratio": a / f}
        for key, (a, f) in totals.items()
        if f > 0
    }
    return {"rows": rows, "suite": suite}


def _auto_table(results: list[WorkloadResult]) -> list[str]:
    data = auto_versus_fixed(results)
    if not data["rows"]:
        return []
    names = [key.removeprefix("unirun-") for key in FIXED]
    lines = [
        "## Auto against each fixed backend",
        "",
        "| workload | auto | " + " | ".join(names) + " | auto \u00f7 best fixed |",
        "| --- | ---: | " + " | ".join("---:" for _ in names) + " | ---: |",
    ]
    for row in data["rows"]:
        cells = [
            (
                format_seconds(row["fixed_s"][key])
                + ("*" if key == row["best"] else "")
                if key in row["fixed_s"]
                else DASH
            )
            for key in FIXED
        ]
        lines.append(
            f"| {row['workload']} | {format_seconds(row['auto_s'])} | "
            + " | ".join(cells)
            + f" | {_ratio(row['ratio'])} |"
        )
    suite = data["suite"]
    lines += [
        "",
        "Suite as a whole (sum of medians over the workloads both ran): "
        + "; ".join(
            f"auto {format_seconds(v['auto_s'])} vs {key.removeprefix('unirun-')} "
            f"{format_seconds(v['fixed_s'])} ({_ratio(v['ratio'])})"
            for key, v in suite.items()
        )
        + ". * marks the best fixed backend; the target is auto within 1.25"
        f"{TIMES} of it on every workload and below 1{TIMES} of each backend "
        "on the suite.",
        "",
    ]
    return lines


def _headline_table(results: list[WorkloadResult]) -> list[str]:
    lines = [
        "| workload | model | unirun | best other | unirun \u00f7 other |",
        "| --- | --- | --- | --- | ---: |",
    ]
    lines.extend(
        f"| {row['workload']} | {row['model']} "
        f"| {row['unirun']}: {format_seconds(row['unirun_s'])}"
        f" | {row['other']}: {format_seconds(row['other_s'])}"
        f" | {_ratio(row['ratio'])} |"
        for row in headline(results)
    )
    return lines


def _cell_row(cell: Cell, result: WorkloadResult, columns: list[str]) -> str:
    if cell.status != "ok":
        blanks = " |" * (len(columns) - 2)
        return f"| {cell.label} |{blanks} {cell.status}: {cell.note} |"
    job, best = result.job, result.best
    median = cell.median
    values = {
        "contender": f"**{cell.label}**" if cell.family == "unirun" else cell.label,
        "median": format_seconds(median),
        RANGE: f"{format_seconds(min(cell.times))} {DASH} "
        f"{format_seconds(max(cell.times))}",
        "per task": format_seconds(median / job.tasks),
        BEST: _ratio(median / best.median) if best else "",
        "speed-up": _ratio(result.serial_s / median) if result.serial_s else "",
        IDEAL: _ratio(median / result.ideal_s) if result.ideal_s else "",
        "start-up": format_seconds(cell.startup_s) if cell.startup_s else "",
        "note": "",
    }
    return "| " + " | ".join(values[c] for c in columns) + " |"


def _workload_section(result: WorkloadResult, image: str | None) -> list[str]:
    workload, job = result.workload, result.job
    params = ", ".join(f"{k} = {v}" for k, v in job.params.items())
    lines = [f"## {workload.title} (`{workload.name}`)", "", workload.description, ""]
    lines.append(f"Sizes: {params}.")
    if result.ideal_s is not None:
        lines[-1] += f" Ideal: {format_seconds(result.ideal_s)}."
    if job.ideal_speedup is not None:
        lines[-1] += f" Ideal speed-up: {job.ideal_speedup:g}{TIMES}."
    lines += [""] + [f"> {note}" for note in workload.notes]
    lines += [""] if workload.notes else []
    if image is not None:
        lines += [f"![{workload.title}]({image})", ""]
    columns = ["contender", "median", RANGE]
    if job.per_task:
        columns.append("per task")
    columns.append(BEST)
    if job.ideal_from_serial is not None:
        columns.append("speed-up")
    if result.ideal_s is not None:
        columns.append(IDEAL)
    columns += ["start-up", "note"]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("| --- |" + " ---: |" * (len(columns) - 2) + " --- |")
    ranked = sorted(
        result.cells,
        key=lambda c: (c.status != "ok", c.median if c.status == "ok" else 0.0),
    )
    lines += [_cell_row(cell, result, columns) for cell in ranked]
    return [*lines, ""]


def markdown(
    results: list[WorkloadResult], meta: dict[str, Any], images: dict[str, str]
) -> str:
    """Return the whole benchmarks page: context, headline, one section per workload."""
    peers = ", ".join(f"{name} {version}" for name, version in meta["peers"].items())
    missing = ", ".join(meta["missing"]) or "none"
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{meta['command']}` on {meta['date']}: "
        f"**{meta['usable_cpus']} usable CPUs** (os.cpu_count() = {meta['cpu_count']}),"
        f" {meta['python']} on {meta['platform']}, unirun {meta['unirun']}.",
        f"Peers: {peers}; not installed: {missing}. Process start methods: unirun "
        f"{meta['start_methods']['unirun']}, stdlib and peers their defaults "
        f"({meta['start_methods']['default']} here). Load average (1, 5, 15 min) "
        f"before the run: {meta['load_before']}, after: {meta['load_after']}; "
        "anything else running on the machine skews the numbers.",
        f"Each cell: median of {meta['repeats']} runs ({RANGE} beside it) after its "
        "pool was started and warmed; start-up (pool creation plus a round of "
        "10 ms warm-up tasks, two per worker) is reported apart and never timed "
        "with the work. Every run's results are checked against the expected "
        "values (and sleep-bound runs against the time their sleeps must take); "
        "a run that fails the check fails its cell.",
        "",
        f"Ratios: **{BEST}** divides by the fastest contender's median (the serial "
        f"loop is a baseline, never best); **{IDEAL}** by the ideal time; "
        "**speed-up** is the serial loop's median over the cell's. unirun rows are "
        "in bold. Regenerate with `python benchmarks/run.py` (add `--quick` for a "
        "smoke run); raw numbers go to `benchmarks/results/` as JSON.",
        "",
        "## Headline: unirun against the best other contender of the same model",
        "",
        *_headline_table(results),
        "",
        f"Below 1{TIMES} unirun is faster. The model is what runs the tasks: "
        "unirun's thread executor is compared with the other thread pools, its "
        "process executor with the process pools, its coroutine executor with "
        "asyncio and anyio.",
        "",
        *_auto_table(results),
    ]
    for result in results:
        lines += _workload_section(result, images.get(result.workload.name))
    left = meta["leftovers"]
    if left["threads"] or left["processes"]:
        lines += [f"Still alive after the run (should be none): {left}.", ""]
    return "\n".join(lines + RUNNING)


RUNNING = [
    "## Running the suite",
    "",
    "```sh",
    'pip install -e ".[bench]"              # the optional peers and matplotlib',
    "python benchmarks/run.py               # everything; rewrites this page",
    "python benchmarks/run.py --quick       # smoke run, well under a minute",
    "python benchmarks/run.py --only map --size 2 --repeat 9",
    "python benchmarks/run.py --out /tmp/b  # page, plots and JSON all to /tmp/b",
    "```",
    "",
    "A peer that is not installed is skipped with a note. Only a full run (no "
    "`--quick`, no `--only`) rewrites docs/benchmarks.md and its plots; other "
    "runs write theirs to benchmarks/results/. `--size N` multiplies every "
    "workload's amount of work, `--repeat R` sets the timed runs per cell, "
    "`--no-plots` skips the PNGs. tests/test_benchmarks.py runs the quick mode "
    "on a tiny size and checks that every cell verified its results; it never "
    "checks a time.",
    "",
]


def write_json(path: Path, results: list[WorkloadResult], meta: dict[str, Any]) -> None:
    """Write every cell's raw times, the headline and the run's context."""
    data = {
        "meta": meta,
        "headline": headline(results),
        "auto": auto_versus_fixed(results),
        "workloads": [result.as_dict() for result in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
