"""Sound Effect in real Blender against the AudioLDM stand-in (a real Gradio app in its own process): a sound strip of
the requested length lands at the playhead on the first free channel, made straight from the app's waveform video."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from blender_support import MODULE, LayoutRecorder
from gradio_support import AUDIOLDM, GradioApp, shared_apps, stop_shared
from support import pump_until

SOUND_MODULES = (".operators.sound_effect", ".panels.audio")


@pytest.fixture(scope="session")
def audioldm_app() -> Iterator[GradioApp]:
    """The AudioLDM stand-in (shared with tests/audioldm when both run)."""
    yield shared_apps({"audioldm": AUDIOLDM})["audioldm"]
    stop_shared("audioldm")


@pytest.fixture
def sound_addon(addon: ModuleType, audioldm_app: GradioApp) -> Iterator[tuple[ModuleType, GradioApp]]:
    """The add-on with the sound modules registered (by the add-on itself once they are in its ``_MODULES``) and its
    AudioLDM backend pointed at the stand-in."""
    import bpy

    app = audioldm_app
    mine = [importlib.import_module(n, addon.__name__) for n in SOUND_MODULES if n not in addon._MODULES]
    for module in mine:
        module.register()
    try:
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.audioldm.urls = app.url
        yield addon, app
        addon.addon_runtime.shutdown()
        prefs.audioldm.urls = ""
    finally:
        for module in reversed(mine):
            module.unregister()


def _sound(addon: ModuleType) -> ModuleType:
    return importlib.import_module(".operators.sound_effect", addon.__name__)


def _scene(fps: int = 24) -> Any:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = fps
    scene.sequence_editor_create()
    return scene


def test_console_sound_lands_at_the_playhead_with_the_requested_length(sound_addon: Any) -> None:
    addon, _ = sound_addon
    scene = _scene(24)
    scene.frame_current = 30
    first = _sound(addon).sound_effect("a heavy door slams in a stone hall", seconds=5.0, seed=3)
    second = _sound(addon).sound_effect("gulls over the harbour", seconds=2.5)
    assert first.wait(60).state.value == "succeeded", first.status().error
    assert second.wait(60).state.value == "succeeded", second.status().error
    strips = sorted(scene.sequence_editor.strips, key=lambda s: s.channel)
    assert [s.type for s in strips] == ["SOUND", "SOUND"]
    assert [s.frame_final_start for s in strips] == [30, 30]
    assert [s.channel for s in strips] == [1, 2]  # the second went to the first free channel
    assert abs(strips[0].frame_final_duration - 120) <= 1  # 5 s at 24 fps
    assert abs(strips[1].frame_final_duration - 60) <= 1  # 2.5 s at 24 fps
    assert strips[0].sound.filepath.endswith(".avi")  # straight from the app's waveform video
    assert first.status().outputs.data["duration_s"] == pytest.approx(5.0, abs=0.01)


def test_the_sound_length_follows_the_scene_frame_rate(sound_addon: Any) -> None:
    addon, _ = sound_addon
    scene = _scene(25)
    handle = _sound(addon).sound_effect("rain on a tin roof", seconds=7.5, frame=10)
    assert handle.wait(60).state.value == "succeeded", handle.status().error
    (strip,) = scene.sequence_editor.strips
    assert strip.type == "SOUND" and strip.frame_final_start == 10
    assert abs(strip.frame_final_duration - 187.5) <= 1  # 7.5 s at 25 fps


def test_the_operator_from_a_script_returns_at_once(sound_addon: Any) -> None:
    import bpy

    addon, _ = sound_addon
    scene = _scene(30)
    scene.frame_current = 12
    settings = scene.movie_director_sound
    settings.prompt = "wind through pines"
    settings.seconds = 2.5
    settings.candidates = 1
    assert bpy.ops.moviedir.sound_effect() == {"FINISHED"}
    handle = addon.api.last_job()
    assert handle is not None and not handle.done  # queued, not waited for
    job = handle.wait(60)
    assert job.state.value == "succeeded", job.error
    assert job.request["text"] == "wind through pines" and job.request["n_candidates"] == 1
    (strip,) = scene.sequence_editor.strips
    assert strip.frame_final_start == 12 and abs(strip.frame_final_duration - 75) <= 1


def test_a_missing_description_is_refused(sound_addon: Any) -> None:
    import bpy

    scene = _scene()
    scene.movie_director_sound.prompt = "  "
    with pytest.raises(RuntimeError, match="Describe the sound first"):
        bpy.ops.moviedir.sound_effect()


def test_the_panel_shows_settings_button_and_progress(sound_addon: Any) -> None:
    import bpy

    addon, _ = sound_addon
    panel = importlib.import_module(".panels.audio", addon.__name__)
    _scene()
    handle = _sound(addon).sound_effect("a long low drone", seconds=10.0, n_candidates=5)
    rt = addon.addon_runtime.runtime()
    assert pump_until(rt, lambda: (handle.status().progress.step or 0) >= 1 or handle.done, timeout=30)
    calls: list[tuple[str, str]] = []
    panel.MOVIEDIR_PT_sound.draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    assert ("prop", "prompt") in calls and ("prop", "seconds") in calls and ("prop", "steps") in calls
    assert ("operator", "moviedir.sound_effect") in calls
    if not handle.done:
        (bar,) = [text for kind, text in calls if kind == "progress"]
        assert bar.startswith(("DDIM Sampler", "running", "queued"))
    assert handle.wait(60).state.value == "succeeded"
