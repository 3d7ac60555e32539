"""The storyboard sheet's layout: where each shot's still and words go on a contact sheet.

Plain Python: this module never imports bpy. Coordinates are pixels from the sheet's top-left corner; the Blender
layer (``operators/storyboard_sheet.py``) pastes the stills and draws the text with Blender's own font engine.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from .cut import Cut
from .errors import HandoffError

COLUMNS = 3
CELL_WIDTH = 480
MARGIN = 24
TITLE_SIZE = 32
TEXT_SIZE = 16
LINE_HEIGHT = 22
CHARS_PER_LINE = 52  # at TEXT_SIZE in Blender's default font, within CELL_WIDTH
TEXT_LINES = 6


@dataclass(frozen=True)
class TextLine:
    x: int
    y: int  # baseline, from the top
    text: str
    size: int = TEXT_SIZE


@dataclass(frozen=True)
class Picture:
    path: str
    x: int
    y: int  # top edge
    width: int
    height: int


@dataclass(frozen=True)
class Sheet:
    width: int
    height: int
    pictures: tuple[Picture, ...]
    text: tuple[TextLine, ...]
    frames: tuple[tuple[int, int, int, int], ...]  # (x, y, w, h) of each still's frame (drawn even without a still)


def layout(cut: Cut) -> Sheet:
    """Shots left to right, top to bottom; under each still its number, duration, description and dialogue."""
    if not cut.shots:
        raise HandoffError(f"Scene {cut.name!r} has no shots (no markers and no directed shot list) for a sheet")
    thumb_h = round(CELL_WIDTH * cut.height / max(1, cut.width))
    cell_h = thumb_h + LINE_HEIGHT * (TEXT_LINES + 1) + MARGIN
    rows = -(-len(cut.shots) // COLUMNS)
    top = MARGIN * 2 + TITLE_SIZE
    width = MARGIN + COLUMNS * (CELL_WIDTH + MARGIN)
    height = top + rows * cell_h + MARGIN
    total = sum(s.duration for s in cut.shots) / cut.fps
    text = [TextLine(MARGIN, MARGIN + TITLE_SIZE, f"{cut.name} - {len(cut.shots)} shots, {total:.1f} s", TITLE_SIZE)]
    pictures, frames = [], []
    for n, shot in enumerate(cut.shots):
        x = MARGIN + (n % COLUMNS) * (CELL_WIDTH + MARGIN)
        y = top + (n // COLUMNS) * cell_h
        frames.append((x, y, CELL_WIDTH, thumb_h))
        if shot.still:
            pictures.append(Picture(shot.still, x, y, CELL_WIDTH, thumb_h))
        lines = [f"Shot {shot.index}   {shot.duration / cut.fps:.1f} s"]
        lines += textwrap.wrap(shot.description, CHARS_PER_LINE)[:3]
        for character, said in shot.dialogue:
            lines += textwrap.wrap(
                f"{character}: \u201c{said}\u201d" if character else f"\u201c{said}\u201d", CHARS_PER_LINE
            )
        if len(lines) > TEXT_LINES:
            lines = [*lines[: TEXT_LINES - 1], lines[TEXT_LINES - 1][: CHARS_PER_LINE - 3] + "..."]
        for k, line in enumerate(lines):
            text.append(TextLine(x, y + thumb_h + LINE_HEIGHT * (k + 1), line))
    return Sheet(width, height, tuple(pictures), tuple(text), tuple(frames))
