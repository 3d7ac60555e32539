"""The ComfyUI server's models in real Blender: the pickers' lists and refresh, a LoRA stack and the user's last
choice through the Image panel's operator, inpainting with a painted mask from the strip under the playhead."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from blender_support import MODULE, LayoutRecorder
from movie_director.clients.comfyui.emulator import EmulatorThread
from support import pump_until


@pytest.fixture
def comfy(addon: ModuleType) -> Iterator[tuple[ModuleType, EmulatorThread]]:
    import bpy

    with EmulatorThread(step_delay=0.005) as emu:
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.comfyui.urls = emu.url
        yield addon, emu
        addon.addon_runtime.shutdown()
        prefs.comfyui.urls = ""


def _scene() -> Any:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 24
    scene.sequence_editor_create()
    return scene


def _draw(addon: ModuleType, module: str, panel: str) -> list[tuple[str, str]]:
    import bpy

    calls: list[tuple[str, str]] = []
    cls = getattr(importlib.import_module(module, addon.__name__), panel)
    cls.draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    return calls


def test_the_lists_come_from_the_server_and_the_panels_pick_from_them(comfy: Any) -> None:
    import bpy

    addon, emu = comfy
    _scene()
    settings = bpy.context.scene.movie_director_image
    settings.template = "txt2img"
    before = _draw(addon, ".panels.sidebar", "MOVIEDIR_PT_image")
    assert ("label", "Press refresh to list the server's models") in before

    job = addon.api.image_models().wait(20)
    assert job.state.value == "succeeded", job.error
    wm = bpy.context.window_manager
    assert [i.name for i in wm.movie_director_checkpoints] == emu.folders.checkpoints
    assert [i.name for i in wm.movie_director_loras] == emu.folders.loras
    assert "euler" in [i.name for i in wm.movie_director_samplers]
    assert job.outputs.data["models"]["checkpoint"] == emu.folders.checkpoints

    calls = _draw(addon, ".panels.sidebar", "MOVIEDIR_PT_image")
    for call in (("prop_search", "checkpoint"), ("prop_search", "sampler"), ("prop_search", "scheduler")):
        assert call in calls
    assert ("operator", "moviedir.refresh_image_models") in calls and ("operator", "moviedir.lora_add") in calls
    assert ("label", "2 checkpoints, listed just now") in calls
    assert ("label", f"Default: {emu.folders.checkpoints[0]} (the server's first)") in calls
    assert ("prop", "mask_source") not in calls  # txt2img takes no mask

    direct = _draw(addon, ".panels.direct", "MOVIEDIR_PT_direct")
    assert ("prop_search", "checkpoint") in direct and ("operator", "moviedir.refresh_image_models") in direct

    emu.folders.checkpoints.append("added.safetensors")
    assert bpy.ops.moviedir.refresh_image_models() == {"FINISHED"}
    rt = addon.addon_runtime.runtime()
    assert pump_until(rt, lambda: "added.safetensors" in [i.name for i in wm.movie_director_checkpoints], timeout=20)


def test_the_operator_sends_the_chosen_models_and_loras_and_remembers_the_choice(comfy: Any) -> None:
    import bpy

    addon, emu = comfy
    scene = _scene()
    settings = scene.movie_director_image
    settings.template = "txt2img"
    settings.prompt = "night sea"
    settings.width, settings.height, settings.steps = 96, 64, 2
    settings.checkpoint = emu.folders.checkpoints[1]
    settings.sampler = "dpmpp_2m"
    assert bpy.ops.moviedir.lora_add() == {"FINISHED"} and bpy.ops.moviedir.lora_add() == {"FINISHED"}
    settings.loras[0].name, settings.loras[0].strength = emu.folders.loras[0], 0.6
    settings.loras[1].name = emu.folders.loras[1]
    assert bpy.ops.moviedir.generate_image() == {"FINISHED"}
    job = addon.api.last_job().wait(30)
    assert job.state.value == "succeeded", job.error
    resolved = job.request["resolved_params"]
    assert resolved["checkpoint"] == emu.folders.checkpoints[1] and resolved["sampler"] == "dpmpp_2m"
    assert [(e["name"], e["strength"]) for e in resolved["loras"]] == [
        (emu.folders.loras[0], pytest.approx(0.6)),
        (emu.folders.loras[1], 1.0),
    ]
    prompt = emu.emulator.history[job.id]["prompt"][2]
    assert sum(1 for n in prompt.values() if n["class_type"] == "LoraLoader") == 2

    assert bpy.ops.moviedir.lora_remove(index=0) == {"FINISHED"} and len(settings.loras) == 1
    settings.checkpoint = ""  # empty: the last choice on this server
    settings.loras.clear()
    assert bpy.ops.moviedir.generate_image() == {"FINISHED"}
    again = addon.api.last_job().wait(30)
    assert again.state.value == "succeeded", again.error
    assert again.request["resolved_params"]["checkpoint"] == emu.folders.checkpoints[1]
    assert addon.api.image_models().wait(20).outputs.data["choices"]["checkpoint"] == emu.folders.checkpoints[1]


def test_a_checkpoint_the_server_lacks_is_reported_with_what_it_has(comfy: Any) -> None:
    import bpy
    from bl_ext.user_default.movie_director.operators.base import describe_end

    addon, emu = comfy
    scene = _scene()
    settings = scene.movie_director_image
    settings.template, settings.prompt, settings.steps = "txt2img", "x", 2
    settings.checkpoint = "sdxl-base.safetensors"
    assert bpy.ops.moviedir.generate_image() == {"FINISHED"}
    job = addon.api.last_job().wait(30)
    level, message = describe_end(job, "The image")
    assert level == "ERROR" and "sdxl-base.safetensors" in message
    assert emu.folders.checkpoints[0] in message and "models/checkpoints" in message


def test_inpainting_the_strip_under_the_playhead_with_a_painted_mask(comfy: Any, tmp_path: Path) -> None:
    import bpy
    import numpy as np
    from PIL import Image

    addon, emu = comfy
    scene = _scene()
    board = tmp_path / "board.png"
    Image.new("RGB", (64, 48), (10, 200, 10)).save(board)
    addon.operators.sequencer.place_image(scene, str(board), frame=1, duration=10, name="board")
    scene.frame_current = 5
    painted = bpy.data.images.new("Mask", 32, 24)  # another size: it is scaled to the picture's
    pixels = np.zeros((24, 32, 4), dtype=np.float32)
    pixels[..., 3] = 1.0
    pixels[:, :16, :3] = 1.0  # white left half: repaint
    painted.pixels.foreach_set(pixels.ravel())

    settings = scene.movie_director_image
    settings.template, settings.prompt, settings.steps = "inpaint", "a red door", 2
    settings.input_source, settings.mask_source, settings.mask_image = "STRIP", "IMAGE", "Mask"
    calls = _draw(addon, ".panels.sidebar", "MOVIEDIR_PT_image")
    assert ("prop", "mask_source") in calls and ("prop", "mask_image") in calls
    assert bpy.ops.moviedir.generate_image() == {"FINISHED"}
    job = addon.api.last_job().wait(30)
    assert job.state.value == "succeeded", job.error
    stored = emu.folders.input_dir / job.request["resolved_params"]["input_image"]
    with Image.open(stored) as img:  # the server put the mask into the picture's alpha
        assert img.mode == "RGBA" and img.size == (64, 48)
        assert img.getpixel((5, 24))[3] == 0 and img.getpixel((60, 24)) == (10, 200, 10, 255)
    with Image.open(job.outputs.files[0].path) as out:
        assert out.convert("RGB").getpixel((60, 24)) == (10, 200, 10)
    assert len(scene.sequence_editor.strips) == 2

    settings.mask_image = "Nope"
    with pytest.raises(RuntimeError, match="no mask image named 'Nope'"):
        bpy.ops.moviedir.generate_image()


def test_inpainting_a_blender_image_by_its_own_transparency(comfy: Any) -> None:
    import bpy
    import numpy as np
    from PIL import Image

    addon, emu = comfy
    scene = _scene()
    picture = bpy.data.images.new("Plate", 40, 30, alpha=True)
    pixels = np.ones((30, 40, 4), dtype=np.float32)
    pixels[:, :10, 3] = 0.0  # transparent left quarter: repaint
    picture.pixels.foreach_set(pixels.ravel())
    scene.render.image_settings.color_mode = "RGB"  # the scene's own output settings must not drop the alpha
    settings = scene.movie_director_image
    settings.template, settings.prompt, settings.steps = "inpaint", "a window", 2
    settings.input_source, settings.input_image, settings.mask_source = "IMAGE", "Plate", "ALPHA"
    assert bpy.ops.moviedir.generate_image() == {"FINISHED"}
    job = addon.api.last_job().wait(30)
    assert job.state.value == "succeeded", job.error
    assert emu.emulator.upload_count == 1, "no mask upload: the picture carries its mask"
    with Image.open(emu.folders.input_dir / job.request["resolved_params"]["input_image"]) as img:
        assert img.mode == "RGBA" and img.getpixel((2, 15))[3] == 0 and img.getpixel((30, 15))[3] == 255
    assert scene.render.image_settings.color_mode == "RGB"


def test_an_own_workflow_gets_the_checkpoint_picker_and_says_its_saved_file(comfy: Any, tmp_path: Path) -> None:
    import json

    import bpy
    from support import txt2img

    addon, emu = comfy
    _scene()
    workflow = txt2img(steps=2)
    workflow["1"]["inputs"]["ckpt_name"] = emu.folders.checkpoints[1]
    (tmp_path / "noir.json").write_text(json.dumps(workflow))
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.templates_dir = str(tmp_path)
    try:
        settings = bpy.context.scene.movie_director_image
        settings.template = "noir"
        calls = _draw(addon, ".panels.sidebar", "MOVIEDIR_PT_image")
        assert ("prop_search", "checkpoint") in calls and ("operator", "moviedir.lora_add") in calls
        assert ("label", f"Default: {emu.folders.checkpoints[1]} (the workflow's own)") in calls
    finally:
        prefs.templates_dir = ""
