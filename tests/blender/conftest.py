"""Real Blender (the ``bpy`` wheel): the add-on is installed the way Blender installs an extension (a folder in the
user extension repository, here a link to this checkout) and enabled through ``addon_utils``."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
from blender_support import MODULE, install
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.llm import standin
from movie_director.clients.serving import AppThread


@pytest.fixture
def addon() -> Iterator[ModuleType]:
    """The enabled add-on's package; disabled again (and checked for leftovers) after the test."""
    import addon_utils

    install()
    errors: list[BaseException] = []
    mod = addon_utils.enable(MODULE, default_set=True, handle_error=errors.append)
    assert not errors, errors
    assert mod is not None
    yield mod
    addon_utils.disable(MODULE, default_set=True, handle_error=errors.append)
    assert not errors, errors


@pytest.fixture
def backends(addon: ModuleType) -> Iterator[ModuleType]:
    """The add-on with the LLM stand-in and the ComfyUI emulator set in its preferences (what *Direct* needs)."""
    import bpy

    with AppThread(standin.make_app) as llm_server, EmulatorThread(step_delay=0.0) as emu:
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.llm.urls, prefs.comfyui.urls = llm_server.url, emu.url
        try:
            yield addon
        finally:
            addon.addon_runtime.shutdown()
            prefs.llm.urls = prefs.comfyui.urls = ""
