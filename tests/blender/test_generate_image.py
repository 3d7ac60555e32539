"""Generate Image in real Blender against the ComfyUI emulator: strips at the playhead, images in bpy.data."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import ModuleType

import pytest
from blender_support import MODULE
from movie_director.clients.comfyui.emulator import EmulatorThread


@pytest.fixture
def comfy_addon(addon: ModuleType) -> Iterator[ModuleType]:
    import bpy

    with EmulatorThread(step_delay=0.005) as emu:
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.comfyui.urls = emu.url
        yield addon
        addon.addon_runtime.shutdown()
        prefs.comfyui.urls = ""


def _fresh_scene():  # type: ignore[no-untyped-def]
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 24
    return scene


def test_console_api_places_images_at_the_playhead_on_free_channels(comfy_addon: ModuleType) -> None:
    import bpy

    scene = _fresh_scene()
    scene.frame_current = 30
    api = comfy_addon.api
    first = api.generate_image("a lighthouse at night", width=128, height=72, steps=3, seed=1)
    second = api.generate_image("a bottle on the shore", width=128, height=72, steps=3, seed=2)
    main = threading.main_thread()
    placed_on: list[threading.Thread] = []
    second.on_complete(lambda job: placed_on.append(threading.current_thread()))
    assert first.wait(30).state.value == "succeeded"
    assert second.wait(30).state.value == "succeeded"
    assert placed_on == [main]
    strips = sorted(scene.sequence_editor.strips, key=lambda s: s.channel)
    assert [s.type for s in strips] == ["IMAGE", "IMAGE"]
    assert [s.frame_final_start for s in strips] == [30, 30]
    assert [s.channel for s in strips] == [1, 2]  # the second went to the first free channel
    assert all(s.frame_final_duration == 48 for s in strips)  # two seconds at 24 fps
    path = first.status().outputs.files[0].path
    image = next(i for i in bpy.data.images if bpy.path.abspath(i.filepath) == path)
    assert tuple(image.size) == (128, 72)


def test_generate_operator_from_a_script_returns_at_once(comfy_addon: ModuleType) -> None:
    import bpy

    scene = _fresh_scene()
    settings = scene.movie_director_image
    settings.template = "txt2img"
    settings.prompt = "night sea"
    settings.width, settings.height, settings.steps = 96, 64, 2
    assert bpy.ops.moviedir.generate_image() == {"FINISHED"}
    handle = comfy_addon.api.last_job()
    assert handle is not None and not handle.done  # queued, not waited for
    job = handle.wait(30)
    assert job.state.value == "succeeded"
    assert job.request["resolved_params"]["width"] == 96
    (strip,) = scene.sequence_editor.strips
    assert strip.frame_final_start == scene.frame_current


def test_generate_operator_reports_a_missing_prompt(comfy_addon: ModuleType) -> None:
    import bpy

    scene = _fresh_scene()
    scene.movie_director_image.prompt = ""
    with pytest.raises(RuntimeError, match="Write a prompt first"):
        bpy.ops.moviedir.generate_image()


def test_the_image_strip_under_the_playhead_is_an_input(comfy_addon: ModuleType, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import bpy
    from PIL import Image

    scene = _fresh_scene()
    src = tmp_path / "board.png"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(src)
    comfy_addon.operators.sequencer.place_image(scene, str(src), frame=1, duration=10, name="board")
    scene.frame_current = 5
    settings = scene.movie_director_image
    settings.template = "invert"
    settings.input_source = "STRIP"
    assert bpy.ops.moviedir.generate_image() == {"FINISHED"}
    job = comfy_addon.api.last_job().wait(30)
    assert job.state.value == "succeeded", job.error
    with Image.open(job.outputs.files[0].path) as img:
        assert img.getpixel((0, 0)) == (245, 55, 245)
    assert len(scene.sequence_editor.strips) == 2


def test_a_failed_job_is_reported_in_words(comfy_addon: ModuleType) -> None:
    from bl_ext.user_default.movie_director.operators.base import describe_end

    _fresh_scene()
    handle = comfy_addon.api.generate_image("x", template="txt2img", steps=500)
    job = handle.wait(30)
    level, message = describe_end(job, "The image")
    assert level == "ERROR" and message.startswith("The image failed:") and "steps" in message
