"""The add-on layer in real Blender: registration, the pump timer, callbacks on the main thread, headless waits."""

from __future__ import annotations

import threading
from types import ModuleType

from blender_support import MODULE, LayoutRecorder, install
from support import pump_until, thread_names

LOOP = "movie-director-loop"


def test_register_unregister_twenty_times_leaves_no_threads() -> None:
    import addon_utils

    install()
    before = threading.active_count()
    for _ in range(20):
        mod = addon_utils.enable(MODULE, default_set=True)
        assert mod is not None
        mod.api.submit("local", "echo", {"text": "x"}).wait(5)  # starts the runtime and its thread
        assert LOOP in thread_names()
        addon_utils.disable(MODULE, default_set=True)
        assert LOOP not in thread_names()
    assert threading.active_count() == before


def test_enabling_starts_nothing(addon: ModuleType) -> None:
    import bpy

    assert addon.addon_runtime.current() is None
    assert LOOP not in thread_names()
    assert not bpy.app.timers.is_registered(addon.addon_runtime.pump_timer)


def test_callbacks_run_on_the_main_thread_and_headless_wait_needs_no_timer(addon: ModuleType) -> None:
    import bpy

    api = addon.api
    main = threading.main_thread()
    seen: list[threading.Thread] = []
    handle = api.submit("local", "echo", {"text": "hello", "steps": 3, "delay": 0.01})
    handle.on_progress(lambda job: seen.append(threading.current_thread()))
    handle.on_complete(lambda job: seen.append(threading.current_thread()))
    assert bpy.app.background
    job = handle.wait(5)  # timers never tick in module mode: wait() pumps itself
    assert job.state.value == "succeeded" and job.outputs.text == "hello"
    assert seen and all(t is main for t in seen)


def test_pump_timer_is_fast_while_busy_slow_when_idle_and_then_gone(addon: ModuleType) -> None:
    import bpy

    ar = addon.addon_runtime
    rt = ar.runtime()
    assert bpy.app.timers.is_registered(ar.pump_timer)
    handle = rt.submit("local", "hang")
    assert ar.pump_timer() == ar.ACTIVE_INTERVAL
    handle.cancel()
    assert pump_until(rt, lambda: handle.done)
    assert ar.pump_timer() == ar.IDLE_INTERVAL
    results = [ar.pump_timer() for _ in range(ar.IDLE_TICKS + 1)]
    assert results[-1] is None


def test_unregister_cancels_jobs_and_stops_the_runtime(addon: ModuleType) -> None:
    import addon_utils
    import bpy

    rt = addon.api.runtime()
    handle = rt.submit("local", "hang")
    rt.call(__import__("asyncio").sleep(0.05)).result(2)
    addon_utils.disable(MODULE, default_set=True)
    assert handle.done and handle.status().state.value == "cancelled"
    assert LOOP not in thread_names()
    assert not bpy.app.timers.is_registered(addon.addon_runtime.pump_timer)
    addon_utils.enable(MODULE, default_set=True)  # the fixture disables it again


def test_preferences_and_panels_draw(addon: ModuleType) -> None:
    import bpy

    prefs = bpy.context.preferences.addons[MODULE].preferences
    assert prefs is not None and hasattr(prefs, "comfyui")
    calls: list[tuple[str, str]] = []
    names = ["output_dir", "templates_dir", *(info.name for info in addon.clients.registry.visible())]
    fake = type("P", (), {"layout": LayoutRecorder(calls), "bl_rna": prefs.bl_rna})()
    for name in names:
        setattr(fake, name, getattr(prefs, name))
    prefs.draw.__func__(fake, bpy.context)
    assert ("prop", "urls") in calls and ("operator", "moviedir.test_connection") in calls

    from bl_ext.user_default.movie_director.panels import sidebar

    addon.api.submit("local", "hang")
    addon.api.runtime().pump()
    for panel in (sidebar.MOVIEDIR_PT_backends, sidebar.MOVIEDIR_PT_jobs):
        assert panel.bl_idname in dir(bpy.types)
        calls.clear()
        panel.draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
        assert calls
    assert ("operator", "moviedir.cancel_job") in calls and any(kind == "progress" for kind, _ in calls)


def test_api_key_never_lands_in_a_blend_file_or_a_repr(addon: ModuleType, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import bpy

    key = "sk-movie-director-secret-0123456789"
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.comfyui.api_key = key
    rt = addon.api.runtime()
    config = rt.config("comfyui")
    assert config.key() == key and key not in repr(config)
    path = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    assert key.encode() not in path.read_bytes()
    prefs.comfyui.api_key = ""


def test_bad_preferences_are_refused_with_a_message(addon: ModuleType) -> None:
    import bpy

    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.comfyui.urls = "not a url"
    assert "is not a server URL" in prefs.comfyui.url_error
    rt = addon.api.runtime()
    assert rt.config("comfyui").url == "http://127.0.0.1:8188"  # the default stays in use
    prefs.comfyui.urls = "http://127.0.0.1:9999"
    assert prefs.comfyui.url_error == "" and rt.config("comfyui").url == "http://127.0.0.1:9999"
    prefs.comfyui.urls = ""
