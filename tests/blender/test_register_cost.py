"""Enabling the add-on stays cheap: it registers classes and imports none of the heavy modules (pydantic, aiohttp,
the runtime's engine, the clients, the hand-off's writers and OpenTimelineIO), which load on the first job or
export. Checked in a fresh process, where nothing else has imported them yet. (The time itself is a benchmark:
``register_ms`` in scripts/bench.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support import REPO

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import blender_main_thread as b
b.install()
import addon_utils
addon_utils.extensions_refresh()
b.enable("md_empty_a")  # Blender's own one-time extension set-up
before = set(sys.modules)
b.enable()
enabled = sorted(set(sys.modules) - before)
# The hand-off still works from the operator: its modules load on this first use.
import bpy
bpy.context.scene.timeline_markers.new("Shot 1", frame=1)
done = bpy.ops.moviedir.storyboard_sheet(filepath=sys.argv[2])
print(json.dumps({"enabled": enabled, "done": sorted(done), "after": sorted(set(sys.modules) - before)}))
"""


#: Work modules that load on first use (an export, a render, a placed clip, the first job), named so that a
#: module-level import creeping back into an operator or panel fails here.
LAZY = (
    "clients.handoff.cut",  # the cut's data classes: read on the first export, sheet or render
    "clients.handoff.files",
    "clients.handoff.otio_io",
    "clients.handoff.sheet",
    "clients.handoff.srt",
    "clients.handoff.provenance",
    "clients.wan2gp.schema",  # DEFAULT_FPS: when a clip is placed
    "runtime.errors",  # named in the operators' except clauses: imported with the first job
)
#: The only client and runtime modules enabling may import (the registry the preferences list, the URL check of the
#: preferences, the hand-off's error that the operators name).
ALLOWED = {"clients", "clients.registry", "clients.handoff", "clients.handoff.errors", "runtime", "runtime.urls"}


def test_enabling_imports_no_heavy_module(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "home"))
    sheet = tmp_path / "sheet.png"
    cmd = [sys.executable, "-c", PROBE, str(REPO / "scripts"), str(sheet)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    imported = result["enabled"]
    heavy = ("pydantic", "aiohttp", "sqlite3", "email", "gradio_client", "websockets", "opentimelineio")
    heavy += ("difflib", "uuid")  # stdlib, but only a job needs them
    assert not [m for m in imported if m.split(".")[0] in heavy]
    ours = [m.removeprefix("bl_ext.user_default.movie_director.") for m in imported if ".movie_director." in m]
    assert "operators.generate_image" in ours and "operators.handoff" in ours  # the probe did enable the add-on
    assert not [m for m in ours if m in LAZY]
    assert not [m for m in ours if m.startswith(("clients", "runtime")) and m not in ALLOWED]
    # First use: the operator loads what it needs and works.
    assert result["done"] == ["FINISHED"] and sheet.read_bytes().startswith(b"\x89PNG")
    loaded = [m.removeprefix("bl_ext.user_default.movie_director.") for m in result["after"]]
    assert "clients.handoff.sheet" in loaded and "clients.handoff.cut" in loaded
