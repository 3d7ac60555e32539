"""Jobs outlive Blender: one Blender process queues shots and quits mid-job; a second opens the same .blend and finds
every result where it was asked (scene, frame, channel), with no prompt sent twice.

Two real ``bpy`` processes (a restart cannot be faked inside one), one ComfyUI emulator in this process, one shared
Blender user folder (so one journal), as a film-maker's machine has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from movie_director.clients.comfyui.emulator import EmulatorThread
from support import REPO

PRELUDE = """
import json, sys, time
sys.path.insert(0, {tests!r})
import bpy, addon_utils
from blender_support import MODULE, install
install()
errors = []
assert addon_utils.enable(MODULE, default_set=True, handle_error=errors.append) is not None, errors
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.comfyui.urls = {url!r}
prefs.comfyui.concurrency = 1
from bl_ext.user_default.movie_director import addon_runtime, api
"""

FIRST = """
bpy.ops.wm.read_homefile(use_empty=True)
scene = bpy.context.scene
scene.name, scene.render.fps = "Cut", 24
bpy.ops.wm.save_as_mainfile(filepath={blend!r})
handles = [api.generate_image(f"shot {{i}}", frame=f, width=64, height=64, steps=30, seed=i)
           for i, f in enumerate((10, 60, 110))]
rt = api.runtime()
end = time.monotonic() + 30
while handles[0].status().state.value != "running" and time.monotonic() < end:
    rt.pump(); time.sleep(0.01)
assert handles[0].status().state.value == "running", handles[0].status()
scene.name = "Final Cut"  # renamed after asking: found again by its stable id
bpy.ops.wm.save_mainfile()
print("JOBS", json.dumps([h.id for h in handles]), flush=True)
# Quit mid-job, as closing Blender does: the journal keeps the jobs.
"""

SECOND = """
bpy.ops.wm.read_homefile(use_empty=True)  # Blender starts with another file: the jobs resume at once
assert addon_runtime.current() is not None, "starting did not resume the jobs"
shown = [h.id for h in api.jobs()]
api.runtime().pump()
bpy.ops.wm.open_mainfile(filepath={blend!r})  # results that finished meanwhile wait for their own file
jobs = api.wait_all(120)
api.runtime().pump()
scene = bpy.data.scenes["Final Cut"]
strips = sorted(scene.sequence_editor.strips, key=lambda s: s.frame_final_start)
print("RESULT", json.dumps({{
    "shown": shown,
    "states": {{j.id: j.state.value for j in jobs}},
    "strips": [[s.type, s.frame_final_start, s.channel] for s in strips],
    "other_scenes": [s.name for s in bpy.data.scenes if s.name != "Final Cut"],
}}), flush=True)
addon_runtime.shutdown()
"""


def _run(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180, cwd=str(REPO)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _line(out: str, tag: str) -> object:
    (line,) = [ln for ln in out.splitlines() if ln.startswith(tag + " ")]
    return json.loads(line[len(tag) + 1 :])


@pytest.mark.timeout(300)
def test_jobs_queued_before_a_restart_land_where_they_were_asked_and_run_once(tmp_path: Path) -> None:
    home = tmp_path / "blender-home"
    home.mkdir()
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(home), PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    blend = str(tmp_path / "cut.blend")
    with EmulatorThread(step_delay=0.03) as emu:
        fmt = {"tests": str(REPO / "tests"), "url": emu.url, "blend": blend}
        first = _run((PRELUDE + FIRST).format(**fmt), env)
        ids = _line(first, "JOBS")
        second = _run((PRELUDE + SECOND).format(**fmt), env)
        result = _line(second, "RESULT")
        accepted = list(emu.emulator.accepted)
    assert isinstance(ids, list) and isinstance(result, dict)
    assert set(ids) <= set(result["shown"])  # the jobs panel had them at once
    assert all(result["states"][i] == "succeeded" for i in ids)
    assert result["strips"] == [["IMAGE", 10, 1], ["IMAGE", 60, 1], ["IMAGE", 110, 1]]
    assert result["other_scenes"] == []
    assert sorted(accepted) == sorted(set(accepted)) and len(accepted) == 3  # every prompt sent exactly once
