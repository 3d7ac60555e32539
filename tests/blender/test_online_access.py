"""Blender's online access: servers outside this computer are refused while it is off, with a message saying how
to allow it; loopback always works."""

from __future__ import annotations

from types import ModuleType

from blender_support import MODULE


def test_a_remote_server_is_refused_while_online_access_is_off(addon: ModuleType) -> None:
    import bpy

    assert bpy.app.online_access is False  # the bpy module's default, as in a fresh Blender
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.comfyui.urls = "http://192.0.2.1:8188"  # TEST-NET-1: never contacted
    try:
        job = addon.api.generate_image("x", steps=1).wait(10)
        assert job.state.value == "failed" and job.error is not None
        assert job.error.code == "online_access_disabled"
        assert "Preferences > System > Network" in job.error.message
        info = addon.api.test_connection("comfyui", timeout=5)
        assert not info.ok and "online access" in info.message
    finally:
        prefs.comfyui.urls = ""
        addon.addon_runtime.shutdown()


def test_loopback_needs_no_online_access(addon: ModuleType) -> None:
    import bpy
    from movie_director.clients.comfyui.emulator import EmulatorThread

    prefs = bpy.context.preferences.addons[MODULE].preferences
    with EmulatorThread(step_delay=0.0) as emu:
        prefs.comfyui.urls = emu.url.replace("127.0.0.1", "localhost")
        try:
            assert addon.api.test_connection("comfyui", timeout=10).ok
        finally:
            prefs.comfyui.urls = ""
            addon.addon_runtime.shutdown()
