"""Speak Line and the cast in real Blender: a line spoken by the eSpeak NG stand-in (and converted by the RVC stand-in
for a cast character) lands at the playhead; the cast is saved with the .blend."""

from __future__ import annotations

import importlib
import wave
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from blender_support import MODULE, LayoutRecorder
from movie_director.clients.rvc.standin_api import RvcApiStandin
from movie_director.clients.serving import AppThread
from movie_director.clients.speech import standin


@pytest.fixture
def speech_addon(addon: ModuleType) -> Iterator[tuple[ModuleType, AppThread, RvcApiStandin]]:
    import bpy

    with AppThread(standin.make_app) as tts, RvcApiStandin(["keeper", "narrator"]) as rvc:
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.speech.urls, prefs.rvc.urls = tts.url, rvc.url
        try:
            yield addon, tts, rvc
        finally:
            addon.addon_runtime.shutdown()
            prefs.speech.urls = prefs.rvc.urls = ""


def _scene(frame: int = 40):  # type: ignore[no-untyped-def]
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 24
    scene.frame_current = frame
    return scene


def _seconds(path: str) -> float:
    with wave.open(path, "rb") as fh:
        return fh.getnframes() / fh.getframerate()


def test_a_spoken_line_lands_at_the_playhead_as_long_as_it_is(speech_addon: Any) -> None:
    addon, _tts, rvc = speech_addon
    scene = _scene(frame=40)
    editor = scene.sequence_editor_create()
    blocker = editor.strips.new_effect(name="block", type="COLOR", channel=1, frame_start=1, length=200)
    line = addon.api.speak_line("The lamp is out, keeper.", voice="en_us_ben").wait(30)
    assert line.error == "" and line.strip is not None
    strip = editor.strips[line.strip]
    spoken = line.speech.status().outputs.files[0].path
    assert strip.type == "SOUND" and Path(bpy_abspath(strip.sound.filepath)) == Path(spoken)
    assert strip.frame_final_start == 40 and strip.channel == 2  # channel 1 is taken at the playhead
    assert strip.frame_final_duration == round(_seconds(spoken) * 24)
    assert strip["movie_director_line"] == "The lamp is out, keeper."
    assert line.voice is None and rvc.conversions == [] and blocker.channel == 1


def test_a_cast_character_speaks_with_its_voice_and_is_converted_to_its_rvc_voice(speech_addon: Any) -> None:
    import bpy

    addon, tts, rvc = speech_addon
    scene = _scene(frame=12)
    addon.api.set_cast("Keeper", tts_voice="en_us_frank", rvc_voice="keeper", pitch=-3)
    settings = scene.movie_director_speech
    settings.text, settings.character = "Who sent you?", "KEEPER"  # matched ignoring case
    assert bpy.ops.moviedir.speak_line() == {"FINISHED"}
    speak = importlib.import_module(".operators.speak_line", addon.__name__)
    line = speak.CURRENT["line"].wait(60)
    assert line.error == "" and line.voice is not None and line.strip is not None
    assert tts._runner is not None and tts._runner.app[standin.REQUESTS][-1]["voice"] == "en_us_frank"
    (conversion,) = rvc.conversions
    assert conversion["params"]["f0up_key"] == -3 and rvc.loads == ["keeper"]
    strip = scene.sequence_editor.strips[line.strip]
    converted = line.voice.status().outputs.files[0].path
    assert Path(bpy_abspath(strip.sound.filepath)) == Path(converted) and strip.frame_final_start == 12


def test_bad_lines_are_refused_in_words(speech_addon: Any) -> None:
    addon, _tts, _rvc = speech_addon
    scene = _scene()
    with pytest.raises(ValueError, match="the text is empty"):
        addon.api.speak_line("   ")
    addon.api.set_cast("MARA", tts_voice="en_gb_clara")
    with pytest.raises(ValueError, match=r"'TOM' is not in the cast \(the cast: MARA\)"):
        addon.api.speak_line("Hello.", character="TOM")
    line = addon.api.speak_line("Hello.", voice="af_heart").wait(30)
    assert "no voice 'af_heart'" in line.error and "en_us_anna" in line.error
    assert line.strip is None and (not scene.sequence_editor or not len(scene.sequence_editor.strips))


def test_refresh_lists_the_servers_voices_and_the_panels_draw(speech_addon: Any) -> None:
    import bpy

    addon, _tts, _rvc = speech_addon
    scene = _scene()
    assert bpy.ops.moviedir.refresh_speech_voices() == {"FINISHED"}
    job = addon.addon_runtime.last_handle.wait(30)
    assert job.outputs.data["voices"] == list(standin.VOICES)
    assert [v.name for v in bpy.context.window_manager.movie_director_speech_voices] == list(standin.VOICES)
    addon.api.set_cast("MARA", tts_voice="en_gb_clara", rvc_voice="narrator")
    for module, panel in ((".panels.speech", "MOVIEDIR_PT_speech"), (".panels.direct", "MOVIEDIR_PT_direct")):
        calls: list[tuple[str, str]] = []
        cls = getattr(importlib.import_module(module, addon.__name__), panel)
        cls.draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
        assert calls
    assert scene.movie_director_cast[0].character == "MARA"


def test_the_cast_is_saved_with_the_blend(addon: ModuleType, tmp_path: Path) -> None:
    import bpy

    _scene()
    addon.api.set_cast("MARA", tts_voice="en_gb_clara", rvc_voice="narrator", pitch=2)
    addon.api.set_cast("KEEPER", tts_voice="en_us_frank")
    path = str(tmp_path / "cast.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.read_homefile(use_empty=True)
    assert len(bpy.context.scene.movie_director_cast) == 0
    bpy.ops.wm.open_mainfile(filepath=path)
    cast = importlib.import_module(".operators.cast", addon.__name__)
    assert cast.as_dict(bpy.context.scene) == {
        "MARA": {"tts_voice": "en_gb_clara", "rvc_voice": "narrator", "pitch": 2},
        "KEEPER": {"tts_voice": "en_us_frank", "rvc_voice": "", "pitch": 0},
    }


def bpy_abspath(path: str) -> str:
    import bpy

    return bpy.path.abspath(path)


def test_the_chain_is_data_a_bare_job_with_the_placement_is_spoken_converted_and_placed(speech_addon: Any) -> None:
    """What a job brought back from the journal has: only its request and placement, no callback of ours."""
    addon, _tts, rvc = speech_addon
    scene = _scene(frame=5)
    speak = importlib.import_module(".operators.speak_line", addon.__name__)
    where = speak.line_placement(scene, "Come home.", name="KEEPER: Come home.", rvc_voice="narrator", pitch=4)
    handle = addon.api.submit("speech", "speak", {"text": "Come home.", "voice": "en_gb_dev"}, placement=where)
    line = speak.SpokenLine(handle).wait(60)
    assert addon.addon_runtime.current().journal.get(handle.id).placement.extra["rvc_voice"] == "narrator"
    assert line.error == "" and line.voice is not None and line.strip == "KEEPER: Come home."
    assert rvc.loads == ["narrator"] and rvc.conversions[0]["params"]["f0up_key"] == 4
    strip = scene.sequence_editor.strips[line.strip]
    assert strip.frame_final_start == 5 and strip["movie_director_line"] == "Come home."
    assert Path(bpy_abspath(strip.sound.filepath)) == Path(line.voice.status().outputs.files[0].path)
