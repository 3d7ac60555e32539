"""The extension's lock, manifest and file selection, checked offline with the rules of Blender's own tool."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging_support import REPO, blender_ext, build_script, standins

# Modules that Blender itself provides to add-ons.
BLENDER_MODULES = {
    "bpy",
    "bpy_extras",
    "bl_ext",
    "bl_ui",
    "bl_operators",
    "addon_utils",
    "mathutils",
    "bmesh",
    "gpu",
    "gpu_extras",
    "blf",
    "aud",
    "idprop",
    "imbuf",
    "rna_prop_ui",
    "_bpy",
    "numpy",  # bundled with Blender's Python (its own glTF exporter needs it); the bpy wheel requires it too
}


def locked() -> list:  # type: ignore[type-arg]
    return build_script().read_lock()  # type: ignore[no-any-return]


def requirement_blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """(requirement, marker, hashes) of each pip requirement line of the lock (continuations joined)."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.strip().startswith("#")))
    blocks = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        spec = line.split("--hash", 1)[0].strip()
        requirement, _, marker = (part.strip() for part in spec.partition(";"))
        blocks.append((requirement, marker, hashes))
    return blocks


def test_the_manifest_lists_exactly_the_locked_wheels_and_every_platform() -> None:
    bx = build_script()
    manifest = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    assert manifest["platforms"] == ["windows-x64", "macos-arm64", "macos-x64", "linux-x64"]
    assert manifest["wheels"] == [f"./wheels/{w.filename}" for w in sorted(locked(), key=lambda w: w.filename)]
    assert bx.manifest_wheels((REPO / "blender_manifest.toml").read_text()) == sorted(w.filename for w in locked())
    # what the project must never change by accident
    identity = (manifest["id"], manifest["version"], manifest["blender_version_min"])
    assert identity == ("movie_director", "0.1.0", "4.2.0")


def test_each_target_gets_one_wheel_per_distribution_that_blender_accepts_for_it() -> None:
    bx = build_script()
    assert bx.check_lock(locked(), blender_ext()) == []
    for target in bx.ALL_TARGETS:  # and every target has the whole closure, not just some of it
        names = {w.name for w in locked() if target in w.targets}
        assert {"aiohttp", "pydantic", "pydantic-core", "gradio-client", "mcp", "httpx", "yarl"} <= names, target
        binaries = [w.filename for w in locked() if target in w.targets and not w.pure]
        tag = {"windows-x64": "win_amd64", "macos-arm64": "arm64", "macos-x64": "x86_64", "linux-x64": "manylinux"}
        plat = tag[target.platform]
        assert all(plat in f or "universal2" in f for f in binaries), (target, binaries)
    assert any("pywin32" in w.filename for w in locked())  # markers of the target, not of this Linux machine


def test_the_top_level_requirements_are_locked_at_the_versions_the_tests_use() -> None:
    bx = build_script()
    dev_pins = {}
    for line in (REPO / "requirements-dev.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s#]+)", line)
        if m:
            dev_pins[bx.canonical(m.group(1).split("[")[0])] = m.group(2)
    wanted: dict[tuple[str, object], str] = {}  # (name, target) -> version ("" = any), where the marker holds
    for requirement in bx.read_requirements():
        spec, _, marker = (part.strip() for part in requirement.partition(";"))
        name, _, version = spec.partition("==")
        name = bx.canonical(name)
        for target in bx.ALL_TARGETS:
            if not marker or Marker(marker).evaluate(bx.marker_environment(target)):
                assert (name, target) not in wanted, f"two requirements of {name} hold for {target}"
                wanted[name, target] = version
    # a requirement every target leaves out by its marker (opentimelineio on Intel Macs' Python 3.13) is not locked
    for (name, target), version in wanted.items():
        found = [w for w in locked() if w.name == name and target in w.targets]
        assert len(found) == 1, (name, target)
        if version:
            assert found[0].version == version, (name, target)
    for name in {n for n, _ in wanted}:
        versions = {v for (n, t), v in wanted.items() if n == name and t.platform == "linux-x64"}  # type: ignore[attr-defined]
        for version in versions - {""}:
            assert dev_pins.get(name) == version, f"requirements-dev.txt must pin {name}=={version} too"
    otio = {t for (n, t) in wanted if n == "opentimelineio"}
    assert bx.Target("macos-x64", "3.13") not in otio and len(otio) == len(bx.ALL_TARGETS) - 1


