"""Every code block in docs/ and README.md runs, or says why not; the site builds.

Each block runs as a user would paste it: a Python block as a script of its
own (``python script.py`` in an empty folder), a shell block with ``bash`` from
the repository root. Markers on the line just before a fence, as a MyST comment
(``% ...``) in docs/ or an HTML comment (``<!-- ... -->``) in README.md:

- ``not-run: <reason>``: never run; the reason is required.
- ``needs: <module> ...``: run only where those modules import (peer libraries
  on the migration page); skipped, saying which, elsewhere.
- ``run-with-previous``: appended to the block before it, one script for both.

Blocks of other languages, or with none, must say ``not-run``; ``text`` blocks
are output, not code.
"""

from __future__ import annotations

import importlib.util
import os
import re
import runpy
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import unirun

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SKIPPED_FOLDERS = {"_build", "_generated"}
PAGES = [
    *sorted(
        path
        for path in DOCS.rglob("*.md")
        if not SKIPPED_FOLDERS & set(path.relative_to(DOCS).parts)
    ),
    ROOT / "README.md",
    ROOT / "CHANGELOG.md",
]
LANGUAGES = {"python": "python", "py": "python", "bash": "bash", "sh": "bash"}
OUTPUT = {"text"}
#: Pages that a script writes; their blocks are that script's own command lines.
GENERATED = {
    "benchmarks.md": "written by benchmarks/run.py, whose commands run the suite "
    "for minutes; tests/test_benchmarks.py runs its quick mode",
    "benchmarks-primitives.md": "written by benchmarks/primitives.py, whose "
    "commands run its benchmarks; tests/test_benchmarks_primitives.py runs them",
}

FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARKER = re.compile(
    r"^\s*(?:%|<!--)\s*(?P<what>not-run|needs|run-with-previous)\b:?\s*"
    r"(?P<arg>.*?)\s*(?:-->)?\s*$"
)


