"""Sphinx configuration: Markdown pages (MyST), the furo theme, the API from docstrings.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``. The
Python docs' names resolve through ``python-objects.inv``, a small inventory kept
in this folder (``python docs/inventory.py`` rewrites it), so a build never
needs the network.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

project = "unirun"
author = "the unirun authors"
copyright = "the unirun authors"
release = importlib.metadata.version("unirun")
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
# _generated/ holds what benchmarks/scenarios.py writes: pages include it.
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # links such as semantics.md#shutdown

autodoc_member_order = "bysource"
# Optional extras: the reference builds without them installed.
autodoc_mock_imports = ["dask", "distributed"]
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", "python-objects.inv"),
}

html_theme = "furo"
html_title = f"unirun {release}"


def _skip_named_copies(
    app: object, what: str, name: str, obj: object, skip: bool, options: object
) -> bool | None:
    """Skip each executor's copy of a method it inherits (a copy only so that
    its errors name the executor): it is documented once, on the base."""
    wrapped = getattr(obj, "__wrapped__", None)
    if wrapped is not None and getattr(obj, "__code__", 0) is getattr(
        wrapped, "__code__", 1
    ):
        return True
    return None


def setup(app: Any) -> None:
    """Connect the hooks above."""
    app.connect("autodoc-skip-member", _skip_named_copies)
