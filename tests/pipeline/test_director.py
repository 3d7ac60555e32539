"""The director pipeline against the stand-ins: an offline LLM writes the shot list, the ComfyUI emulator draws a
storyboard still per shot; the scene result reads back as typed shots."""

from __future__ import annotations

from pathlib import Path

from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.director import CastVoices, DirectOptions, plan_scene, scene_result
from movie_director.clients.llm import client as llm
from movie_director.clients.llm import standin
from movie_director.clients.llm.shots import ShotList
from movie_director.clients.rvc import client as rvc_client
from movie_director.clients.rvc.standin_api import RvcApiStandin
from movie_director.clients.serving import AppThread
from movie_director.clients.speech import client as speech
from movie_director.clients.speech import standin as speech_standin
from movie_director.runtime import BackendConfig, Runtime

SCENE = 'Night. A lighthouse keeper climbs the stairs. He finds a bottle in the surf. "Who sent you?" he whispers.'


def test_a_scene_becomes_a_shot_list_and_a_still_per_shot(tmp_path: Path) -> None:
    with AppThread(standin.make_app) as llm_server, EmulatorThread(step_delay=0.0) as emu:
        rt = Runtime(output_root=tmp_path)
        rt.register_backend("llm", llm.factory, BackendConfig(name="llm", urls=llm_server.url, api_key="sk-demo"))
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emu.url, concurrency=2))
        try:
            opts = DirectOptions(
                with_video=False, with_sound=False, with_voices=False, image_params={"width": 128, "height": 72}
            )
            done = rt.run_pipeline(plan_scene(SCENE, opts)).wait(60)
            assert {s.state.value for s in done.stages} == {"succeeded"}, [(s.id, s.error) for s in done.stages]
            result = scene_result(done)
            assert [s.index for s in result.shots] == [1, 2, 3]
            assert all(s.image and Path(s.image).is_file() for s in result.shots)
            assert result.shots[2].dialogue == [{"character": "KEEPER", "line": "Who sent you?"}]
            assert result.duration_s == sum(s.duration_s for s in result.shots) > 0
        finally:
            rt.stop()


def test_a_failed_shot_list_fails_the_whole_plan_with_its_reason(tmp_path: Path) -> None:
    with EmulatorThread(step_delay=0.0) as emu:
        rt = Runtime(output_root=tmp_path)
        rt.register_backend("llm", llm.factory, BackendConfig(name="llm", urls="http://127.0.0.1:9"))
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emu.url))
        try:
            done = rt.run_pipeline(plan_scene(SCENE)).wait(30)
            (shots,) = done.stages
            assert shots.state.value == "failed" and "127.0.0.1:9" in shots.error
        finally:
            rt.stop()


def test_each_line_is_spoken_in_its_characters_cast_voices(tmp_path: Path) -> None:
    """The KEEPER's line: spoken by the speech stand-in with the cast's TTS voice, converted to its RVC voice; the
    shot list was asked with the cast's names; the LLM model is the configured one (none is named)."""
    with (
        AppThread(standin.make_app) as llm_server,
        EmulatorThread(step_delay=0.0) as emu,
        AppThread(speech_standin.make_app) as tts,
        RvcApiStandin(["keeper"]) as rvc,
    ):
        rt = Runtime(output_root=tmp_path)
        rt.register_backend("llm", llm.factory, BackendConfig(name="llm", urls=llm_server.url))
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emu.url, concurrency=2))
        rt.register_backend("speech", speech.factory, BackendConfig(name="speech", urls=tts.url))
        rt.register_backend("rvc", rvc_client.factory, BackendConfig(name="rvc", urls=rvc.url))
        try:
            cast = {"Keeper": CastVoices(tts_voice="en_us_frank", rvc_voice="keeper", pitch=-2)}
            opts = DirectOptions(
                with_video=False, with_sound=False, cast=cast, image_params={"width": 128, "height": 72}
            )
            spec = plan_scene(SCENE, opts)
            assert "KEEPER" not in spec.stages[0].request["system"] and "Keeper" in spec.stages[0].request["system"]
            assert spec.stages[0].request["model"] == ""  # the configured model, else the server's first
            done = rt.run_pipeline(spec).wait(60)
            assert {s.state.value for s in done.stages} == {"succeeded"}, [(s.id, s.error) for s in done.stages]
            stages = {s.id: s for s in done.stages}
            speech_stage, voice_stage = stages["shot3.line1.speech"], stages["shot3.line1.voice"]
            assert speech_stage.request["voice"] == "en_us_frank" and speech_stage.outputs is not None
            assert tts._runner is not None
            assert tts._runner.app[speech_standin.REQUESTS][-1]["input"] == "Who sent you?"
            assert voice_stage.request["voice"] == "keeper" and rvc.conversions[0]["params"]["f0up_key"] == -2
            shot = scene_result(done).shots[2]
            assert voice_stage.outputs is not None and shot.voices == [voice_stage.outputs.files[0].path]
        finally:
            rt.stop()


def test_characters_outside_the_cast_speak_with_the_defaults_and_older_dialogue_shapes_parse() -> None:
    opts = DirectOptions(cast={"MARA": CastVoices(tts_voice="a")}, speech_voice="b", voice="rvc-b")
    assert opts.voices_for("  mara ").tts_voice == "a" and opts.voices_for("TOM") == CastVoices(
        tts_voice="b", rvc_voice="rvc-b"
    )
    old = ShotList.model_validate(
        {"title": "t", "shots": [{"description": "d", "duration_s": 2, "camera": "c", "sound_cues": [],
                                  "dialogue": ["MARA: Come in.", {"speaker": "TOM", "line": "No."}, "Hm."]}]}
    )  # fmt: skip
    assert [(d.character, d.line) for d in old.shots[0].dialogue] == [
        ("MARA", "Come in."), ("TOM", "No."), ("SOMEONE", "Hm.")
    ]  # fmt: skip
