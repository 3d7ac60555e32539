"""Enabling the add-on stays cheap: it registers classes and imports none of the heavy modules (pydantic, aiohttp,
the runtime's engine, the clients), which load on the first job. Checked in a fresh process, where nothing else has
imported them yet."""

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
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_enabling_imports_no_heavy_module(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "home"))
    cmd = [sys.executable, "-c", PROBE, str(REPO / "scripts")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    imported = json.loads(out.stdout.strip().splitlines()[-1])
    heavy = ("pydantic", "aiohttp", "sqlite3", "email", "gradio_client", "websockets")
    assert not [m for m in imported if m.split(".")[0] in heavy]
    ours = [m.removeprefix("bl_ext.user_default.movie_director.") for m in imported if ".movie_director." in m]
    assert "operators.generate_image" in ours  # the probe did enable the add-on
    # The backends' clients and transports load with their first job (a light module, e.g. a schema, may load early).
    clients = [m for m in ours if m.startswith("clients.") and m.endswith((".client", "_transport", ".runner"))]
    assert not clients and "clients.http" not in ours
    assert not [m for m in ours if m.startswith("runtime.") and m not in ("runtime.errors", "runtime.urls")]
