"""Shared by the packaging tests: the build script as a module, and Blender's own extension tool."""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


@cache
def build_script() -> ModuleType:
    """``scripts/build_extension.py`` (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("md_build_extension", REPO / "scripts" / "build_extension.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@cache
def standins() -> ModuleType:
    """``scripts/standins.py``: the one list of test peers, which is never shipped."""
    spec = importlib.util.spec_from_file_location("md_standins", REPO / "scripts" / "standins.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def blender_ext() -> ModuleType:
    """Blender's ``blender_ext.py`` as a module: its wheel and path rules are the ones Blender applies."""
    bx = build_script()
    return bx.load_blender_ext(bx.blender_ext_tool())  # type: ignore[no-any-return]
