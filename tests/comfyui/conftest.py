"""A real ComfyUI emulator (aiohttp, own thread) and a runtime whose comfyui backend points at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.runtime import BackendConfig, Runtime


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    emu = EmulatorThread(step_delay=0.01).start()
    yield emu
    emu.stop()


@pytest.fixture
def comfy_rt(emulator: EmulatorThread, tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(output_root=tmp_path / "out")
    rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emulator.url, concurrency=2))
    yield rt
    rt.stop()
