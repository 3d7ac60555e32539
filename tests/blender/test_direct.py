"""Direct a scene in real Blender: the rough cut's layout on the Sequencer, markers per shot, and a regenerated stage
replacing its strip in place while keeping the earlier take."""

from __future__ import annotations

import importlib
import itertools
import json
from collections.abc import Iterator
from types import ModuleType

import pytest
from blender_support import MODULE
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.llm import standin
from movie_director.clients.serving import AppThread
from support import pump_until

SCENE = 'Night. A lighthouse keeper climbs the stairs. He finds a bottle in the surf. "Who sent you?" he whispers.'


def _scene():  # type: ignore[no-untyped-def]
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 24
    scene.frame_current = 10
    return scene


def test_direct_lays_the_shots_out_in_order_with_markers(backends: ModuleType) -> None:
    scene = _scene()
    handle = backends.api.direct(
        SCENE, with_video=False, with_sound=False, with_voices=False, image_params={"width": 128, "height": 72}
    )
    spec = handle.wait(60)
    assert all(s.state.value == "succeeded" for s in spec.stages), [(s.id, s.state.value, s.error) for s in spec.stages]
    backends.api.runtime().pump()
    images = sorted((s for s in scene.sequence_editor.strips if s.type == "IMAGE"), key=lambda s: s.frame_final_start)
    shots = backends.clients.director.scene_result(spec).shots
    assert len(images) == len(shots) == 3
    frame = 10
    for strip, shot in zip(images, shots, strict=True):
        assert strip.channel == 1 and strip.frame_final_start == frame
        assert strip.frame_final_duration == round(shot.duration_s * 24)
        frame += strip.frame_final_duration
    markers = sorted(scene.timeline_markers, key=lambda m: m.frame)
    assert [m.frame for m in markers] == [s.frame_final_start for s in images]
    assert all(m.name.startswith(f"Shot {i}:") for i, m in enumerate(markers, start=1))


def test_regenerating_a_stage_replaces_its_strip_in_place_and_keeps_the_take(backends: ModuleType) -> None:
    scene = _scene()
    handle = backends.api.direct(
        SCENE, with_video=False, with_sound=False, with_voices=False, image_params={"width": 128, "height": 72}
    )
    handle.wait(60)
    backends.api.runtime().pump()
    before = {s["movie_director_stage"]: s for s in scene.sequence_editor.strips}
    old = before["shot2.image"]
    where, old_file = (old.channel, old.frame_final_start, old.frame_final_duration), old.elements[0].filename
    old_name = old.name
    old_job = handle.stage("shot2.image").job_id
    handle.regenerate("shot2.image")
    assert pump_until(backends.api.runtime(), lambda: handle.stage("shot2.image").job_id != old_job, timeout=10)
    handle.wait(60)
    backends.api.runtime().pump()
    after = {s["movie_director_stage"]: s for s in scene.sequence_editor.strips}
    new = after["shot2.image"]
    assert (new.channel, new.frame_final_start, new.frame_final_duration) == where
    assert len(after) == len(before)  # replaced, not added
    takes = json.loads(new["takes"])  # every file the strip has shown, in order: the old take, then the new one
    assert len(takes) == 2 and takes[0].endswith(old_file)
    assert takes[1].endswith(new.elements[0].filename) and not takes[1].endswith(old_file)
    assert new.name == old_name  # the same strip shows the new take: its effects and modifiers stay
    assert after["shot1.image"].name == before["shot1.image"].name  # the other shots were left alone


@pytest.fixture
def every_backend(addon: ModuleType) -> Iterator[ModuleType]:
    import bpy
    from gradio_support import AUDIOLDM, shared_apps
    from movie_director.clients.rvc.standin_api import RvcApiStandin
    from movie_director.clients.speech import standin as speech_standin
    from movie_director.clients.wan2gp.standin_mcp import StandinServer

    audioldm = shared_apps({"audioldm": AUDIOLDM})["audioldm"]
    with (
        AppThread(standin.make_app) as llm_server,
        EmulatorThread(step_delay=0.0) as emu,
        RvcApiStandin(voices=["keeper"]) as rvc,
        AppThread(speech_standin.make_app) as tts,
    ):
        wan = StandinServer(step_delay=0.0).start()
        prefs = bpy.context.preferences.addons[MODULE].preferences
        urls = {
            "llm": llm_server.url, "comfyui": emu.url, "wan2gp": wan.url, "audioldm": audioldm.url, "rvc": rvc.url,
            "speech": tts.url,
        }  # fmt: skip
        for name, url in urls.items():
            getattr(prefs, name).urls = url
        try:
            yield addon
        finally:
            addon.addon_runtime.shutdown()
            wan.stop()
            for name in urls:
                getattr(prefs, name).urls = ""


