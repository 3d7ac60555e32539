"""The "Direct" panel: the scene text, the cast (who speaks with which voices), the Direct button, and the pipeline
as a tree of shots and stages with per-stage progress and cancel / retry / regenerate.

Touches bpy (main thread only). Draw code reads the pipeline's latest snapshot only: no network, no waiting.
"""

from __future__ import annotations

from typing import Any

import bpy

from .. import addon_runtime
from ..operators import cast, direct
from .sidebar import JOB_ICONS, MovieDirectorPanel, draw_checkpoint

STAGE_ICONS = {
    "pending": "SORTTIME",
    "running": "PLAY",
    "succeeded": "CHECKMARK",
    "failed": "ERROR",
    "cancelled": "CANCEL",
}


class MOVIEDIR_PT_direct(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_direct"
    bl_label = "Direct a Scene"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_direct", None)
        if settings is None:
            return
        layout.prop(settings, "scene_text", text="")
        row = layout.row(align=True)
        row.prop(settings, "with_video")
        row.prop(settings, "with_sound")
        row.prop(settings, "with_voices")
        if settings.with_voices:
            cast.draw(layout.box(), context.scene)
            layout.prop_search(settings, "voice", context.window_manager, "movie_director_voices")
        draw_checkpoint(layout, settings, context.window_manager)
        layout.operator("moviedir.direct", icon="SEQUENCE")
        _draw_handoff(layout)
        handle = direct.active_pipeline()
        if handle is None:
            return
        spec = handle.status()
        rt = addon_runtime.current()
        box = layout.box()
        box.label(text=spec.title or "Scene", icon="SEQ_STRIP_META")
        box.progress(factor=handle.progress(), type="BAR", text=f"{handle.progress():.0%}")
        groups: dict[str, list[Any]] = {}
        for stage in spec.stages:
            groups.setdefault(stage.group or "", []).append(stage)
        for group, stages in groups.items():
            col = box.column(align=True)
            if group:
                col.label(text=group.replace("shot", "Shot "))
            for stage in stages:
                row = col.row(align=True)
                row.label(text=stage.label or stage.id, icon=STAGE_ICONS.get(stage.state.value, "DOT"))
                if stage.state.value == "running" and rt and stage.job_id and (h := rt.handle(stage.job_id)):
                    job = h.status()
                    row.progress(factor=job.progress.fraction, type="BAR", text=job.progress.stage or job.state.value)
                    op = row.operator("moviedir.pipeline_stage", text="", icon="X")
                    op.action, op.stage_id = "CANCEL", stage.id
                elif stage.state.value in ("failed", "cancelled"):
                    op = row.operator("moviedir.pipeline_stage", text="", icon="FILE_REFRESH")
                    op.action, op.stage_id = "RETRY", stage.id
                elif stage.state.value == "succeeded":
                    op = row.operator("moviedir.pipeline_stage", text="", icon="RECOVER_LAST")
                    op.action, op.stage_id = "REGENERATE", stage.id
                if stage.error:
                    col.label(text=stage.error[:100], icon=JOB_ICONS["failed"])


def _draw_handoff(layout: Any) -> None:
    """The hand-off: export for an editor, subtitles, storyboard sheet, render (progress and cancel while running)."""
    from ..operators import render_cut

    col = layout.column(align=True)
    col.label(text="Hand-off", icon="EXPORT")
    row = col.row(align=True)
    row.operator("moviedir.export_cut", text="Export Cut", icon="EXPORT")
    row.operator("moviedir.subtitles", text="Subtitles", icon="FONT_DATA")
    row = col.row(align=True)
    row.operator("moviedir.storyboard_sheet", text="Sheet", icon="IMAGE_DATA")
    render = render_cut.active_render()
    if render is None:
        row.operator("moviedir.render_cut", text="Render", icon="RENDER_ANIMATION")
    else:
        row.progress(factor=render.progress, type="BAR", text=f"Rendering {render.done}/{render.total}")
        row.operator("moviedir.cancel_render", text="", icon="X")


classes = (MOVIEDIR_PT_direct,)
register, unregister = bpy.utils.register_classes_factory(classes)
