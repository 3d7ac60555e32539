"""The hand-off operators: export the cut (OpenTimelineIO, EDL, FCP XML, subtitles), import an OTIO cut into a new
scene, lay out subtitles; menu entries in File > Export / Import and the Sequencer's View menu (beside Blender's own
Export Subtitles).

Touches bpy (main thread only). The files themselves are written by the plain modules in ``clients/handoff``; every
file is written to a temporary name and renamed when complete, and bad input is a :class:`HandoffError` that names
what is wrong. Those modules (and OpenTimelineIO) load on the first export or import, not when the add-on is enabled.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..clients.handoff.errors import HandoffError
from . import cut_reader, sequencer, subtitles

if TYPE_CHECKING:
    from ..clients.handoff.cut import Clip, Cut

#: Export formats: enum id -> (extension, label, what reads it).
FORMATS = {
    "OTIO": (".otio", "OpenTimelineIO", "DaVinci Resolve, Nuke Studio/Hiero, OpenRV, Kdenlive (adapter), RAVEN"),
    "EDL": (".edl", "CMX 3600 EDL (picture)", "Avid Media Composer, Premiere Pro, Resolve"),
    "XML": (".xml", "Final Cut Pro 7 XML", "Premiere Pro, DaVinci Resolve, Kdenlive"),
    "SRT": (".srt", "SubRip subtitles", "every editor and player"),
}


def export_cut(path: str | Path, *, scene: Any = None) -> Path:
    """Write the scene's cut to ``path`` in the format its extension names (.otio, .edl, .xml, .srt)."""
    from ..clients.handoff import otio_io, srt
    from ..clients.handoff.cut import check_media
    from ..clients.handoff.files import write_text

    scene = scene or bpy.context.scene
    target = Path(bpy.path.abspath(str(path)))
    cut = cut_reader.read_cut(scene)
    suffix = target.suffix.lower()
    if suffix == ".srt":
        return write_text(target, srt.to_srt(cut))
    check_media(cut)
    return otio_io.write(cut, target)


def import_cut(path: str | Path, *, name: str = "") -> Any:
    """Rebuild an ``.otio`` cut in a new scene (stills, clips at their own rate, sounds, subtitles, markers)."""
    from ..clients.handoff import otio_io
    from ..clients.handoff.cut import check_media

    cut = otio_io.read(Path(bpy.path.abspath(str(path))))
    check_media(cut)
    return build_scene(cut, name or cut.name)


def build_scene(cut: Cut, name: str) -> Any:
    scene = bpy.data.scenes.new(name)
    whole = round(cut.fps)
    scene.render.fps, scene.render.fps_base = whole, whole / cut.fps
    scene.render.resolution_x, scene.render.resolution_y = cut.width, cut.height
    scene.frame_start, scene.frame_end = cut.frame_start, cut.frame_end
    scene.sequence_editor_create()
    for track in cut.tracks:
        for clip in track.clips:
            strip = _place(scene, clip, track.channel)
            for key, field in (("takes", "takes"), (cut_reader.GENERATION_KEY, "generation")):
                if field in clip.metadata:
                    strip[key] = json.dumps(clip.metadata[field])
            if "stage" in clip.metadata:
                strip[cut_reader.STAGE_KEY] = clip.metadata["stage"]
            if "subtitle" in clip.metadata:
                strip[cut_reader.SUBTITLE_KEY] = json.dumps(clip.metadata["subtitle"])
    for marker in cut.markers:
        scene.timeline_markers.new(marker.name, frame=marker.frame)
    scene[cut_reader.SHOTS_KEY] = json.dumps(
        [
            {
                "index": s.index,
                "frame": s.start,
                "length": s.duration,
                "description": s.description,
                "dialogue": [{"character": c, "line": line} for c, line in s.dialogue],
            }
            for s in cut.shots
        ]
    )
    return scene


def _place(scene: Any, clip: Clip, channel: int) -> Any:
    if clip.kind == "text":
        strip = subtitles.add(scene, clip.text, clip.start, clip.duration, name=clip.name)
        strip.channel = channel
        return strip
    if clip.kind == "still":
        return sequencer.place_image(
            scene, clip.path, frame=clip.start, duration=clip.duration, name=clip.name, channel=channel
        )
    fps = sequencer.scene_fps(scene)
    # timeline frames trimmed off the clip's front: its first source frame, at the speed it plays
    lead = round(clip.source_in / (clip.source_fps or fps) * fps / clip.time_scalar) if clip.source_in else 0
    if clip.kind == "sound":
        strip = sequencer.place_sound(scene, clip.path, frame=clip.start - lead, name=clip.name, channel=channel)
    elif math.isclose(clip.time_scalar, 1.0, rel_tol=1e-3) or not clip.source_fps:
        strip = sequencer.place_movie(scene, clip.path, frame=clip.start - lead, name=clip.name, channel=channel)
    else:  # played off-speed in Blender: laid frame for frame, as it came
        strip = sequencer.editable_strips(scene).new_movie(
            name=clip.name, filepath=clip.path, channel=channel, frame_start=clip.start - lead, fit_method="FIT"
        )
    strip.frame_final_start = clip.start
    strip.frame_final_duration = clip.duration
    return strip