@dataclass
class Block:
    """One fenced block of a page, with the markers just above it."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    not_run: str | None = None
    needs: tuple[str, ...] = ()
    with_previous: bool = False
    marker_lines: list[int] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _markers(block: Block, lines: list[str], fence_index: int) -> None:
    """Read the marker lines right above the fence (blank lines between are fine)."""
    i = fence_index - 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    while i >= 0 and (match := MARKER.match(lines[i])):
        what, arg = match["what"], match["arg"]
        if what == "not-run":
            block.not_run = arg
        elif what == "needs":
            block.needs = tuple(arg.split())
        else:
            block.with_previous = True
        block.marker_lines.append(i + 1)
        i -= 1
        while i >= 0 and not lines[i].strip():
            i -= 1


def parse(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, MyST directives (``{toctree}``) aside."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, indent = match["fence"], match["indent"]
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        info = match["info"].strip()
        language = info.split()[0] if info else ""
        if not language.startswith("{"):
            body = [
                line[len(indent) :] if line.startswith(indent) else line.lstrip()
                for line in lines[i + 1 : end]
            ]
            block = Block(page, i + 1, language, "\n".join(body) + "\n")
            _markers(block, lines, i)
            blocks.append(block)
        i = end + 1
    return blocks


def runnable_groups() -> list[list[Block]]:
    """Blocks to run, each group one script (``run-with-previous`` joins groups)."""
    groups: list[list[Block]] = []
    for page in PAGES:
        if page.name in GENERATED:
            continue
        previous: list[Block] | None = None
        for block in parse(page):
            if block.not_run is not None or block.language not in LANGUAGES:
                continue
            if block.with_previous and previous is not None:
                previous.append(block)
            else:
                previous = [block]
                groups.append(previous)
    return groups


GROUPS = runnable_groups()


def test_every_block_runs_or_says_why() -> None:
    problems = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        blocks = parse(page)
        for block in blocks:
            if block.not_run is not None and not block.not_run:
                problems.append(f"{block.where}: not-run needs a reason")
            kind_ok = block.language in LANGUAGES or block.language in OUTPUT
            if not kind_ok and block.not_run is None and page.name not in GENERATED:
                problems.append(
                    f"{block.where}: a {block.language or 'plain'} block must say "
                    "'not-run: <reason>'"
                )
        attached = {n for block in blocks for n in block.marker_lines}
        problems += [
            f"{page.relative_to(ROOT)}:{n + 1}: marker not right above a code block"
            for n, line in enumerate(lines)
            if MARKER.match(line) and n + 1 not in attached
        ]
    assert not problems, "\n".join(problems)


def test_runnable_blocks_were_found() -> None:
    pages = {group[0].page.name for group in GROUPS}
    assert {"quickstart.md", "migrating.md", "README.md"} <= pages


@pytest.mark.parametrize(
    "group", GROUPS, ids=[f"{g[0].page.name}:{g[0].line}" for g in GROUPS]
)
def test_block_runs(group: list[Block], tmp_path: Path) -> None:
    missing = [
        name
        for block in group
        for name in block.needs
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        pytest.skip(f"shown for comparison; {', '.join(missing)} not installed")
    language = LANGUAGES[group[0].language]
    assert all(LANGUAGES[block.language] == language for block in group)
    script = tmp_path / ("block.py" if language == "python" else "block.sh")
    script.write_text("\n".join(block.code for block in group), encoding="utf-8")
    if language == "python":
        command, cwd = [sys.executable, str(script)], tmp_path
    else:
        command, cwd = ["bash", "-euo", "pipefail", str(script)], ROOT
    # `python` in a shell block is this interpreter.
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    completed = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    where = group[0].where
    assert completed.returncode == 0, f"{where}\n{completed.stdout}{completed.stderr}"
    assert "Traceback" not in completed.stderr, f"{where}\n{completed.stderr}"


def test_api_reference_covers_every_public_name() -> None:
    page = (DOCS / "api.md").read_text(encoding="utf-8")
    documented = set(
        re.findall(
            r"^\.\. auto(?:class|function|data|exception):: unirun\.(\w+)$", page, re.M
        )
    )
    missing = sorted(set(unirun.__all__) - documented)
    assert not missing, f"add these public names to docs/api.md: {missing}"


def test_intersphinx_reads_only_local_inventories() -> None:
    conf = runpy.run_path(str(DOCS / "conf.py"))
    for name, (url, inventory) in conf["intersphinx_mapping"].items():
        assert url.startswith("https://"), name
        assert inventory is not None, f"{name} would download its inventory"
        assert (DOCS / inventory).is_file(), f"{name}: {inventory} is missing"


def test_python_inventory_resolves_the_stdlib_names_used() -> None:
    inventory_module = pytest.importorskip("sphinx.util.inventory")
    path = DOCS / "python-objects.inv"
    with path.open("rb") as stream:
        inventory = inventory_module.InventoryFile.load(
            stream, "https://docs.python.org/3", lambda base, uri: f"{base}/{uri}"
        )
    names = {name for entries in inventory.values() for name in entries}
    for name in (
        "concurrent.futures.Executor.map",
        "concurrent.futures.Future",
        "asyncio.gather",
        "threading.Lock",
        "queue.Queue",
        "TimeoutError",
    ):
        assert name in names


ROLE = re.compile(r"\{py:\w+\}`(?:[^`<]*<)?~?([\w.]+)>?`")


def test_python_roles_name_objects_the_inventory_or_unirun_has() -> None:
    # Sphinx leaves an unknown target as plain text without a warning: catch typos.
    inventory_module = pytest.importorskip("sphinx.util.inventory")
    with (DOCS / "python-objects.inv").open("rb") as stream:
        inventory = inventory_module.InventoryFile.load(
            stream, "https://docs.python.org/3", lambda base, uri: f"{base}/{uri}"
        )
    known = {name for entries in inventory.values() for name in entries}
    known |= {f"unirun.{name}" for name in unirun.__all__}
    unknown = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in PAGES
        for target in ROLE.findall(page.read_text(encoding="utf-8"))
        if target not in known
    ]
    assert not unknown, "add them to docs/inventory.py, or fix the name:\n" + "\n".join(
        unknown
    )


@pytest.mark.slow
def test_site_builds_without_warnings(tmp_path: Path) -> None:
    for module in ("sphinx", "myst_parser", "furo"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install '.[docs]'")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "html" / "api.html").is_file()
    assert (tmp_path / "html" / "choose-a-model.html").is_file()
