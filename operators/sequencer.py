"""Putting results where a director wants them: strips on the Sequencer at the playhead, on the first free channel.

Touches bpy (main thread only). Blender 4.4+ calls the strip collection ``strips``; 4.2-4.3 call it ``sequences``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

MAX_CHANNEL = 128


def strips(scene: Any) -> Any:
    editor = scene.sequence_editor or scene.sequence_editor_create()
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def all_strips(scene: Any) -> Any:
    editor = scene.sequence_editor
    if editor is None:
        return []
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def first_free_channel(scene: Any, start: int, end: int, lowest: int = 1) -> int:
    """The lowest channel at or above ``lowest`` with no strip overlapping frames [start, end)."""
    busy: set[int] = set()
    for strip in strips(scene):
        if strip.frame_final_start < end and start < strip.frame_final_end:
            busy.add(strip.channel)
    for channel in range(max(1, lowest), MAX_CHANNEL + 1):
        if channel not in busy:
            return channel
    raise RuntimeError("Every Sequencer channel is taken at this frame")


def seconds_to_frames(scene: Any, seconds: float) -> int:
    fps = scene.render.fps / scene.render.fps_base
    return max(1, round(seconds * fps))


def place_image(scene: Any, path: str, *, frame: int, duration: int, name: str = "", channel: int = 0) -> Any:
    """An image strip of ``duration`` frames at ``frame``; the image is also loaded into ``bpy.data.images``."""
    image = bpy.data.images.load(path, check_existing=True)
    image.name = name or Path(path).stem
    channel = channel or first_free_channel(scene, frame, frame + duration)
    # FIT scales a picture of any size to the frame, as a director expects from a storyboard still.
    strip = strips(scene).new_image(
        name=name or Path(path).stem, filepath=path, channel=channel, frame_start=frame, fit_method="FIT"
    )
    strip.frame_final_duration = duration
    return strip


def place_movie(scene: Any, path: str, *, frame: int, duration: int = 0, name: str = "", channel: int = 0) -> Any:
    """A movie strip at ``frame``; ``duration`` (frames) trims or holds it to the shot's length (0 = its own)."""
    strip = strips(scene).new_movie(
        name=name or Path(path).stem, filepath=path, channel=channel or 1, frame_start=frame, fit_method="FIT"
    )
    if duration:
        strip.frame_final_duration = duration
    return strip


def place_sound(scene: Any, path: str, *, frame: int, duration: int = 0, name: str = "", channel: int = 0) -> Any:
    """A sound strip at ``frame`` (from a WAV, or from a video's audio track); trimmed to ``duration`` if longer."""
    strip = strips(scene).new_sound(
        name=name or Path(path).stem, filepath=path, channel=channel or 1, frame_start=frame
    )
    if duration and strip.frame_final_duration > duration:
        strip.frame_final_duration = duration
    return strip


def remove_strip(scene: Any, name: str) -> tuple[int, int, int] | None:
    """Remove a strip by name; returns its (channel, start, duration) so a new take can take its place."""
    strip = strips(scene).get(name)
    if strip is None:
        return None
    where = (strip.channel, strip.frame_final_start, strip.frame_final_duration)
    strips(scene).remove(strip)
    return where
