"""Subtitles as SubRip (``.srt``): the text clips of a cut, numbered, with their times.

Plain Python: this module never imports bpy. SubRip's times are ``HH:MM:SS,mmm``; an editor or a player reads the
file as UTF-8.
"""

from __future__ import annotations

from .cut import Clip, Cut
from .errors import HandoffError


def timestamp(seconds: float) -> str:
    """SubRip's time.

    >>> timestamp(3725.5)
    '01:02:05,500'
    """
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d},{ms:03d}"


def to_srt(cut: Cut, subtitles: list[Clip] | None = None) -> str:
    """The cut's subtitles; times count from the scene's first frame (where a rendered movie starts)."""
    lines = subtitles if subtitles is not None else cut.subtitles
    if not lines:
        raise HandoffError(f"Scene {cut.name!r} has no subtitles (text strips) to export")
    blocks = []
    for number, clip in enumerate(lines, start=1):
        start = cut.seconds(clip.start - cut.frame_start)
        end = cut.seconds(clip.end - cut.frame_start)
        text = "\n".join(line for line in clip.text.splitlines() if line.strip()) or " "
        blocks.append(f"{number}\n{timestamp(start)} --> {timestamp(end)}\n{text}\n")
    return "\n".join(blocks)
