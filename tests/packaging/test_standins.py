"""One list of stand-ins (scripts/standins.py): the manifest's exclude patterns, coverage's omit patterns and the
zip test all derive from it, and agree with it and with the files on disk."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import standins  # noqa: E402


def test_the_manifest_excludes_exactly_the_standins() -> None:
    manifest = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    patterns = manifest["build"]["paths_exclude_pattern"]
    clients = [p for p in patterns if p.startswith("/clients/")]
    assert clients == standins.manifest_patterns()


def test_coverage_omits_exactly_the_standins() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert config["tool"]["coverage"]["run"]["omit"] == standins.coverage_omit()


def test_every_standin_file_on_disk_is_matched_and_no_shipped_client_is() -> None:
    files = [p.relative_to(REPO).as_posix() for p in (REPO / "clients").rglob("*.py") if "__pycache__" not in p.parts]
    found = {f for f in files if standins.is_standin(f)}
    assert "clients/comfyui/emulator/server.py" in found
    assert {"clients/llm/standin.py", "clients/faultproxy.py", "clients/serving.py"} <= found
    assert not any(f in found for f in ("clients/comfyui/client.py", "clients/http.py", "clients/llm/client.py"))
    # a file named like a stand-in is one
    assert all(f in found for f in files if "/standin" in f or "/emulator/" in f)
