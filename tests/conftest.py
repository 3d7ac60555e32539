"""Shared fixtures. Real peers only: the runtime runs its real loop thread, servers are real aiohttp apps.

Blender's user folders are pointed at a throw-away directory *before* anything imports bpy, so tests never touch a
real user's Blender configuration.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_BLENDER_HOME = tempfile.mkdtemp(prefix="md-blender-home-")
os.environ["BLENDER_USER_RESOURCES"] = _BLENDER_HOME
os.environ.setdefault("PYTHONNOUSERSITE", "1")
atexit.register(shutil.rmtree, _BLENDER_HOME, True)

from movie_director.clients import local  # noqa: E402
from movie_director.runtime import BackendConfig, Runtime  # noqa: E402


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime with the in-process ``local`` backend (concurrency 2), stopped after the test."""
    runtime = Runtime(output_root=tmp_path / "out")
    runtime.register_backend("local", local.factory, BackendConfig(name="local", concurrency=2))
    yield runtime
    runtime.stop()
    assert not runtime.loop_thread.running
