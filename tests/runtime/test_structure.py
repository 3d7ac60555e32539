"""The code's shape, read from the AST (nothing is imported): ``clients/`` and ``runtime/`` never import bpy (lazy
imports included), no module of the shipped package takes part in an import circle, and runtime/ stays split along
the thread line in modules a reader can hold in their head."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import standins  # noqa: E402

#: Circles being taken apart at the time of writing, each xfail(strict=False) until it is gone (none left now). Any
#: circle NOT listed here fails test_no_import_circles.
KNOWN_CIRCLES: list[frozenset[str]] = []
#: No runtime/ module over this many lines (issue 11: "no module in runtime/ over ~400 lines").
MAX_RUNTIME_LINES = 400


def shipped_modules() -> dict[str, Path]:
    """Module name (relative to the package) -> file, for every .py the extension zip ships."""
    out: dict[str, Path] = {}
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO).as_posix()
        if rel.split("/")[0] in {"tests", "scripts", ".venv", "build", "dist", "docs"} or "__pycache__" in rel:
            continue
        if rel.startswith(".") or standins.is_standin(rel):
            continue
        parts = rel[:-3].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """(absolute dotted target, line) of every import statement anywhere in the tree (functions, TYPE_CHECKING too)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                yield f"{target}.{alias.name}" if target else alias.name, node.lineno
            yield target, node.lineno


def import_graph() -> dict[str, set[str]]:
    modules = shipped_modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        for target, _ in _imports(tree, name, path.name == "__init__.py"):
            target = target.removeprefix("movie_director.")
            if target in modules and target != name:
                graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_clients_and_runtime_never_import_bpy_not_even_lazily() -> None:
    offenders = []
    for folder in ("clients", "runtime"):
        for path in (REPO / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for target, line in _imports(tree, "x", False):
                if (
                    target == "bpy"
                    or target.startswith("bpy.")
                    or target.split(".")[0] in {"bpy", "bmesh", "mathutils"}
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{line} imports {target}")
            for node in ast.walk(tree):  # importlib.import_module("bpy") / __import__("bpy")
                if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                    name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                    if name in {"import_module", "__import__"} and str(node.args[0].value).split(".")[0] == "bpy":
                        offenders.append(f"{path.relative_to(REPO)}:{node.lineno} imports bpy dynamically")
    assert offenders == []


def test_the_bpy_scan_sees_lazy_and_type_checking_imports() -> None:
    source = "def f():\n    import bpy\nif TYPE_CHECKING:\n    from bpy.types import Scene\n"
    assert {t for t, _ in _imports(ast.parse(source), "x", False)} >= {"bpy", "bpy.types", "bpy.types.Scene"}


def test_no_import_circles_beyond_the_known_ones() -> None:
    graph = import_graph()
    assert "runtime.core" in graph and "addon_runtime" in graph and "clients.comfyui.emulator.server" not in graph
    unknown = [sorted(c) for c in circles(graph) if not any(c <= known or known <= c for known in KNOWN_CIRCLES)]
    assert unknown == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [frozenset({"a", "b", "c"})]


@pytest.mark.parametrize(
    "known",
    [pytest.param(c, id="-".join(sorted(c)), marks=pytest.mark.xfail(strict=False)) for c in KNOWN_CIRCLES],
)
def test_known_circle_is_gone(known: frozenset[str]) -> None:
    assert not any(known & c for c in circles(import_graph()))


def test_runtime_has_no_circle_and_the_bridge_knows_no_feature() -> None:
    graph = import_graph()
    assert [c for c in circles(graph) if any(m.startswith("runtime.") for m in c)] == []
    assert not any(t.startswith("operators") for t in graph["addon_runtime"])


def test_runtime_modules_stay_small() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (REPO / "runtime").glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_RUNTIME_LINES} == {}


def test_the_console_api_exports_everything_the_readme_shows() -> None:
    import re

    tree = ast.parse((REPO / "api.py").read_text())
    exported = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets)
    )
    shown = set(re.findall(r"\bapi\.([a-z_][a-z_0-9]*)\(", (REPO / "README.md").read_text()))
    assert shown and shown <= set(exported), sorted(shown - set(exported))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {name for name in exported if name[0].islower()} <= defined
    private = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("_")]
    assert [a for a in private if not a.startswith("__")] == []  # delegates to public functions only
