"""The director pipeline against the stand-ins: an offline LLM writes the shot list, the ComfyUI emulator draws a
storyboard still per shot; the scene result reads back as typed shots."""

from __future__ import annotations

from pathlib import Path

from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.director import DirectOptions, plan_scene, scene_result
from movie_director.clients.llm import client as llm
from movie_director.clients.llm import standin
from movie_director.clients.serving import AppThread
from movie_director.runtime import BackendConfig, Runtime

SCENE = 'Night. A lighthouse keeper climbs the stairs. He finds a bottle in the surf. "Who sent you?" he whispers.'


def test_a_scene_becomes_a_shot_list_and_a_still_per_shot(tmp_path: Path) -> None:
    with AppThread(standin.make_app) as llm_server, EmulatorThread(step_delay=0.0) as emu:
        rt = Runtime(output_root=tmp_path)
        rt.register_backend("llm", llm.factory, BackendConfig(name="llm", urls=llm_server.url, api_key="sk-demo"))
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emu.url, concurrency=2))
        try:
            opts = DirectOptions(with_video=False, with_sound=False, image_params={"width": 128, "height": 72})
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
