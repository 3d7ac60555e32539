"""The ComfyUI client's modules import one another in one direction only: no circle, lazy imports and TYPE_CHECKING
imports included (read from the source, so an import hidden in a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "comfyui"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Modules of this package that ``path`` imports (relative imports resolved)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    base = here if is_package else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        up = node.level - 1
        if up > len(base):
            continue  # leaves the package (runtime/, clients/http): not this graph
        target = base[: len(base) - up] + (node.module.split(".") if node.module else [])
        candidates = [".".join(target)] + [".".join([*target, alias.name]) for alias in node.names]
        found.update(c for c in candidates if c in MODULES)
    return found - {name}


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_no_import_circle_in_the_comfyui_client() -> None:
    graph = {name: _imports(path, name) for name, path in MODULES.items()}
    for name in graph:  # a package's __init__ re-exports its modules: an edge into it is an edge to them
        graph[name] = {t for t in graph[name] if MODULES[t].name != "__init__.py" or t == ""} | {
            m for t in graph[name] if MODULES[t].name == "__init__.py" for m in graph[t]
        }
    circles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not circles, f"import circles: {circles}"
    assert "client" not in graph["connection"] and "client" not in graph["tracking"]
    assert "templates.convert" not in graph["templates.schema"]
