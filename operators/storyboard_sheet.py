"""The storyboard sheet as a PNG: the shots' stills with number, duration, description and dialogue.

Touches bpy (main thread only). The layout is plain Python (``clients/handoff/sheet.py``); the stills are scaled
and pasted with ``bpy.data.images`` and the words drawn with ``blf`` into an ``imbuf`` (Blender 4.1+), so no image
library is bundled. PDF: neither Blender nor a bundled library writes one, so the sheet is a PNG only. The layout
module loads on the first sheet, not when the add-on is enabled.
"""

from __future__ import annotations

import array
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

from ..clients.handoff.errors import HandoffError
from . import cut_reader

if TYPE_CHECKING:
    from ..clients.handoff.sheet import Sheet

BACKGROUND = (0.96, 0.96, 0.94, 1.0)
EMPTY = (0.75, 0.75, 0.75, 1.0)
INK = (0.08, 0.08, 0.08, 1.0)


def storyboard_sheet(path: str | Path, *, scene: Any = None) -> Path:
    """Write the scene's storyboard sheet to ``path`` (PNG); whole or not at all."""
    from ..clients.handoff.files import atomic_path
    from ..clients.handoff.sheet import layout

    scene = scene or bpy.context.scene
    target = Path(bpy.path.abspath(str(path)))
    if target.suffix.lower() != ".png":
        raise HandoffError(f"The storyboard sheet is a PNG: {target.name} does not end in .png")
    sheet = layout(cut_reader.read_cut_shots(scene))
    with atomic_path(target) as tmp:
        _compose(sheet, tmp)
        _letter(sheet, tmp)
    return target


def _compose(sheet: Sheet, out: Path) -> None:
    """Background, grey frames and the stills, saved as a PNG (rows run bottom-up in Blender's pixels)."""
    w, h = sheet.width, sheet.height
    pixels = array.array("f", BACKGROUND) * (w * h)
    for x, y, fw, fh in sheet.frames:
        _fill(pixels, w, h, x, y, fw, fh, EMPTY)
    for picture in sheet.pictures:
        if not os.path.isfile(picture.path):
            continue
        image = bpy.data.images.load(picture.path, check_existing=False)
        try:
            iw, ih = image.size
            scale = min(picture.width / max(1, iw), picture.height / max(1, ih))
            tw, th = max(1, round(iw * scale)), max(1, round(ih * scale))
            image.scale(tw, th)
            thumb = array.array("f", bytes(4 * tw * th * 4))
            image.pixels.foreach_get(thumb)
        finally:
            bpy.data.images.remove(image)
        left = picture.x + (picture.width - tw) // 2
        top = picture.y + (picture.height - th) // 2
        for row in range(th):  # thumb row 0 is its bottom
            dest = ((h - top - th + row) * w + left) * 4
            pixels[dest : dest + tw * 4] = thumb[row * tw * 4 : (row + 1) * tw * 4]
    image = bpy.data.images.new("movie_director_sheet", w, h, alpha=False)
    try:
        image.pixels.foreach_set(pixels)
        image.filepath_raw = str(out)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)


def _fill(pixels: array.array, w: int, h: int, x: int, y: int, fw: int, fh: int, color: tuple[float, ...]) -> None:  # type: ignore[type-arg]
    row = array.array("f", color) * fw
    for r in range(h - y - fh, h - y):
        pixels[(r * w + x) * 4 : (r * w + x + fw) * 4] = row


def _letter(sheet: Sheet, path: Path) -> None:
    import blf
    import imbuf

    buffer = imbuf.load(str(path))
    try:
        font = 0
        with blf.bind_imbuf(font, buffer):
            blf.color(font, *INK)
            for line in sheet.text:
                blf.size(font, line.size)
                blf.position(font, line.x, sheet.height - line.y, 0)
                blf.draw_buffer(font, line.text)
        imbuf.write(buffer, filepath=str(path))
    finally:
        buffer.free()


class MOVIEDIR_OT_storyboard_sheet(bpy.types.Operator):
    bl_idname = "moviedir.storyboard_sheet"
    bl_label = "Storyboard Sheet"
    bl_description = "A contact sheet of the shots (PNG): still, shot number, duration, description and dialogue"
    bl_options = {"REGISTER"}  # writes a file only

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: bpy.props.StringProperty(default="*.png", options={"HIDDEN"})  # type: ignore[valid-type]

    def invoke(self, context: Any, event: Any) -> set[str]:
        if not self.filepath:
            blend = bpy.data.filepath
            self.filepath = (
                str(Path(blend).with_name(Path(blend).stem + "_storyboard.png")) if blend else "storyboard.png"
            )
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: Any) -> set[str]:
        try:
            written = storyboard_sheet(self.filepath, scene=context.scene)
        except HandoffError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Wrote {written}")
        return {"FINISHED"}


classes = (MOVIEDIR_OT_storyboard_sheet,)
register, unregister = bpy.utils.register_classes_factory(classes)
