"""Putting results where a director wants them: strips on the Sequencer at the playhead, on the first free channel.

Touches bpy (main thread only). Blender 4.4+ calls the strip collection ``strips``; 4.2-4.3 call it ``sequences``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

MAX_CHANNEL = 128
#: On a clip's retiming meta strip: the movie file inside it.
SOURCE_KEY = "movie_director_source"


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


def scene_fps(scene: Any) -> float:
    return float(scene.render.fps / scene.render.fps_base)


def seconds_to_frames(scene: Any, seconds: float) -> int:
    return max(1, round(seconds * scene_fps(scene)))


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
    """A clip at ``frame`` that plays at its own speed; ``duration`` (frames) trims it or holds its last frame.

    Blender's Python API lays a movie down frame for frame, so a 16 fps clip would play 1.5x fast in a 24 fps scene:
    the Add > Movie operator's "adjust playback rate" is not offered to ``new_movie``, and adding retiming keys from
    Python crashes Blender 5.0. A clip at another rate becomes a meta strip named for it, holding the movie and a
    Speed effect that stretches it to its real length (checked frame by frame in Blender 4.2 and 5.0). Returns the
    movie strip, or that meta strip.
    """
    label = name or Path(path).stem
    channel = channel or 1
    movie = strips(scene).new_movie(name=label, filepath=path, channel=channel, frame_start=frame, fit_method="FIT")
    clip_fps, fps = float(movie.fps or 0.0), scene_fps(scene)
    if clip_fps <= 0 or abs(clip_fps - fps) < 0.01:
        if duration:
            movie.frame_final_duration = duration
        return movie
    length = max(1, round(movie.frame_final_duration * fps / clip_fps))
    strips(scene).remove(movie)
    meta = strips(scene).new_meta(name=label, channel=channel, frame_start=frame)
    inner = meta.strips if hasattr(meta, "strips") else meta.sequences
    movie = inner.new_movie(name=f"{label} clip", filepath=path, channel=1, frame_start=frame, fit_method="FIT")
    movie.frame_final_duration = length  # the last frame held: the Speed effect spreads the clip over all of it
    speed = _speed_effect(inner, f"{label} speed", movie, frame, length)
    speed.speed_control = "STRETCH"
    meta.frame_final_duration = duration or length
    meta[SOURCE_KEY] = path
    return meta


def movie_path(strip: Any) -> str:
    """The file behind a clip placed by :func:`place_movie` (a movie strip or its retiming meta strip)."""
    return str(strip.get(SOURCE_KEY, "")) if strip.type == "META" else str(strip.filepath)


def _speed_effect(inner: Any, name: str, movie: Any, frame: int, length: int) -> Any:
    try:  # Blender 5.0 names (length, input1)
        return inner.new_effect(name=name, type="SPEED", channel=2, frame_start=frame, length=length, input1=movie)
    except TypeError:  # Blender 4.2 names (frame_end, seq1)
        return inner.new_effect(
            name=name, type="SPEED", channel=2, frame_start=frame, frame_end=frame + length, seq1=movie
        )


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