def test_pip_reads_the_lock_and_its_markers_pick_each_targets_wheels() -> None:
    bx = build_script()
    text = (REPO / "extension-lock.txt").read_text()
    blocks = requirement_blocks(text)
    by_hash = {w.sha256: w for w in locked()}
    assert sorted(h for _, _, hs in blocks for h in hs) == sorted(by_hash)
    for target in bx.ALL_TARGETS:
        env = bx.marker_environment(target)
        chosen = {h for _, marker, hs in blocks if not marker or Marker(marker).evaluate(env) for h in hs}
        expected = {w.sha256 for w in locked() if target in w.targets}
        # a line's hashes may include other targets' files (pip picks the one whose tags fit); none may be missing
        assert expected <= chosen, target
        chosen_names = [r for r, marker, _ in blocks if not marker or Marker(marker).evaluate(env)]
        assert len(chosen_names) == len({w.name for w in locked() if target in w.targets}), target


def test_parse_lock_round_trips_format_lock() -> None:
    bx = build_script()
    wheels = locked()
    again = bx.parse_lock(bx.format_lock(wheels, bx.read_requirements()))
    assert [(w.filename, w.sha256, w.targets) for w in again] == [(w.filename, w.sha256, w.targets) for w in wheels]
    with pytest.raises(bx.BuildError):
        bx.parse_lock("# nothing here\n")


def test_with_wheels_rewrites_only_the_generated_lists() -> None:
    bx = build_script()
    text = (REPO / "blender_manifest.toml").read_text()
    rewritten = bx.with_wheels(text, ["linux-x64"], ["a-1-py3-none-any.whl"])
    data = tomllib.loads(rewritten)
    assert data["platforms"] == ["linux-x64"] and data["wheels"] == ["./wheels/a-1-py3-none-any.whl"]
    original = tomllib.loads(text)
    for key in ("id", "version", "name", "permissions", "build", "blender_version_min"):
        assert data[key] == original[key]
    assert bx.with_wheels(rewritten, original["platforms"], [w.rsplit("/", 1)[1] for w in original["wheels"]]) == text


def shipped_files() -> list[str]:
    return build_script().package_files(blender_ext())  # type: ignore[no-any-return]


def test_the_package_leaves_out_tests_tools_emulators_and_stand_ins() -> None:
    files = shipped_files()
    assert "__init__.py" in files and "api.py" in files and "clients/comfyui/client.py" in files
    assert "clients/comfyui/templates/builtin/txt2img.json" in files
    banned = re.compile(
        r"^(tests|scripts|wheels|docs|build|dist|\.venv|\.git)/|__pycache__|\.pyc$|"
        r"^(Makefile|pyproject\.toml|.*\.md|.*\.txt)$|^\."
    )
    assert [f for f in files if banned.search(f)] == []
    assert [f for f in files if standins().is_standin(f)] == []
    # every source file of the add-on is either shipped or deliberately left out
    sources = {
        p.relative_to(REPO).as_posix() for d in ("runtime", "operators", "panels") for p in (REPO / d).rglob("*.py")
    }
    assert {s for s in sources if "__pycache__" not in s} <= set(files)


def _module_file(parts: list[str], files: set[str]) -> str | None:
    path = "/".join(parts)
    for candidate in (f"{path}.py", f"{path}/__init__.py"):
        if candidate in files:
            return candidate
    return None


