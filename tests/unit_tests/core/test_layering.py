"""Guard tests: the modules of ``aisearch`` import each other in one direction only.

The one circle allowed is httpx's idiom: ``_exceptions`` names ``_models`` under
``TYPE_CHECKING`` only (for annotations), while ``_models`` imports ``_exceptions``.
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import aisearch

PACKAGE = Path(aisearch.__file__).parent
ALLOWED_TYPE_CHECKING = {("aisearch._exceptions", "aisearch._models")}
CLIENTS = ("aisearch._client", "aisearch._management", "aisearch._async", "aisearch._sync")


def _modules() -> dict[str, Path]:
    found = {"aisearch": PACKAGE / "__init__.py"}
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="aisearch."):
        spec = info.module_finder.find_spec(info.name, None)  # type: ignore[call-arg]
        assert spec is not None and spec.origin is not None
        found[info.name] = Path(spec.origin)
    return found


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """``(module imported, under TYPE_CHECKING)`` for every import of ``aisearch`` modules.

    Every import counts, at module level or inside a function (a function-level import is
    still an edge of the graph, only a later one).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit_stmt(stmt, True)
                for stmt in child.orelse:
                    visit_stmt(stmt, guarded)
            else:
                visit_stmt(child, guarded)

    def visit_stmt(node: ast.AST, guarded: bool) -> None:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [base]
            # "from aisearch import _x" imports the submodule _x
            targets += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
        for target in targets:
            if target in MODULES and target != name:
                out.append((target, guarded))
        visit(node, guarded)

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``edges``, or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            found = walk(start)
            if found:
                return found
    return None


def test_the_walk_sees_the_modules_and_their_imports():
    assert {"aisearch._requests", "aisearch._parse", "aisearch._params"} <= set(MODULES)
    assert ("aisearch._models", True) in GRAPH["aisearch._exceptions"]
    assert ("aisearch._exceptions", False) in GRAPH["aisearch._models"]


def test_no_import_circle_but_the_type_checking_one():
    edges: dict[str, set[str]] = {}
    for name, imports in GRAPH.items():
        for target, guarded in imports:
            if guarded and (name, target) in ALLOWED_TYPE_CHECKING:
                continue
            edges.setdefault(name, set()).add(target)
    edges = {k: v - {"aisearch"} for k, v in edges.items() if k != "aisearch"}  # the facade
    circle = _cycle(edges)
    assert circle is None, " -> ".join(circle or [])


def test_no_module_below_the_clients_imports_them():
    # below: every module the clients import, directly or not (a module above, such as a
    # helper building clients for the adapters, may import them)
    below: set[str] = set()
    todo = [name for name in GRAPH if name.startswith(CLIENTS)]
    while todo:
        for target, _ in GRAPH[todo.pop()]:
            if not target.startswith(CLIENTS) and target not in below:
                below.add(target)
                todo.append(target)
    assert "aisearch._requests" in below
    for name in sorted(below):
        bad = [t for t, _ in GRAPH[name] if t.startswith(CLIENTS) or t == "aisearch"]
        assert not bad, f"{name} imports {bad}"


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_imports_first_in_a_fresh_interpreter():
    # each module is imported first, with no aisearch module loaded before it
    script = (
        "import importlib, sys\n"
        f"for name in {sorted(MODULES)!r}:\n"
        "    for loaded in [m for m in sys.modules if m.split('.')[0] == 'aisearch']:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
