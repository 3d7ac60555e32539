"""Generate Video in real Blender against the Wan2GP MCP stand-in: a movie strip of the requested length lands at
the playhead on the first free channel; the sidebar follows the job and lists the server's models."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from blender_support import MODULE, LayoutRecorder
from movie_director.clients.wan2gp.standin_mcp import StandinServer
from support import pump_until

VIDEO_MODULES = (".operators.generate_video", ".panels.video")
SMALL = {"resolution": "96x64", "num_inference_steps": 4}


@pytest.fixture
def video_addon(addon: ModuleType) -> Iterator[tuple[ModuleType, StandinServer]]:
    """The add-on with the video modules registered (by the add-on itself once they are in its ``_MODULES``) and its
    Wan2GP backend pointed at the stand-in."""
    import bpy

    mine = [importlib.import_module(n, addon.__name__) for n in VIDEO_MODULES if n not in addon._MODULES]
    for module in mine:
        module.register()
    try:
        with StandinServer(step_delay=0.005) as standin:
            prefs = bpy.context.preferences.addons[MODULE].preferences
            prefs.wan2gp.urls = standin.url
            yield addon, standin
            addon.addon_runtime.shutdown()
            prefs.wan2gp.urls = ""
    finally:
        for module in reversed(mine):
            module.unregister()


def _video(addon: ModuleType) -> ModuleType:
    return importlib.import_module(".operators.generate_video", addon.__name__)


def _scene(fps: int = 16) -> Any:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = fps
    scene.sequence_editor_create()
    return scene


def test_console_video_lands_at_the_playhead_with_the_requested_length(video_addon: Any) -> None:
    addon, _ = video_addon
    scene = _scene()
    scene.frame_current = 30
    handle = _video(addon).generate_video("a lighthouse in the fog", frames=17, **SMALL)
    job = handle.wait(30)
    assert job.state.value == "succeeded", job.error
    (strip,) = scene.sequence_editor.strips
    assert strip.type == "MOVIE" and strip.frame_final_start == 30 and strip.channel == 1
    assert strip.frame_final_duration == 17
    path = Path(strip.filepath)
    assert path == Path(job.outputs.files[0].path) and path.is_file()
    assert path.parent == addon.addon_runtime.runtime().output_root / "wan2gp" / job.id


def test_operator_from_a_script_uses_the_sidebar_settings_and_a_free_channel(video_addon: Any, tmp_path: Path) -> None:
    import bpy
    from PIL import Image

    addon, standin = video_addon
    scene = _scene(24)  # a film's rate: the 16 fps clip is slowed to its real length
    board = tmp_path / "board.png"
    Image.new("RGB", (96, 64), (250, 10, 10)).save(board)
    addon.operators.sequencer.place_image(scene, str(board), frame=1, duration=40, name="board")
    scene.frame_current = 12
    settings = scene.movie_director_video
    settings.model = "i2v"  # first: choosing a model clears the per-model settings
    settings.prompt = "night sea"
    settings.seconds = 1.5  # 24 frames at i2v's 16 frames a second
    settings.resolution, settings.steps, settings.seed = "96x64", 3, 7
    settings.use_start_image = True
    assert bpy.ops.moviedir.generate_video() == {"FINISHED"}
    handle = addon.api.last_job()
    assert handle is not None and not handle.done  # queued, not waited for
    job = handle.wait(30)
    assert job.state.value == "succeeded", job.error
    assert job.request["video_length"] == "1.5s" and job.request["seed"] == 7 and job.request["model_type"] == "i2v"
    assert job.request["num_inference_steps"] == 3 and "guidance_scale" not in job.request  # only what was set
    assert job.outputs.data["frames"] == 24 and job.outputs.data["fps"] == 16
    assert standin.engine.calls["create_upload"] == 1  # the strip under the playhead went up as the first frame
    movie = next(s for s in scene.sequence_editor.strips if s.name != "board")
    assert movie.type == "META" and movie.frame_final_start == 12
    assert movie.frame_final_duration == 36  # 24 frames at 16 fps = 1.5 s = 36 frames at 24 fps
    assert movie.channel == 2  # channel 1 holds the storyboard image at that frame


def test_a_missing_prompt_is_reported(video_addon: Any) -> None:
    import bpy

    scene = _scene()
    scene.movie_director_video.prompt = "  "
    with pytest.raises(RuntimeError, match="Write a prompt first"):
        bpy.ops.moviedir.generate_video()


def test_a_failed_video_is_reported_in_words(video_addon: Any) -> None:
    addon, _ = video_addon
    from bl_ext.user_default.movie_director.operators.base import describe_end

    scene = _scene()
    job = _video(addon).generate_video("x", frames=9, model_type="no_such_model", **SMALL).wait(30)
    level, message = describe_end(job, "The video")
    assert level == "ERROR" and "no_such_model" in message
    assert not list(scene.sequence_editor.strips)


def test_the_sidebar_lists_models_and_follows_the_running_video(video_addon: Any) -> None:
    import bpy

    addon, standin = video_addon
    video = _video(addon)
    panel = importlib.import_module(".panels.video", addon.__name__)
    _scene()  # (a new file has a new window manager: the list lives there)
    assert video.video_models().wait(10).state.value == "succeeded"
    names = [item.name for item in bpy.context.window_manager.movie_director_video_models]
    assert len(names) == 12 and "t2v_1.3B" in names

    standin.options.step_delay = 0.05
    handle = video.generate_video("slow", frames=9, resolution="96x64", num_inference_steps=100)
    rt = addon.addon_runtime.runtime()
    assert pump_until(rt, lambda: (handle.status().progress.step or 0) >= 2 and handle.status().log, timeout=15)
    calls: list[tuple[str, str]] = []

    panel.MOVIEDIR_PT_video.draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    assert ("prop_search", "model") in calls and ("prop", "seconds") in calls
    assert ("operator", "moviedir.generate_video") in calls and ("operator", "moviedir.refresh_video_models") in calls
    assert ("label", "12 models, listed just now") in calls
    (bar,) = [text for kind, text in calls if kind == "progress"]
    assert bar.startswith("inference ") and "/100" in bar  # then ", N s left" once the pace is known
    assert any(kind == "label" and "[stand-in]" in text for kind, text in calls)  # Wan2GP's latest console line
    handle.cancel()
    assert handle.wait(2).state.value == "cancelled"


def test_the_models_schema_fills_the_panel_and_loras_an_end_image_and_its_fps_reach_wan2gp(
    video_addon: Any, tmp_path: Path
) -> None:
    import bpy
    from PIL import Image

    addon, standin = video_addon
    video = _video(addon)
    panel = importlib.import_module(".panels.video", addon.__name__)
    scene = _scene(24)
    settings = scene.movie_director_video
    settings.model = "i2v_2_2"
    schema = video.video_schema("i2v_2_2").wait(10)
    assert schema.state.value == "succeeded", schema.error
    assert settings.flow_shift == 7.0 and settings.steps == 30  # the model's own defaults, filled in
    available = [item.name for item in bpy.context.window_manager.movie_director_video_loras]
    assert available == ["lightx2v_4step.safetensors", "orbit_shot.safetensors"]
    assert bpy.ops.moviedir.add_video_lora() == {"FINISHED"}
    assert bpy.ops.moviedir.add_video_lora() == {"FINISHED"}
    settings.loras[1].multiplier = 0.5
    assert [lora.name for lora in settings.loras] == available
    end = tmp_path / "end.png"
    Image.new("RGB", (96, 64), (10, 10, 250)).save(end)
    settings.prompt, settings.seconds, settings.resolution, settings.steps = "harbour", 1.0, "96x64", 2
    settings.end_image = str(end)
    calls: list[tuple[str, str]] = []
    panel.MOVIEDIR_PT_video.draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    assert ("prop", "end_image") in calls and ("prop", "flow_shift") in calls and ("prop", "multiplier") in calls
    assert ("operator", "moviedir.add_video_lora") in calls and ("operator", "moviedir.remove_video_lora") in calls
    assert ("label", "Wan2.2 Image2video 14B: 16 fps") in calls
    assert bpy.ops.moviedir.generate_video() == {"FINISHED"}
    job = addon.api.last_job().wait(30)
    assert job.state.value == "succeeded", job.error
    sent = standin.engine.sources[-1]
    assert sent["activated_loras"] == available and sent["loras_multipliers"] == "1 0.5"
    assert sent["image_end"] in standin.engine.gallery and sent["flow_shift"] == 7.0
    # Another model at another frame rate: its clip is as long as it plays.
    settings.model = "ltx2_22B_distilled"
    assert not settings.is_property_set("flow_shift")  # the previous model's defaults are not carried over
    settings.loras.clear()
    settings.end_image = ""
    scene.frame_current = 100
    job = video.generate_video("dunes", seconds=1.0, model_type="ltx2_22B_distilled", **SMALL).wait(30)
    assert job.state.value == "succeeded", job.error
    assert job.outputs.data["fps"] == 24 and job.outputs.data["frames"] == 24
    movie = next(s for s in scene.sequence_editor.strips if s.frame_final_start == 100)
    assert movie.frame_final_duration == 24  # one second at the scene's 24 fps
    bad = video.generate_video("x", frames=9, model_type="t2v_1.3B", image_end=str(end), **SMALL).wait(30)
    assert bad.state.value == "failed" and "takes no end image" in bad.error.message


def test_use_settings_of_a_video_given_in_frames_sets_its_seconds_at_the_model_rate(video_addon: Any) -> None:
    addon, _ = video_addon
    video, api = _video(addon), addon.api
    scene = _scene(24)
    assert video.video_schema("ltx2_22B_distilled").wait(30).state.value == "succeeded"
    assert video.SCHEMAS["ltx2_22B_distilled"]["fps"] == 24
    job = video.generate_video("dunes", frames=48, model_type="ltx2_22B_distilled", **SMALL).wait(30)
    assert job.state.value == "succeeded", job.error
    copied, _ = api.use_settings(job)
    assert "seconds" in copied and scene.movie_director_video.seconds == pytest.approx(2.0)  # 48 frames at 24 fps
    video.SCHEMAS.clear()  # a model never asked: Wan2GP's own fallback rate
    copied, _ = api.use_settings(job)
    assert "seconds" in copied and scene.movie_director_video.seconds == pytest.approx(3.0)  # 48 frames at 16 fps