def test_shipped_modules_import_only_what_the_zip_brings() -> None:
    """Relative imports must land on shipped files; other imports on the stdlib, Blender, or a locked wheel."""
    bx = build_script()
    files = set(shipped_files())
    on_disk = {p.relative_to(REPO).as_posix() for p in REPO.rglob("*.py") if ".venv" not in p.parts}
    locked_names = {w.name for w in locked() if bx.Target("linux-x64", "3.11") in w.targets}
    problems = []
    for rel in sorted(f for f in files if f.endswith(".py")):
        package = rel.split("/")[:-1]
        tree = ast.parse((REPO / rel).read_text(), rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                parts = base + (node.module.split(".") if node.module else [])
                # (a module that does not exist at all is its author's business, not the package's)
                if _module_file(parts, on_disk) and not _module_file(parts, files):
                    problems.append(f"{rel}: from {'.' * node.level}{node.module or ''}: left out of the zip")
                for alias in node.names:  # `from . import x` where x is a module
                    sub = [*parts, alias.name]
                    if _module_file(sub, on_disk) and not _module_file(sub, files):
                        problems.append(f"{rel}: {'.'.join(sub)} is left out of the zip")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top in BLENDER_MODULES or top == "__future__":
                        continue
                    if top == "movie_director":
                        continue
                    if bx.canonical(top) not in locked_names:
                        problems.append(f"{rel}: imports {name}, which no locked wheel provides")
    assert problems == []


def test_modules_loaded_by_name_are_shipped() -> None:
    """registry.BACKENDS and the add-on's module list are imported with importlib at run time."""
    import movie_director
    from movie_director.clients import registry

    files = set(shipped_files())
    on_disk = {p.relative_to(REPO).as_posix() for p in REPO.rglob("*.py") if ".venv" not in p.parts}
    names = [["clients", *info.module.lstrip(".").split(".")] for info in registry.BACKENDS]
    names += [name.lstrip(".").split(".") for name in movie_director._MODULES]
    assert [n for n in names if _module_file(n, on_disk) and not _module_file(n, files)] == []
    assert _module_file(["clients", "comfyui", "client"], files)


def test_requirements_name_the_direct_imports() -> None:
    """Third-party packages the shipped code imports by name are top-level requirements, not luck of the closure."""
    bx = build_script()
    direct = {bx.canonical(r.partition("==")[0]) for r in bx.read_requirements()}
    imported: set[str] = set()
    for rel in shipped_files():
        if rel.endswith(".py"):
            for node in ast.walk(ast.parse((REPO / rel).read_text())):
                if isinstance(node, ast.Import):
                    imported.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    imported.add(node.module.split(".")[0])
    third_party = {
        bx.canonical(n)
        for n in imported
        if n not in sys.stdlib_module_names and n not in BLENDER_MODULES and n not in ("__future__", "movie_director")
    }
    assert third_party <= direct, sorted(third_party - direct)


def test_the_lock_file_is_what_format_lock_writes() -> None:
    bx = build_script()
    text = (REPO / "extension-lock.txt").read_text()
    assert bx.format_lock(locked(), bx.read_requirements()) == text
    assert Path(bx.LOCK) == REPO / "extension-lock.txt"


def test_a_zip_with_wheels_for_two_pythons_asks_for_blender_4_3(tmp_path: Path) -> None:
    """Blender 4.2.0 installs the cp313 build of a wheel under Python 3.11 (checked with bpy 4.2.0): such a zip must
    refuse 4.2 with Blender's own message; the Python 3.11 zip keeps 4.2."""
    bx = build_script()
    names = ["pydantic_core-2.50.4-cp311-cp311-win_amd64.whl", "pydantic_core-2.50.4-cp313-cp313-win_amd64.whl"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    wheels = [bx.LockedWheel(n, "0" * 64, "pydantic-core", "2.50.4") for n in names]
    paths = {n: tmp_path / n for n in names}
    both = bx.stage(blender_ext(), wheels, paths, ["windows-x64"], tmp_path / "both")
    one = bx.stage(blender_ext(), wheels[:1], paths, ["windows-x64"], tmp_path / "one")
    assert tomllib.loads((both / "blender_manifest.toml").read_text())["blender_version_min"] == bx.MULTI_PYTHON_MIN
    assert tomllib.loads((one / "blender_manifest.toml").read_text())["blender_version_min"] == "4.2.0"
    assert sorted(p.name for p in (both / "wheels").iterdir()) == names
