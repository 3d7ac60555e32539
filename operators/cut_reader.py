"""The Sequencer read as plain data (:class:`clients.handoff.cut.Cut`) for the hand-off files.

Touches bpy (main thread only). One clip per top-level strip: a clip at another frame rate is the meta strip
``sequencer.place_movie`` makes (a movie and a Speed effect), read as the movie with its real source range.
Muted strips and effects other than text are left out (they are listed in the cut's metadata). The cut's data
classes load on the first read, not when the add-on is enabled.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import bpy

from ..clients.handoff.errors import HandoffError
from . import sequencer

if TYPE_CHECKING:
    from ..clients.handoff.cut import Clip, Cut, Shot

#: On the scene: the Director's shots (index, description, dialogue, frames), written by operators/direct.py.
SHOTS_KEY = "movie_director_shots"
#: On a strip: JSON of the generation settings (backend, model, seed, prompt) of its take.
GENERATION_KEY = "movie_director_generation"
#: On a subtitle text strip: JSON {"shot", "line", "character"}.
SUBTITLE_KEY = "movie_director_subtitle"
STAGE_KEY = "movie_director_stage"


def read_cut(scene: Any) -> Cut:
    """The scene's cut; :class:`HandoffError` for an empty Sequencer or a path relative to an unsaved file."""
    from ..clients.handoff.cut import Cut, Marker, Track

    fps = sequencer.scene_fps(scene)
    top = list(sequencer.strips(scene)) if scene.sequence_editor else []
    by_track: dict[tuple[int, str], list[Clip]] = {}
    skipped = []
    for strip in top:
        if strip.mute:
            skipped.append(strip.name)
            continue
        clip = _clip(strip, fps)
        if clip is None:
            skipped.append(strip.name)
            continue
        kind = "audio" if clip.kind == "sound" else "video"
        by_track.setdefault((strip.channel, kind), []).append(clip)
    if not by_track:
        raise HandoffError(f"Scene {scene.name!r} has nothing on its Sequencer to hand off")
    tracks = tuple(
        Track(name=_channel_name(scene, ch), kind=kind, channel=ch, clips=tuple(sorted(clips, key=lambda c: c.start)))  # type: ignore[arg-type]
        for (ch, kind), clips in sorted(by_track.items())
    )
    markers = tuple(Marker(m.frame, m.name) for m in sorted(scene.timeline_markers, key=lambda m: m.frame))
    meta: dict[str, Any] = {"scene": scene.name}
    if skipped:
        meta["left_out"] = skipped
    return Cut(
        name=scene.name,
        fps=fps,
        frame_start=scene.frame_start,
        frame_end=scene.frame_end,
        tracks=tracks,
        markers=markers,
        shots=tuple(read_shots(scene)),
        width=scene.render.resolution_x,
        height=scene.render.resolution_y,
        metadata=meta,
    )


def _channel_name(scene: Any, channel: int) -> str:
    channels = getattr(scene.sequence_editor, "channels", None)
    name = channels[channel].name if channels is not None and channel < len(channels) else ""
    return name or f"Channel {channel}"


def media_path(strip: Any, path: str) -> str:
    """An absolute path; a path relative to the .blend is an error while the file is unsaved."""
    if path.startswith("//") and not bpy.data.filepath:
        raise HandoffError(
            f"Strip {strip.name!r} refers to {path}, relative to the .blend file, which is not saved yet: save it first"
        )
    return os.path.normpath(bpy.path.abspath(path))


def _metadata(strip: Any) -> dict[str, Any]:
    """Stage, takes and generation settings: the Director's own record, else what made a generated strip (its
    origin: backend, kind and request, see ``sequencer.origin_of``)."""
    from ..clients.handoff.provenance import generation_settings

    meta: dict[str, Any] = {}
    if STAGE_KEY in strip:
        meta["stage"] = str(strip[STAGE_KEY])
    if takes := sequencer.takes(strip):
        meta["takes"] = takes
    for key, out in ((GENERATION_KEY, "generation"), (SUBTITLE_KEY, "subtitle")):
        if key in strip:
            try:
                meta[out] = json.loads(strip[key])
            except (TypeError, ValueError):
                meta[out] = str(strip[key])
    if "generation" not in meta and sequencer.ORIGIN_KEY in strip:
        try:
            origin = json.loads(strip[sequencer.ORIGIN_KEY])
        except (TypeError, ValueError):
            origin = {}
        if isinstance(origin, dict) and origin.get("backend") and isinstance(origin.get("request"), dict):
            meta["generation"] = generation_settings(
                str(origin["backend"]), str(origin.get("kind", "")), origin["request"]
            )
    return meta


