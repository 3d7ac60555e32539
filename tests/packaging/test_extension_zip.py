"""End to end: build the Linux zip from the lock with Blender's own tool, install it into a fresh Blender user folder
the way a user's drag-and-drop does, enable it, and generate an image through the *installed* copy.

The add-on runs in a child Python of its own (``python -I -S`` with only bpy and numpy on sys.path): this pytest
process already imports the checkout and its dependencies from .venv, and the child proves that aiohttp, pydantic,
mcp, gradio_client ... come from the wheels inside the zip. The ComfyUI emulator runs here; the child reaches it
over HTTP only. Downloaded wheels stay in ~/.cache/movie_director/wheels, so only the first run needs the network.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from movie_director.clients.comfyui.emulator import EmulatorThread
from packaging_support import REPO, build_script, standins

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
MODULE = "bl_ext.user_default.movie_director"
DEPENDENCIES = ("aiohttp", "yarl", "multidict", "pydantic", "pydantic_core", "httpx", "anyio", "mcp", "gradio_client")

pytestmark = pytest.mark.skipif(PYTHON not in ("3.11", "3.13"), reason="Blender's Pythons only")


def build_zip(out: Path) -> tuple[Path, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_extension.py"),
            *("--platforms", "linux-x64", "--pythons", PYTHON, "--output-dir", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = out.glob("*.zip")
    return path, time.monotonic() - started


@pytest.fixture(scope="module")
def linux_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path, seconds = build_zip(tmp_path_factory.mktemp("dist"))
    print(f"\nbuilt {path.name} ({path.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s")
    return path


def test_the_zip_holds_the_add_on_and_this_systems_locked_wheels_only(linux_zip: Path) -> None:
    bx = build_script()
    target = bx.Target("linux-x64", PYTHON)
    expected = sorted(f"wheels/{w.filename}" for w in bx.read_lock() if target in w.targets)
    with zipfile.ZipFile(linux_zip) as zf:
        names = zf.namelist()
        manifest = zf.read("blender_manifest.toml").decode()
    assert linux_zip.name == f"movie_director-0.1.0-linux_x64-py{PYTHON.replace('.', '')}.zip"
    assert sorted(n for n in names if n.startswith("wheels/")) == expected
    assert {"__init__.py", "api.py", "blender_manifest.toml", "clients/comfyui/client.py"} <= set(names)
    banned = ("tests/", "scripts/", "__pycache__", ".pyc")
    assert [n for n in names if any(b in n for b in banned) or n.startswith(".")] == []
    assert [n for n in names if standins().is_standin(n)] == []
    assert 'platforms = ["linux-x64"]' in manifest
    assert 'blender_version_min = "4.2.0"' in manifest  # one Python: Blender 4.2 LTS installs it too
    # small: the add-on's own files are a few hundred kB, the rest is the wheels of one Python
    # (OpenTimelineIO, for the hand-off, adds 0.9 MB)
    assert linux_zip.stat().st_size < 22_000_000


def test_building_again_from_the_lock_gives_the_same_zip(linux_zip: Path, tmp_path: Path) -> None:
    again, seconds = build_zip(tmp_path)
    assert seconds < 60  # everything comes from the wheel cache this time

    def content(path: Path) -> dict[str, tuple[int, int, tuple[int, ...]]]:
        with zipfile.ZipFile(path) as zf:
            return {i.filename: (i.CRC, i.file_size, i.date_time) for i in zf.infolist()}

    assert content(again) == content(linux_zip)
    assert again.read_bytes() == linux_zip.read_bytes()  # byte for byte, even the zip's own headers


CHILD = r"""
import json, os, platform, subprocess, sys, threading, time
import importlib.util

zip_path, emulator_url, tool = sys.argv[1:4]
deps = sys.argv[4].split(",")
result = {"visible_before": {d: importlib.util.find_spec(d) is not None for d in deps}}

import bpy, addon_utils

user = os.environ["BLENDER_USER_RESOURCES"]
repo = bpy.utils.user_resource("EXTENSIONS", path="user_default", create=True)
result["repo"] = repo
version = ".".join(str(v) for v in bpy.app.version)
proc = subprocess.run(
    [sys.executable, "-I", "-S", tool, "install-files", "--local-dir", repo, "--blender-version", version,
     "--python-version", platform.python_version(), zip_path],
    capture_output=True, text=True,
)
result["install"] = [proc.returncode, proc.stdout[-2000:] + proc.stderr[-2000:]]

threads_before = sorted(t.name for t in threading.enumerate())
addon_utils.extensions_refresh(ensure_wheels=True)
errors = []
mod = addon_utils.enable("__MODULE__", default_set=True, handle_error=errors.append)
result["enable_errors"] = [repr(e) for e in errors]
result["addon_file"] = getattr(mod, "__file__", None)

