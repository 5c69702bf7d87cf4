"""The page and the plot of ``benchmarks/scenarios.py``: tables from a record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from .scenario_model import Scenario

TIMES = "\u00d7"
DASH = "\u2013"
EM = "\u2014"


def _ms(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.0f} ms"


def _mib(memory: float | None) -> str:
    if memory is None:
        return EM
    return "< 0.1 MiB" if memory < 0.1 else f"{memory:.1f} MiB"


def summary_table(scenarios: list[Scenario]) -> list[str]:
    """One row per scenario: the article's advice, the winner, each kind's ratio."""
    kinds = ("thread", "process", "coroutine", "auto", "serial")
    lines = [
        "| scenario | bound by | the article's advice | fastest here | "
        + " | ".join(kinds[:-1])
        + " | serial loop |",
        "| --- | --- | --- | --- | " + " | ".join("---:" for _ in kinds) + " |",
    ]
    for sc in scenarios:
        if sc.key == "scaling" or not any(c.status == "ok" for c in sc.cells):
            continue
        best = sc.best()
        ratios = []
        for kind in kinds:
            ok = [c.median for c in sc.cells if c.kind == kind and c.status == "ok"]
            ratios.append(f"{min(ok) / best.median:.1f}{TIMES}" if ok else EM)
        winner = f"**{best.label}** ({_ms(best.median)})"
        row = [sc.title, sc.bound, sc.advice, winner, *ratios]
        lines.append(f"| {' | '.join(row)} |")
    return lines


def detail_table(sc: Scenario) -> list[str]:
    """Every contender of one scenario, fastest first."""
    lines = [
        f"**{sc.title}**: {sc.note}.",
        "",
        f"| contender | median | min {DASH} max | {TIMES} fastest |",
        "| --- | ---: | ---: | ---: |",
    ]
    if not any(c.status == "ok" for c in sc.cells):
        return [*lines[:2], "Every contender failed.", ""]
    best = sc.best().median
    for cell in sorted(sc.cells, key=lambda c: (c.status != "ok", c.median)):
        if cell.status != "ok":
            lines.append(f"| {cell.label} | {cell.status} | | |")
            continue
        spread = f"{_ms(min(cell.times))} {DASH} {_ms(max(cell.times))}"
        ratio = f"{cell.median / best:.2f}{TIMES}"
        lines.append(f"| {cell.label} | {_ms(cell.median)} | {spread} | {ratio} |")
    return [*lines, ""]


def page(record: dict[str, Any], scenarios: list[Scenario]) -> str:
    """The markdown that docs/choose-a-model.md includes."""
    machine = record["machine"]
    lines = [
        f"Measured by `python benchmarks/scenarios.py` on {record['date']}: "
        f"{machine['usable_cpus']} usable CPUs, {machine['python']} on "
        f"{machine['platform']}, unirun {machine['unirun']}; load average "
        f"{machine['load_before']} before the run, {machine['load_after']} after. "
        f"Each cell is the median of {record['repeat']} runs after one warm-up run "
        "on an open executor; every run's results were checked. The ratios divide "
        "by the fastest contender of the row, the serial loop included; in the "
        "summary, each kind's column shows its best contender."
        + (
            " This run set `OMP_NUM_THREADS=1` (and the other BLAS variables) "
            "in the benchmark's process and every worker."
            if record.get("one_blas_thread")
            else ""
        ),
        "",
        "<!-- summary -->",
        *summary_table(scenarios),
        "<!-- details -->",
        "",
    ]
    for sc in scenarios:
        lines += detail_table(sc)
    if record["startup"]:
        lines += [
            "**Start-up and memory**: creating the executor and running one task "
            "per usable CPU at once (so every worker starts), less the tasks' own "
            "50 ms; memory is the parent's growth plus the workers' unique memory, "
            "with every worker started (psutil).",
            "",
            "| executor | start-up | memory |",
            "| --- | ---: | ---: |",
        ]
        for row in record["startup"]:
            mem = _mib(row["memory_mib"])
            lines.append(f"| {row['label']} | {_ms(row['start_s'])} | {mem} |")
        lines.append("")
    return "\n".join(lines)


def plot(scenarios: list[Scenario], path: Path) -> bool:
    """One bar chart per scenario, stacked in one PNG; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot

    shown = [sc for sc in scenarios if any(c.status == "ok" for c in sc.cells)]
    heights = [0.3 * len(sc.cells) + 0.9 for sc in shown]
    figure, axes = pyplot.subplots(
        len(shown), 1, figsize=(9, sum(heights)), gridspec_kw={"height_ratios": heights}
    )
    colors = {
        "thread": "#1f77b4",
        "process": "#d62728",
        "coroutine": "#2ca02c",
        "auto": "#9467bd",
        "serial": "#c7c7c7",
    }
    for ax, sc in zip([axes] if len(shown) == 1 else axes, shown, strict=True):
        cells = sorted(
            (c for c in sc.cells if c.status == "ok"), key=lambda c: -c.median
        )
        ax.barh(
            range(len(cells)),
            [c.median for c in cells],
            color=[colors[c.kind] for c in cells],
        )
        ax.set_yticks(range(len(cells)), [c.label for c in cells], fontsize=8)
        ax.set_title(f"{sc.title}: seconds, median (lower is better)", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return True
