"""Clips play at their own speed: a 16 fps Wan2GP clip in a 24 fps scene lasts as long as it should, checked by
rendering the Sequencer and reading back which frame of the clip is on screen."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from movie_director.clients.media import write_avi
from PIL import Image

SIZE = (64, 36)
CLIP_FRAMES = 16


def _clip(path: Path, fps: int) -> str:
    """A clip whose frame i is a flat red of 10 + 15 i: the frame on screen can be read back from a pixel."""
    frames = [Image.new("RGB", SIZE, (10 + 15 * i, 0, 0)) for i in range(CLIP_FRAMES)]
    return str(write_avi(path, frames, fps=fps, size=SIZE, quality=95))


def _scene(fps: int) -> Any:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    scene.render.resolution_x, scene.render.resolution_y = SIZE
    scene.render.resolution_percentage = 100
    scene.render.image_settings.file_format = "PNG"
    scene.view_settings.view_transform = "Standard"  # colours come back as they went in
    scene.sequence_editor_create()
    return scene


def _clip_frame_on_screen(scene: Any, frame: int, out: Path) -> int:
    import bpy

    scene.frame_set(frame)
    scene.render.filepath = str(out / f"{frame:04d}.png")
    bpy.ops.render.render(write_still=True)
    with Image.open(scene.render.filepath) as img:
        red = img.convert("RGB").getpixel((SIZE[0] // 2, SIZE[1] // 2))[0]
    return round((red - 10) / 15)


def _sequencer(addon: ModuleType) -> ModuleType:
    return importlib.import_module(".operators.sequencer", addon.__name__)


def test_a_16_fps_clip_in_a_24_fps_scene_lasts_its_real_length(addon: ModuleType, tmp_path: Path) -> None:
    seq = _sequencer(addon)
    scene = _scene(24)
    path = _clip(tmp_path / "clip.avi", 16)
    strip = seq.place_movie(scene, path, frame=5, name="shot 1", channel=2)
    assert strip.name == "shot 1" and strip.channel == 2 and strip.frame_final_start == 5
    assert strip.frame_final_duration == 24  # 16 frames at 16 fps = 1 s = 24 scene frames
    assert seq.movie_path(strip) == path
    shown = [_clip_frame_on_screen(scene, 5 + i, tmp_path) for i in (0, 6, 12, 18, 23)]
    expected = [i * 16 / 24 for i in (0, 6, 12, 18, 23)]
    assert all(abs(got - want) <= 1 for got, want in zip(shown, expected, strict=True)), shown


def test_a_shot_longer_than_its_clip_holds_the_last_frame_and_a_shorter_one_trims(
    addon: ModuleType, tmp_path: Path
) -> None:
    seq = _sequencer(addon)
    scene = _scene(24)
    path = _clip(tmp_path / "clip.avi", 16)
    long = seq.place_movie(scene, path, frame=1, duration=30, name="long", channel=1)
    short = seq.place_movie(scene, path, frame=1, duration=12, name="short", channel=3)
    assert long.frame_final_duration == 30 and short.frame_final_duration == 12
    short.mute = True
    assert _clip_frame_on_screen(scene, 6, tmp_path) in (3, 4)  # still at the clip's own speed
    assert _clip_frame_on_screen(scene, 29, tmp_path) == CLIP_FRAMES - 1  # held
    assert seq.remove_strip(scene, "long") == (1, 1, 30)
    assert [s.name for s in seq.all_strips(scene) if not s.name.startswith("short")] == []  # its clip went too


@pytest.mark.parametrize("fps", [16, 24])
def test_a_clip_at_the_scene_rate_stays_a_plain_movie_strip(addon: ModuleType, tmp_path: Path, fps: int) -> None:
    seq = _sequencer(addon)
    scene = _scene(fps)
    path = _clip(tmp_path / "clip.avi", fps)
    strip = seq.place_movie(scene, path, frame=1, name="same rate")
    assert strip.type == "MOVIE" and strip.frame_final_duration == CLIP_FRAMES
    assert seq.movie_path(strip) == path
    assert _clip_frame_on_screen(scene, 9, tmp_path) == 8
