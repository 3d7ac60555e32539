"""A directed scene hands off with what made it: each strip's generation settings, the dialogue as subtitles, the
shots on the storyboard sheet, and an .otio that carries them all."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import opentimelineio as otio
from blender_support import MODULE
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.llm import standin
from movie_director.clients.serving import AppThread

SCENE = 'Night. A lighthouse keeper climbs the stairs. He finds a bottle in the surf. "Who sent you?" he whispers.'


def test_a_directed_scene_exports_with_its_generation_settings_and_subtitles(
    backends: ModuleType, tmp_path: Path
) -> None:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 24
    handle = backends.api.direct(
        SCENE, with_video=False, with_sound=False, with_voices=False, image_params={"width": 128, "height": 72}
    )
    spec = handle.wait(60)
    backends.api.runtime().pump()
    shots = backends.clients.director.scene_result(spec).shots
    images = [s for s in scene.sequence_editor.strips if s.type == "IMAGE"]
    for strip in images:
        settings = json.loads(strip["movie_director_generation"])
        stage = handle.stage(strip["movie_director_stage"])
        assert settings["backend"] == "comfyui" and settings["model"] == "storyboard-frame"
        assert settings["seed"] == stage.request["params"]["seed"] and settings["prompt"]
    # no voice was chosen: each line is subtitled over its shot
    lines = [(s.index, d["line"]) for s in shots for d in s.dialogue]
    assert lines, "the stand-in LLM turns quoted speech into dialogue"
    texts = sorted((s for s in scene.sequence_editor.strips if s.type == "TEXT"), key=lambda s: s.frame_final_start)
    assert [t.text for t in texts] == [line for _, line in lines]
    marker_of = {int(m.name.split(":")[0].split()[1]): m.frame for m in scene.timeline_markers}
    assert [t.frame_final_start for t in texts] == [marker_of[i] for i, _ in lines]
    path = backends.api.export_cut(str(tmp_path / "cut.otio"), scene=scene)
    timeline = otio.adapters.read_from_file(str(path))
    stills = [c for c in timeline.find_clips() if c.metadata["movie_director"]["kind"] == "still"]
    assert len(stills) == len(shots)
    assert all(c.metadata["movie_director"]["generation"]["backend"] == "comfyui" for c in stills)
    assert [s["description"] for s in timeline.metadata["movie_director"]["shots"]] == [s.description for s in shots]
    sheet = backends.api.storyboard_sheet(str(tmp_path / "sheet.png"), scene=scene)
    assert sheet.stat().st_size > 10_000
    srt = backends.api.export_cut(str(tmp_path / "cut.srt"), scene=scene).read_text()
    assert "Who sent you?" in srt


def test_spoken_lines_without_a_cast_voice_are_subtitled_where_they_are_said(addon: ModuleType) -> None:
    import bpy
    from movie_director.clients.speech import standin as speech_standin

    scene_text = 'Night. "Who is there?" the keeper calls into the dark, "answer me!" The door creaks.'
    with (
        AppThread(standin.make_app) as llm_server,
        EmulatorThread(step_delay=0.0) as emu,
        AppThread(speech_standin.make_app) as tts,
    ):
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.llm.urls, prefs.comfyui.urls, prefs.speech.urls = llm_server.url, emu.url, tts.url
        try:
            bpy.ops.wm.read_homefile(use_empty=True)
            scene = bpy.context.scene
            scene.render.fps = 24
            scene.movie_director_llm.model = "director-llm"
            handle = addon.api.direct(scene_text, with_video=False, with_sound=False, image_params={"width": 64})
            spec = handle.wait(60)
            assert all(s.state.value == "succeeded" for s in spec.stages), [(s.id, s.error) for s in spec.stages]
            addon.api.runtime().pump()
            spoken = {s["movie_director_stage"]: s for s in scene.sequence_editor.strips if s.type == "SOUND"}
            texts = [s for s in scene.sequence_editor.strips if s.type == "TEXT"]
            assert len(texts) == len(spoken) == 2
            for text in texts:  # each subtitle exactly over its spoken line (stage shot<i>.line<j>.speech)
                said = spoken[text["movie_director_stage"].replace(".subtitle", ".speech")]
                assert (text.frame_final_start, text.frame_final_end) == (said.frame_final_start, said.frame_final_end)
            assert sorted(t.text for t in texts) == ["Who is there?", "answer me!"]
        finally:
            addon.addon_runtime.shutdown()
            prefs.llm.urls = prefs.comfyui.urls = prefs.speech.urls = ""