def _clip(strip: Any, fps: float) -> Clip | None:
    from ..clients.handoff.cut import Clip

    start, duration = strip.frame_final_start, strip.frame_final_duration
    common = {"name": strip.name, "start": start, "duration": duration, "metadata": _metadata(strip)}
    offset = strip.frame_final_start - strip.frame_start  # trimmed off the front, in timeline frames
    if strip.type == "IMAGE":
        path = media_path(strip, os.path.join(strip.directory, strip.elements[0].filename))
        return Clip(kind="still", path=path, source_fps=fps, **common)
    if strip.type == "MOVIE":  # laid frame for frame: a clip at another rate plays off-speed
        clip_fps = float(strip.fps or fps)
        return Clip(
            kind="movie",
            path=media_path(strip, strip.filepath),
            source_in=float(offset),
            source_fps=clip_fps,
            source_duration=float(strip.frame_duration),
            time_scalar=fps / clip_fps,
            **common,
        )
    if strip.type == "META" and sequencer.SOURCE_KEY in strip:
        return _retimed_clip(strip, fps, offset, common)
    if strip.type == "SOUND" and strip.sound is not None:
        return Clip(
            kind="sound",
            path=media_path(strip, strip.sound.filepath),
            source_in=float(offset),
            source_fps=fps,
            source_duration=float(strip.frame_duration),
            **common,
        )
    if strip.type == "TEXT":
        return Clip(kind="text", text=str(strip.text), **common)
    return None


def _retimed_clip(strip: Any, fps: float, offset: int, common: dict[str, Any]) -> Clip:
    """The movie inside a retiming meta strip: its own frames and rate, and the speed the Speed effect gives it."""
    from ..clients.handoff.cut import Clip

    inner = list(strip.strips if hasattr(strip, "strips") else strip.sequences)
    movie = next((s for s in inner if s.type == "MOVIE"), None)
    speed = next((s for s in inner if s.type == "SPEED"), None)
    if movie is None:
        raise HandoffError(f"The clip {strip.name!r} lost its movie strip")
    clip_fps = float(movie.fps or fps)
    frames = float(movie.frame_duration)  # the source's frames (laid one per timeline frame inside)
    stretched = float(speed.frame_final_duration if speed is not None else movie.frame_final_duration)
    # real seconds of source per real second on the timeline
    scalar = (frames / clip_fps) / (stretched / fps) if speed is not None else fps / clip_fps
    return Clip(
        kind="movie",
        path=media_path(strip, str(strip[sequencer.SOURCE_KEY])),
        source_in=offset * scalar * clip_fps / fps,
        source_fps=clip_fps,
        source_duration=frames,
        time_scalar=round(scalar, 6),
        **common,
    )


def read_cut_shots(scene: Any) -> Cut:
    """The scene's shots alone (for the storyboard sheet): no Sequencer media needed."""
    from ..clients.handoff.cut import Cut

    return Cut(
        name=scene.name,
        fps=sequencer.scene_fps(scene),
        frame_start=scene.frame_start,
        frame_end=scene.frame_end,
        tracks=(),
        shots=tuple(read_shots(scene)),
        width=scene.render.resolution_x,
        height=scene.render.resolution_y,
    )


def read_shots(scene: Any) -> list[Shot]:
    """The Director's shots (with description and dialogue), else one shot per marker; the still of each is the
    picture at its first frame."""
    from ..clients.handoff.cut import Shot

    stored = json.loads(scene.get(SHOTS_KEY, "[]"))
    if stored:
        rows = [
            (int(s["index"]), int(s["frame"]), int(s["length"]), str(s.get("description", "")), s.get("dialogue", []))
            for s in stored
        ]
    else:
        markers = sorted(scene.timeline_markers, key=lambda m: m.frame)
        ends = [m.frame for m in markers[1:]] + [scene.frame_end + 1]
        pairs = zip(markers, ends, strict=True)
        rows = [(i, m.frame, end - m.frame, m.name, []) for i, (m, end) in enumerate(pairs, start=1)]
    shots = []
    for index, frame, length, description, dialogue in rows:
        lines = tuple((str(d.get("character", "")), str(d.get("line", ""))) for d in dialogue)
        shots.append(Shot(index, frame, length, description, lines, _still_at(scene, index, frame)))
    return shots


def _still_at(scene: Any, index: int, frame: int) -> str:
    pictures = [s for s in sequencer.strips(scene) if s.type == "IMAGE" and not s.mute] if scene.sequence_editor else []
    tagged = [s for s in pictures if s.get(STAGE_KEY) == f"shot{index}.image"]
    covering = [s for s in pictures if s.frame_final_start <= frame < s.frame_final_end]
    for strip in tagged or sorted(covering, key=lambda s: s.channel):
        try:
            return media_path(strip, os.path.join(strip.directory, strip.elements[0].filename))
        except HandoffError:
            return ""
    return ""
