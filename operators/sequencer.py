"""Putting results where a director wants them: strips on the Sequencer at the playhead, on the first free channel.

Touches bpy (main thread only). Blender 4.4+ calls the strip collection ``strips``; 4.2-4.3 call it ``sequences``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import bpy

log = logging.getLogger(__name__)

MAX_CHANNEL = 128
#: On a clip's retiming meta strip: the movie file inside it.
SOURCE_KEY = "movie_director_source"
#: On every generated strip: every file it has shown, oldest first, the current one included (JSON list).
TAKES_KEY = "takes"
#: On every generated strip: what made it ({"backend", "kind", "request"} as JSON), for a new take.
ORIGIN_KEY = "movie_director_origin"
#: The name of the undo step each placed result gets.
UNDO_MESSAGE = "Place Movie Director result"


class _NoStrips:
    """The strips of a scene without a Sequencer: none (reading must not give a scene an empty Sequencer)."""

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, name: str, default: Any = None) -> Any:
        return default


_NO_STRIPS = _NoStrips()


def strips(scene: Any) -> Any:
    """The scene's top-level strips, to read (empty when it has no Sequencer: reading never creates one)."""
    editor = scene.sequence_editor
    if editor is None:
        return _NO_STRIPS
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def editable_strips(scene: Any) -> Any:
    """The scene's strip collection, to add strips to (its Sequencer is created if it has none)."""
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
    strip = editable_strips(scene).new_image(
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
    movie = editable_strips(scene).new_movie(
        name=label, filepath=path, channel=channel, frame_start=frame, fit_method="FIT"
    )
    clip_fps, fps = float(movie.fps or 0.0), scene_fps(scene)
    if clip_fps <= 0 or abs(clip_fps - fps) < 0.01:
        if duration:
            movie.frame_final_duration = duration
        return movie
    length = max(1, round(movie.frame_final_duration * fps / clip_fps))
    strips(scene).remove(movie)
    meta = editable_strips(scene).new_meta(name=label, channel=channel, frame_start=frame)
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
    strip = editable_strips(scene).new_sound(
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


def push_undo(message: str = UNDO_MESSAGE) -> None:
    """Make what was just placed its own undo step, so Ctrl+Z removes exactly it. Placement runs from a timer,
    where Blender has no window in the context: the first window stands in."""
    wm = getattr(bpy.context, "window_manager", None)
    window = wm.windows[0] if wm is not None and len(wm.windows) else None
    try:
        if window is not None and bpy.context.window is None:
            with bpy.context.temp_override(window=window):
                bpy.ops.ed.undo_push(message=message)
        else:
            bpy.ops.ed.undo_push(message=message)
    except RuntimeError as exc:  # no undo stack (e.g. undo disabled): the result stays, only the step is missing
        log.warning("could not add the undo step %r: %s", message, exc)


def takes(strip: Any) -> list[str]:
    """The files a generated strip has shown, oldest first (:func:`current_file` says which one it shows now)."""
    try:
        value = json.loads(strip.get(TAKES_KEY, "[]"))
    except (TypeError, ValueError):
        return []
    return [str(v) for v in value if v] if isinstance(value, list) else []


def current_file(strip: Any) -> str:
    """The file a strip shows now: an image strip's picture, a clip's movie, a sound's file."""
    if strip.type == "IMAGE":
        return bpy.path.abspath(str(Path(strip.directory) / strip.elements[0].filename))
    if strip.type == "SOUND":
        return bpy.path.abspath(strip.sound.filepath) if strip.sound else ""
    if strip.type == "META":
        return movie_path(strip)
    return bpy.path.abspath(str(getattr(strip, "filepath", "")))


def remember_take(strip: Any, path: str, origin: dict[str, Any] | None = None) -> None:
    """Add ``path`` to the strip's takes (once, in the order they were made), and record what made it."""
    seen = takes(strip)
    if path not in seen:
        strip[TAKES_KEY] = json.dumps([*seen, path])
    if origin is not None:
        strip[ORIGIN_KEY] = json.dumps(origin)


#: Request keys too bulky to keep on a strip (a whole workflow); a new take asks the server with the rest.
_BULKY = ("workflow", "resolved_workflow")


def origin_of(job: Any) -> dict[str, Any]:
    """What made a job's result, as plain data kept on its strip: enough to ask for another take."""
    request = {k: v for k, v in job.request.items() if k not in _BULKY}
    return {"backend": job.backend, "kind": job.kind, "request": request}


def mark_generated(placed: Any, job: Any) -> None:
    """Give every strip a job placed its file as the first take, and remember what made it."""
    items = placed if isinstance(placed, (list, tuple)) else [placed]
    for strip in items:
        if strip is not None:
            remember_take(strip, current_file(strip), origin_of(job))


def swap_take(strip: Any, path: str) -> None:
    """Show ``path`` in ``strip`` in place: the same strip keeps its channel, frames, effects and modifiers."""
    if not Path(path).is_file():
        raise ValueError(f"The take {path} is no longer on disk")
    if strip.type == "IMAGE":
        strip.directory = str(Path(path).parent) + "/"
        strip.elements[0].filename = Path(path).name
    elif strip.type == "SOUND":
        strip.sound = bpy.data.sounds.load(path, check_existing=True)
    elif strip.type == "MOVIE":
        strip.filepath = path
    elif strip.type == "META":
        inner = strip.strips if hasattr(strip, "strips") else strip.sequences
        for child in inner:
            if child.type == "MOVIE":
                child.filepath = path
        strip[SOURCE_KEY] = path
    else:
        raise ValueError(f"A {strip.type.lower()} strip has no file to swap")
    remember_take(strip, path)
