"""The "Script (LLM)" panel of the Movie Director sidebar: write a script into a Text block, make a shot list, and
browse the scene's shots.

Touches bpy (main thread only). Draw code reads cached state only: no network, no waiting, no runtime start-up.
"""

from __future__ import annotations

from typing import Any

import bpy

from .sidebar import MovieDirectorPanel, draw_server_list


class MOVIEDIR_UL_shots(bpy.types.UIList):
    """One row per shot: number, description and duration."""

    def draw_item(
        self,
        context: Any,
        layout: Any,
        data: Any,
        item: Any,
        icon: int,
        active_data: Any,
        active_property: str,
        index: int = 0,
        flt_flag: int = 0,
    ) -> None:
        row = layout.row(align=True)
        row.label(text=f"{index + 1}. {item.description}")
        row.label(text=f"{item.duration:.1f} s")


def _job_status(layout: Any, key: str) -> None:
    """Progress and a Stop button while the newest Write / Shot List job runs; its error once it failed."""
    from ..operators import llm_text

    handle = llm_text.active.get(key)
    if handle is None:
        return
    job = handle.status()
    if not handle.done:
        row = layout.row(align=True)
        text = job.progress.message or job.progress.stage or job.state.value
        row.progress(factor=job.progress.fraction, type="BAR", text=text)
        row.operator("moviedir.cancel_job", text="", icon="CANCEL").job_id = job.id
    elif job.error is not None and job.state.value == "failed":
        layout.label(text=job.error.message[:120], icon="ERROR")


class MOVIEDIR_PT_llm(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_llm"
    bl_label = "Script (LLM)"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_llm", None)
        if settings is None:
            return
        wm = context.window_manager
        if wm is not None and hasattr(wm, "movie_director_llm_models"):
            from ..operators import llm_text

            draw_server_list(
                layout, settings, "model", wm, "movie_director_llm_models", "moviedir.refresh_llm_models",
                llm_text.MODEL_STATE, label="Model", noun="models", asking="Asking the server for its models...",
                empty="Empty = the server's first model; refresh to pick one",
            )  # fmt: skip
        else:
            layout.prop(settings, "model")
        col = layout.column(align=True)
        col.prop(settings, "prompt")
        col.prop(settings, "text_name")
        col.operator("moviedir.write_script", icon="TEXT")
        _job_status(layout, "write")

        box = layout.box()
        box.label(text="Shot List", icon="SEQUENCE")
        box.prop(settings, "scene_description")
        box.operator("moviedir.shot_list", icon="LINENUMBERS_ON")
        _job_status(box, "shot_list")
        if not len(settings.shots):
            return
        total = sum(shot.duration for shot in settings.shots)
        box.label(text=f"{settings.shot_list_title}: {len(settings.shots)} shots, {total:.1f} s")
        box.template_list("MOVIEDIR_UL_shots", "", settings, "shots", settings, "active_shot", rows=4)
        if 0 <= settings.active_shot < len(settings.shots):
            shot = settings.shots[settings.active_shot]
            detail = box.column(align=True)
            detail.prop(shot, "description")
            row = detail.row(align=True)
            row.prop(shot, "duration")
            row.prop(shot, "camera")
            detail.prop(shot, "dialogue")
            detail.prop(shot, "sound_cues")


classes = (MOVIEDIR_UL_shots, MOVIEDIR_PT_llm)
register, unregister = bpy.utils.register_classes_factory(classes)
