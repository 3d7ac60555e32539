"""Subtitles on the Sequencer: each dialogue line a text strip on its own channel, timed to its voice line, or to
its share of the shot when it has no voice (a line is voiced by its cast conversion ``shot<i>.line<j>.voice`` or,
without one, its speech ``shot<i>.line<j>.speech``).

Touches bpy (main thread only). The lines come from the Director's shots stored on the scene
(``cut_reader.SHOTS_KEY``). Rebuilt whole each time (a regenerated voice moves its subtitle); strips made here
carry ``cut_reader.SUBTITLE_KEY``.
"""

from __future__ import annotations

import json
from typing import Any

import bpy

from . import cut_reader, sequencer

#: Above the pictures (1, 2), the sounds (3, 4) and anything else the Director lays out (5).
CHANNEL = 6


def sync(scene: Any = None) -> int:
    """Lay out the subtitles of every stored shot again (of the current scene by default); returns how many."""
    scene = scene or bpy.context.scene
    shots = json.loads(scene.get(cut_reader.SHOTS_KEY, "[]"))
    all_strips = sequencer.strips(scene)
    for strip in [s for s in all_strips if cut_reader.SUBTITLE_KEY in s]:
        all_strips.remove(strip)
    voices = {
        str(s[cut_reader.STAGE_KEY]): s
        for s in all_strips
        if str(s.get(cut_reader.STAGE_KEY, "")).endswith((".voice", ".speech"))
    }
    count = 0
    for shot in shots:
        index, first, length = int(shot["index"]), int(shot["frame"]), int(shot["length"])
        # numbered as the Director numbers its line stages (a blank line keeps its number, says nothing)
        lines = [(j, d) for j, d in enumerate(shot.get("dialogue", []), start=1) if str(d.get("line", "")).strip()]

        def voice_of(j: int, index: int = index) -> Any:  # the converted voice, else the spoken line
            return voices.get(f"shot{index}.line{j}.voice") or voices.get(f"shot{index}.line{j}.speech")

        unvoiced = [j for j, _ in lines if voice_of(j) is None]
        share = max(1, length // max(1, len(unvoiced)))
        for j, line in lines:
            voice = voice_of(j)
            if voice is not None:
                start, duration = voice.frame_final_start, voice.frame_final_duration
            else:
                start = first + unvoiced.index(j) * share
                duration = share if j != unvoiced[-1] else first + length - start
            strip = add(scene, str(line["line"]), start, duration, name=f"Shot {index} line {j} subtitle")
            strip[cut_reader.SUBTITLE_KEY] = json.dumps(
                {"shot": index, "line": j, "character": str(line.get("character", ""))}
            )
            strip[cut_reader.STAGE_KEY] = f"shot{index}.line{j}.subtitle"
            count += 1
    return count


def add(scene: Any, text: str, start: int, duration: int, *, name: str) -> Any:
    """A text strip at the bottom of the picture, on the subtitle channel (or the first free one above it)."""
    channel = sequencer.first_free_channel(scene, start, start + duration, lowest=CHANNEL)
    editor_strips = sequencer.editable_strips(scene)
    try:  # Blender 5.0 names
        strip = editor_strips.new_effect(name=name, type="TEXT", channel=channel, frame_start=start, length=duration)
    except TypeError:  # Blender 4.2
        strip = editor_strips.new_effect(
            name=name, type="TEXT", channel=channel, frame_start=start, frame_end=start + duration
        )
    strip.text = text
    strip.font_size = max(24, scene.render.resolution_y // 18)
    strip.location = (0.5, 0.06)
    setattr(strip, "anchor_y" if hasattr(strip, "anchor_y") else "align_y", "BOTTOM")  # 4.2 calls it align_y
    strip.wrap_width = 0.9
    strip.use_shadow = True
    return strip