def test_a_full_rough_cut_puts_stills_clips_sounds_and_voices_on_their_channels(every_backend: ModuleType) -> None:
    scene = _scene()
    scene.frame_current = 1
    every_backend.api.set_cast("KEEPER", tts_voice="en_us_frank", rvc_voice="keeper", pitch=-2)
    handle = every_backend.api.direct(SCENE, video_steps=2, image_params={"width": 128, "height": 72, "steps": 2})
    spec = handle.wait(120)
    assert all(s.state.value == "succeeded" for s in spec.stages), [(s.id, s.error) for s in spec.stages]
    every_backend.api.runtime().pump()
    by_channel: dict[int, list] = {}
    for strip in scene.sequence_editor.strips:
        by_channel.setdefault(strip.channel, []).append(strip)
    assert {s.type for s in by_channel[1]} == {"IMAGE"} and len(by_channel[1]) == 3
    # Wan2GP's 16 fps clips in this 24 fps scene: each a meta strip holding the movie slowed to its real speed
    assert {s.type for s in by_channel[2]} == {"META"} and len(by_channel[2]) == 3
    sequencer = importlib.import_module(".operators.sequencer", every_backend.__name__)
    assert all(sequencer.movie_path(s).endswith(".avi") for s in by_channel[2])
    spans = {
        channel: sorted((s.frame_final_start, s.frame_final_duration) for s in by_channel[channel])
        for channel in (1, 2)
    }
    assert spans[2] == spans[1]  # each clip trimmed or held to its shot's length
    assert {s.type for s in by_channel[3]} == {"SOUND"} and len(by_channel[3]) == 3
    (voice,) = by_channel[4]  # the one line of dialogue, spoken in the cast's voice and converted to its RVC voice
    assert voice.type == "SOUND" and voice["movie_director_stage"] == "shot3.line1.voice"
    assert handle.stage("shot3.line1.speech").request["voice"] == "en_us_frank"
    assert voice.frame_final_duration <= round(handle.stage("shot3.line1.voice").outputs.data["duration_s"] * 24) + 1
    starts = sorted(s.frame_final_start for s in by_channel[1])
    for channel in (2, 3):
        assert sorted(s.frame_final_start for s in by_channel[channel]) == starts  # aligned with the stills
    assert voice.frame_final_start == starts[2]
    assert len(scene.timeline_markers) == 3


def test_uncast_lines_are_spoken_in_the_servers_first_voice_and_timed_into_their_shot(addon: ModuleType) -> None:
    """No RVC voice for anyone: the spoken lines themselves go on the cut, each in its share of the shot."""
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
            scene = _scene()
            scene.movie_director_llm.model = "director-llm"  # the Script panel's model is Direct's too
            handle = addon.api.direct(scene_text, with_video=False, with_sound=False, image_params={"width": 64})
            assert handle.stage("shots").request["model"] == "director-llm"
            spec = handle.wait(60)
            assert all(s.state.value == "succeeded" for s in spec.stages), [(s.id, s.error) for s in spec.stages]
            addon.api.runtime().pump()
            lines = sorted(
                (s for s in scene.sequence_editor.strips if s.type == "SOUND"), key=lambda s: s.frame_final_start
            )
            shots = addon.clients.director.scene_result(spec).shots
            spoken = [(shot, j) for shot in shots for j in range(1, len(shot.dialogue) + 1)]
            assert len(lines) == len(spoken) == 2 and len(shots[0].dialogue) == 2  # two lines in one shot
            assert all(s["movie_director_stage"].endswith(".speech") and s.channel == 4 for s in lines)
            assert all(handle.stage(s["movie_director_stage"]).outputs.data["voice"] == "en_us_anna" for s in lines)
            for a, b in itertools.pairwise(lines):
                assert a.frame_final_end <= b.frame_final_start  # never on top of each other
        finally:
            addon.addon_runtime.shutdown()
            prefs.llm.urls = prefs.comfyui.urls = prefs.speech.urls = ""
