"""Convert Voice in real Blender against the rvc-python stand-in: the converted line lands on the channel below the
original, aligned with it; the sidebar lists the server's voices."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from blender_support import MODULE, LayoutRecorder
from movie_director.clients import media
from movie_director.clients.rvc.standin_api import RvcApiStandin

VOICE_MODULES = (".operators.convert_voice", ".panels.voice")


@pytest.fixture
def voice_addon(addon: ModuleType) -> Iterator[tuple[ModuleType, RvcApiStandin]]:
    """The add-on with the voice modules registered (by the add-on itself once they are in its ``_MODULES``) and its
    RVC backend pointed at the stand-in."""
    import bpy

    mine = [importlib.import_module(n, addon.__name__) for n in VOICE_MODULES if n not in addon._MODULES]
    for module in mine:
        module.register()
    try:
        with RvcApiStandin(["alice", "bob"]) as standin:
            prefs = bpy.context.preferences.addons[MODULE].preferences
            prefs.rvc.urls = standin.url
            yield addon, standin
            addon.addon_runtime.shutdown()
            prefs.rvc.urls = ""
    finally:
        for module in reversed(mine):
            module.unregister()


def _scene_with_line(tmp_path: Path, *, channel: int, frame: int, seconds: float = 2.0) -> tuple[Any, Any]:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 24
    wav = media.write_wav(tmp_path / "line.wav", media.tone(seconds, freq=200.0))
    editor = scene.sequence_editor_create()
    strip = editor.strips.new_sound(name="line", filepath=str(wav), channel=channel, frame_start=frame)
    editor.active_strip = strip
    return scene, strip


def _voice_module(addon: ModuleType) -> ModuleType:
    return importlib.import_module(".operators.convert_voice", addon.__name__)


def test_console_conversion_lands_on_the_channel_below_aligned(voice_addon: Any, tmp_path: Path) -> None:
    addon, standin = voice_addon
    scene, original = _scene_with_line(tmp_path, channel=3, frame=30)
    job = _voice_module(addon).convert_voice("line", "bob", pitch=3).wait(30)
    assert job.state.value == "succeeded", job.error
    converted = next(s for s in scene.sequence_editor.strips if s != original)
    assert converted.type == "SOUND" and converted.name == "line (bob)"
    assert converted.channel == 2  # directly below the original
    assert converted.frame_start == original.frame_start == 30
    assert converted.frame_final_start == original.frame_final_start
    assert converted.frame_final_duration == original.frame_final_duration == 48  # two seconds at 24 fps
    assert Path(converted.sound.filepath) == Path(job.outputs.files[0].path)
    assert standin.loads == ["bob"] and standin.conversions[0]["params"]["f0up_key"] == 3


def test_operator_uses_the_sidebar_settings_and_the_nearest_free_channel(voice_addon: Any, tmp_path: Path) -> None:
    import bpy

    addon, standin = voice_addon
    scene, original = _scene_with_line(tmp_path, channel=1, frame=10)
    original.frame_offset_start = 6  # trimmed: the converted strip keeps the same trim
    other = media.write_wav(tmp_path / "music.wav", media.tone(3.0))
    scene.sequence_editor.strips.new_sound(name="music", filepath=str(other), channel=2, frame_start=1)
    settings = scene.movie_director_voice
    settings.voice, settings.pitch, settings.f0method = "alice", -2, "harvest"
    assert bpy.ops.moviedir.convert_voice() == {"FINISHED"}
    handle = addon.addon_runtime.last_handle
    assert handle is not None and not handle.done  # queued, not waited for
    job = handle.wait(30)
    assert job.state.value == "succeeded", job.error
    converted = scene.sequence_editor.strips["line (alice)"]
    assert converted.channel == 3  # no channel below 1; 2 is taken by the music over these frames
    assert converted.frame_start == original.frame_start
    assert converted.frame_final_start == original.frame_final_start == 16
    assert converted.frame_final_duration == original.frame_final_duration == 42
    assert standin.params["f0up_key"] == -2 and standin.params["f0method"] == "harvest"


def test_refresh_fills_the_sidebar_voice_list(voice_addon: Any, tmp_path: Path) -> None:
    import bpy

    addon, _standin = voice_addon
    _scene_with_line(tmp_path, channel=2, frame=1)
    voice = _voice_module(addon)
    assert bpy.ops.moviedir.refresh_voices() == {"FINISHED"}
    job = addon.addon_runtime.last_handle.wait(30)
    assert job.outputs.data["voices"] == ["alice", "bob"]
    assert [v.name for v in bpy.context.window_manager.movie_director_voices] == ["alice", "bob"]
    assert voice.voices().result(30).data["voices"] == ["alice", "bob"]  # the console form (from the cache)

    panel_module = importlib.import_module(".panels.voice", addon.__name__)
    calls: list[tuple[str, str]] = []

    panel_module.MOVIEDIR_PT_voice.draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    assert ("prop_search", "voice") in calls and ("prop", "pitch") in calls
    assert ("operator", "moviedir.refresh_voices") in calls and ("operator", "moviedir.convert_voice") in calls
    assert ("label", "2 voices, listed just now") in calls and ("label", "Strip: line") in calls


def test_unknown_voices_and_missing_strips_are_reported_in_words(voice_addon: Any, tmp_path: Path) -> None:
    import bpy

    addon, standin = voice_addon
    scene, _original = _scene_with_line(tmp_path, channel=2, frame=1)
    from bl_ext.user_default.movie_director.operators.base import describe_end

    job = _voice_module(addon).convert_voice("line", "zed").wait(30)
    level, message = describe_end(job, "The converted voice")
    assert level == "ERROR" and "'zed'" in message and "alice, bob" in message
    assert len(scene.sequence_editor.strips) == 1  # nothing placed
    scene.movie_director_voice.voice = ""
    with pytest.raises(RuntimeError, match="Pick a voice first"):
        bpy.ops.moviedir.convert_voice()
    with pytest.raises(ValueError, match="no strip named 'nope'"):
        _voice_module(addon).convert_voice("nope", "alice")
    scene.sequence_editor.active_strip = None
    assert not bpy.ops.moviedir.convert_voice.poll()
    assert standin.conversions == []
