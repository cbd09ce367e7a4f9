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
OURS = {"aisearch", "aisearch_local", "aisearch_eval", "langchain_aisearch", "llamaindex_aisearch"}


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


# --------------------------------------------------------------------------- what each one says

OUR_EXTRAS = {"aisearch_local": "local", "langchain_aisearch": "langchain"}
OUR_EXTRAS["llamaindex_aisearch"] = "llamaindex"
OUR_EXTRAS["aisearch_eval"] = "eval"
INSTALL = re.compile(r'pip install "aisearch-py\[([a-z,]+)\]"')
RUNS_THE_SERVER = re.compile(
    r"starts its own local AI\s+Search server|`make serve`"  # by itself, or started by the user
)
SCRIPTS_AND_NOTEBOOKS = sorted(
    [p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_")]
    + list((ROOT / "notebooks").glob("*.ipynb")),
    key=lambda p: p.name,
)


def _intro_and_code(path: Path) -> tuple[str, str]:
    """A script's docstring and code (with the `_target` helper it imports), or a notebook's
    first markdown cell and code cells."""
    if path.suffix == ".py":
        code = path.read_text()
        if "_target" in _imports(code):
            code += "\n" + (path.parent / "_target.py").read_text()
        return ast.get_docstring(ast.parse(code)) or "", code
    cells = json.loads(path.read_text())["cells"]
    intro = next("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    lines = [ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    return intro, "\n".join(lines)


def _extras_closure(extras: list[str]) -> set[str]:
    """The extras ``aisearch-py[extras]`` installs, self-references expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo, seen = list(extras), set()
    while todo:
        current = todo.pop()
        assert current in project["optional-dependencies"], f"no extra named {current!r}"
        if current not in seen:
            seen.add(current)
            for spec in project["optional-dependencies"][current]:
                req = Requirement(spec)
                if _norm(req.name) == _norm(project["name"]):
                    todo.extend(req.extras)
    return seen


@pytest.mark.parametrize("path", SCRIPTS_AND_NOTEBOOKS, ids=lambda p: p.name)
def test_each_example_and_notebook_says_what_it_needs_and_who_starts_the_server(path):
    intro, code = _intro_and_code(path)
    where = "module docstring" if path.suffix == ".py" else "first markdown cell"
    found = INSTALL.search(intro)
    assert found, f'{path.name}: say `pip install "aisearch-py[...]"` in its {where}'
    assert RUNS_THE_SERVER.search(intro), (
        f"{path.name}: say in its {where} that it starts its own local AI Search server "
        "(or that `make serve` must run first)"
    )
    # the extras it names install what it imports: ours through their extra, the rest as
    # distributions of those extras
    extras = found.group(1).split(",")
    closure = _extras_closure(extras)
    installed = set().union(*(_extra_distributions(e) for e in extras))
    dists = packages_distributions()
    local = {p.stem for p in (ROOT / "examples").glob("*.py")}
    imported = _imports(code) - local - {"aisearch"} - set(sys.stdlib_module_names)
    for mod in sorted(imported):
        if mod in OUR_EXTRAS:
            assert OUR_EXTRAS[mod] in closure, (
                f"{path.name} imports {mod}: needs [{OUR_EXTRAS[mod]}]"
            )
        else:
            names = {_norm(d) for d in dists.get(mod, [mod])}
            assert names & installed, f"{path.name} imports {mod}: {extras} do not install it"
