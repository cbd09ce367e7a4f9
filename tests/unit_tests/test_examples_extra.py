"""The ``[examples]`` extra installs every third-party package the examples and notebooks import."""

from __future__ import annotations

import ast
import json
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
Requirement = pytest.importorskip("packaging.requirements").Requirement

ROOT = Path(__file__).resolve().parents[2]
OURS = {"aisearch", "aisearch_local", "langchain_aisearch", "llamaindex_aisearch"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(source: str) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            mods.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            mods.add(node.module.partition(".")[0])
    return mods


def _imported_by_examples() -> dict[str, set[str]]:
    """Top-level third-party modules, each with the files importing it."""
    found: dict[str, set[str]] = {}
    local = {p.stem for p in (ROOT / "examples").glob("*.py")}
    sources = {p.name: p.read_text() for p in (ROOT / "examples").glob("*.py")}
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        lines = [
            ln for ln in "\n".join(code).splitlines() if not ln.lstrip().startswith(("%", "!"))
        ]
        sources[nb.name] = "\n".join(lines)
    for name, source in sources.items():
        for mod in _imports(source) - OURS - local - set(sys.stdlib_module_names):
            found.setdefault(mod, set()).add(name)
    return found


def _extra_distributions(extra: str) -> set[str]:
    """The distributions ``aisearch-py[extra]`` names, self-references expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    names = {_norm(Requirement(r).name) for r in project["dependencies"]}
    todo, seen = [extra], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for spec in extras[current]:
            req = Requirement(spec)
            if _norm(req.name) == _norm(project["name"]):
                todo.extend(req.extras)
            else:
                names.add(_norm(req.name))
    return names


def test_the_examples_extra_installs_what_the_examples_import():
    imported = _imported_by_examples()
    assert {"langchain", "llama_index", "matplotlib"} <= imported.keys()  # the scan works
    installed = _extra_distributions("examples")
    dists = packages_distributions()
    missing = {
        mod: sorted(files)
        for mod, files in imported.items()
        if not {_norm(d) for d in dists.get(mod, [mod])} & installed
    }
    assert not missing, f"add to the [examples] extra in pyproject.toml: {missing}"