class MOVIEDIR_OT_export_cut(bpy.types.Operator, ExportHelper):
    bl_idname = "moviedir.export_cut"
    bl_label = "Export Cut"
    bl_description = "Export the scene's Sequencer for an editor: OpenTimelineIO, CMX 3600 EDL, FCP XML or subtitles"
    bl_options = {"REGISTER"}  # writes a file, changes nothing in the .blend

    filename_ext = ".otio"
    filter_glob: StringProperty(default="*.otio;*.edl;*.xml;*.srt", options={"HIDDEN"})  # type: ignore[valid-type]
    file_format: EnumProperty(  # type: ignore[valid-type]
        name="Format",
        items=[(k, label, f"{label}: {readers}") for k, (_, label, readers) in FORMATS.items()],
        default="OTIO",
        update=lambda self, _ctx: setattr(self, "filepath", str(Path(self.filepath).with_suffix(self.ext))),
    )

    @property
    def ext(self) -> str:
        return FORMATS[self.file_format][0]

    def check(self, context: Any) -> bool:
        self.filename_ext = self.ext
        return bool(ExportHelper.check(self, context))

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def execute(self, context: Any) -> set[str]:
        path = Path(self.filepath).with_suffix(self.ext)
        try:
            written = export_cut(path, scene=context.scene)
        except HandoffError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Wrote {written}")
        return {"FINISHED"}


class MOVIEDIR_OT_import_cut(bpy.types.Operator, ImportHelper):
    bl_idname = "moviedir.import_cut"
    bl_label = "Import Cut"
    bl_description = "Rebuild an OpenTimelineIO cut on the Sequencer of a new scene"
    bl_options = {"REGISTER", "UNDO"}  # adds a scene

    filename_ext = ".otio"
    filter_glob: StringProperty(default="*.otio", options={"HIDDEN"})  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        try:
            scene = import_cut(self.filepath)
        except HandoffError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if context.window is not None:
            context.window.scene = scene
        self.report({"INFO"}, f"Imported the cut into scene {scene.name!r}")
        return {"FINISHED"}


class MOVIEDIR_OT_subtitles(bpy.types.Operator):
    bl_idname = "moviedir.subtitles"
    bl_label = "Lay Out Subtitles"
    bl_description = "Dialogue lines as text strips on their own channel, timed to their voice lines or their shot"
    bl_options = {"REGISTER", "UNDO"}  # edits the Sequencer

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None and cut_reader.SHOTS_KEY in context.scene

    def execute(self, context: Any) -> set[str]:
        count = subtitles.sync(context.scene)
        self.report({"INFO"}, f"{count} subtitles")
        return {"FINISHED"}


def _export_menu(self: Any, context: Any) -> None:
    self.layout.operator(MOVIEDIR_OT_export_cut.bl_idname, text="Movie Director Cut (.otio/.edl/.xml/.srt)")


def _import_menu(self: Any, context: Any) -> None:
    self.layout.operator(MOVIEDIR_OT_import_cut.bl_idname, text="Movie Director Cut (.otio)")


def _sequencer_menu(self: Any, context: Any) -> None:
    self.layout.separator()
    self.layout.operator(MOVIEDIR_OT_export_cut.bl_idname, text="Export Cut for an Editor", icon="EXPORT")
    self.layout.operator("moviedir.storyboard_sheet", icon="IMAGE_DATA")
    self.layout.operator("moviedir.render_cut", icon="RENDER_ANIMATION")


classes = (MOVIEDIR_OT_export_cut, MOVIEDIR_OT_import_cut, MOVIEDIR_OT_subtitles)
_register, _unregister = bpy.utils.register_classes_factory(classes)
MENUS = (
    ("TOPBAR_MT_file_export", _export_menu),
    ("TOPBAR_MT_file_import", _import_menu),
    ("SEQUENCER_MT_view", _sequencer_menu),
)


def register() -> None:
    _register()
    for menu, draw in MENUS:
        getattr(bpy.types, menu).append(draw)


def unregister() -> None:
    for menu, draw in MENUS:
        getattr(bpy.types, menu).remove(draw)
    _unregister()
