"""A rough cut as plain data: what the Sequencer holds, in the terms an editor's timeline uses.

Plain Python: this module never imports bpy. Frames are the scene's (``fps`` per second); ``start`` is a frame on
the scene's timeline, ``source_in`` and ``source_duration`` are in the media's own frames (``source_fps``), so a
16 fps clip stretched over a 24 fps shot keeps its real range; ``time_scalar`` is the playback speed relative to
real time (1.0 = as recorded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import HandoffError

ClipKind = Literal["still", "movie", "sound", "text"]
TrackKind = Literal["video", "audio"]


@dataclass(frozen=True)
class Clip:
    name: str
    kind: ClipKind
    start: int  # first frame on the scene's timeline
    duration: int  # frames on the scene's timeline
    path: str = ""  # absolute media path ("" for text)
    source_in: float = 0.0  # first frame used, in the media's frames
    source_fps: float = 0.0  # the media's rate (0 = the scene's)
    source_duration: float | None = None  # the media's length in its own frames, when known
    time_scalar: float = 1.0
    text: str = ""  # a text strip's (subtitle's) words
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass(frozen=True)
class Track:
    name: str
    kind: TrackKind
    channel: int
    clips: tuple[Clip, ...]


@dataclass(frozen=True)
class Marker:
    frame: int
    name: str


@dataclass(frozen=True)
class Shot:
    """One shot for the storyboard sheet."""

    index: int
    start: int
    duration: int
    description: str = ""
    dialogue: tuple[tuple[str, str], ...] = ()  # (character, line)
    still: str = ""  # absolute path of its picture, "" when none


@dataclass(frozen=True)
class Cut:
    name: str
    fps: float
    frame_start: int
    frame_end: int  # inclusive, as Blender's scene.frame_end
    tracks: tuple[Track, ...]
    markers: tuple[Marker, ...] = ()
    shots: tuple[Shot, ...] = ()
    width: int = 1920
    height: int = 1080
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def subtitles(self) -> list[Clip]:
        """Every text clip, in time order."""
        return sorted((c for t in self.tracks for c in t.clips if c.kind == "text"), key=lambda c: (c.start, c.name))

    def seconds(self, frames: float) -> float:
        return frames / self.fps


def check_media(cut: Cut) -> None:
    """Raise :class:`HandoffError` naming every clip whose file is missing (moved media), or an empty cut."""
    if not any(t.clips for t in cut.tracks):
        raise HandoffError(f"Scene {cut.name!r} has nothing on its Sequencer to hand off")
    missing = [
        f"{c.name} ({c.path})" for t in cut.tracks for c in t.clips if c.kind != "text" and not os.path.isfile(c.path)
    ]
    if missing:
        shown = "; ".join(missing[:5]) + (f"; and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise HandoffError(f"Media missing (moved or deleted?): {shown}")


def relative_path(path: str, base: Path) -> str:
    """``path`` relative to ``base`` (POSIX separators, as in a URL), or absolute when on another drive."""
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # Windows: another drive
        return Path(path).as_posix()