files = {}
for name in deps:
    module = __import__(name)
    files[name] = module.__file__
result["dependency_files"] = files

prefs = bpy.context.preferences.addons["__MODULE__"].preferences
prefs.comfyui.urls = emulator_url
from bl_ext.user_default.movie_director import api

scene = bpy.context.scene
scene.frame_current = 12
started = time.monotonic()
job = api.generate_image("a lighthouse in the fog", steps=2, width=64, height=64, seed=3).wait(60)
result["job"] = {"state": job.state.value, "error": str(job.error) if job.error else None,
                 "files": [f.path for f in job.outputs.files], "seconds": round(time.monotonic() - started, 2)}
strips = list(scene.sequence_editor.strips) if scene.sequence_editor else []
result["strips"] = [[s.type, s.channel, s.frame_final_start] for s in strips]
images = [i for i in bpy.data.images if i.filepath and bpy.path.abspath(i.filepath) in result["job"]["files"]]
result["images"] = [list(i.size) for i in images]
result["runtime_threads"] = sorted(t.name for t in threading.enumerate())

errors.clear()
addon_utils.disable("__MODULE__", default_set=True, handle_error=errors.append)
result["disable_errors"] = [repr(e) for e in errors]
deadline = time.monotonic() + 5
while time.monotonic() < deadline and sorted(t.name for t in threading.enumerate()) != threads_before:
    time.sleep(0.05)
result["threads_before"] = threads_before
result["threads_after"] = sorted(t.name for t in threading.enumerate())
result["sys_path"] = sys.path
print("RESULT " + json.dumps(result))
sys.stdout.flush()
os._exit(0)  # the bpy module's own teardown is not what is tested here
""".replace("__MODULE__", MODULE)


def bpy_only_path(into: Path) -> Path:
    """A folder holding links to bpy and numpy (which Blender bundles) and nothing else of the venv."""
    spec = importlib.util.find_spec("bpy")
    assert spec and spec.submodule_search_locations
    site = Path(next(iter(spec.submodule_search_locations))).parent
    into.mkdir()
    for name in ("bpy", "numpy", "numpy.libs"):
        if (site / name).exists():
            (into / name).symlink_to(site / name)
    return into


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread(step_delay=0.005) as emu:
        yield emu


@pytest.mark.timeout(900)
def test_the_installed_zip_generates_an_image_with_its_bundled_wheels(
    linux_zip: Path, emulator: EmulatorThread, tmp_path: Path
) -> None:
    bx = build_script()
    user = tmp_path / "blender-user"
    home = tmp_path / "home"
    home.mkdir()
    paths = bpy_only_path(tmp_path / "bpy-only")
    script = tmp_path / "child.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(paths)!r})\n" + CHILD)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "BLENDER_USER_RESOURCES": str(user),
        "PYTHONNOUSERSITE": "1",
        "TMPDIR": str(tmp_path),
    }
    tool = str(bx.blender_ext_tool())
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(script), str(linux_zip), emulator.url, tool, ",".join(DEPENDENCIES)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-4000:] + proc.stderr[-4000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    print(f"\ninstall + enable + one image + disable in a fresh Blender: {time.monotonic() - started:.1f} s")

    # Nothing of the venv was importable before the zip's wheels were installed.
    assert result["visible_before"] == dict.fromkeys(DEPENDENCIES, False)
    assert not any(".venv" in p or "site-packages" in p for p in result["sys_path"] if "extensions" not in p)
    assert result["install"][0] == 0, result["install"][1]
    assert result["enable_errors"] == []
    assert result["repo"].startswith(str(user))
    assert result["addon_file"].startswith(os.path.join(result["repo"], "movie_director") + os.sep)
    wheels_site = os.path.join(str(user), "extensions", ".local", "lib", f"python{PYTHON}", "site-packages") + os.sep
    assert {n: f.startswith(wheels_site) for n, f in result["dependency_files"].items()} == dict.fromkeys(
        DEPENDENCIES, True
    ), result["dependency_files"]

    job = result["job"]
    assert job["state"] == "succeeded", job
    assert len(job["files"]) == 1 and job["files"][0].startswith(str(user)), job
    assert result["strips"] == [["IMAGE", 1, 12]]
    assert result["images"] == [[64, 64]]
    assert len(emulator.emulator.history) == 1  # the server really ran it
    assert any(name.startswith("movie-director") for name in result["runtime_threads"])

    assert result["disable_errors"] == []
    assert result["threads_after"] == result["threads_before"], result["threads_after"]
