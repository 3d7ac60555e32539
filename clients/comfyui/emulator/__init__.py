"""A protocol-faithful ComfyUI emulator: ``ComfyEmulator`` (asyncio), ``EmulatorThread`` (sync), ``python -m``."""

from __future__ import annotations

from .nodes import NODES, Folders, NodeDef, render_picture
from .server import KNOBS, VERSION, ComfyEmulator, EmulatorThread

__all__ = ["KNOBS", "NODES", "VERSION", "ComfyEmulator", "EmulatorThread", "Folders", "NodeDef", "render_picture"]
