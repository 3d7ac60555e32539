"""Shared fixtures. Real peers only: the runtime runs its real loop thread, servers are real aiohttp apps.

Blender's user folders are pointed at a throw-away directory *before* anything imports bpy, so tests never touch a
real user's Blender configuration.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from movie_director.clients.scratch import scratch_root  # plain Python: imports no bpy

os.environ["BLENDER_USER_RESOURCES"] = str(scratch_root("md-blender-home-"))  # removed at exit
os.environ.setdefault("PYTHONNOUSERSITE", "1")

from movie_director.clients import local
from movie_director.runtime import BackendConfig, Runtime


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime with the in-process ``local`` backend (concurrency 2), stopped after the test."""
    runtime = Runtime(output_root=tmp_path / "out")
    runtime.register_backend("local", local.factory, BackendConfig(name="local", concurrency=2))
    yield runtime
    runtime.stop()
    assert not runtime.loop_thread.running
