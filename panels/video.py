"""The "Video (Wan2GP)" panel in the Movie Director sidebar tab: model, prompt and length settings, the server's
models, the running video's progress with Wan2GP's latest log line, and the Generate Video button.

Touches bpy (main thread only). Draw code reads cached state only (the window manager's model list,
``operators.generate_video.MODEL_STATE`` and the handle the sidebar follows): no network, no waiting, no runtime
start-up.
"""

from __future__ import annotations

import time
from typing import Any

import bpy

from ..operators import generate_video
from .sidebar import MovieDirectorPanel, progress_text


def _age(updated: float) -> str:
    minutes = int((time.time() - updated) // 60)
    return "just now" if minutes < 1 else f"{minutes} min ago"


class MOVIEDIR_PT_video(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_video"
    bl_label = "Video (Wan2GP)"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_video", None)
        wm = context.window_manager
        if settings is None or wm is None:
            return
        state = generate_video.MODEL_STATE
        row = layout.row(align=True)
        row.prop_search(settings, "model", wm, "movie_director_video_models", text="Model")
        row.operator("moviedir.refresh_video_models", text="", icon="FILE_REFRESH")
        if state["busy"]:
            layout.label(text="Asking Wan2GP for its models...", icon="SORTTIME")
        elif state["error"]:
            layout.label(text=str(state["error"])[:120], icon="ERROR")
        elif state["updated"]:
            count = len(wm.movie_director_video_models)
            layout.label(text=f"{count} models, listed {_age(state['updated'])}", icon="INFO")
        layout.prop(settings, "prompt")
        layout.prop(settings, "negative_prompt")
        layout.prop(settings, "resolution")
        row = layout.row(align=True)
        row.prop(settings, "seconds")
        row.prop(settings, "steps")
        layout.prop(settings, "seed")
        layout.prop(settings, "use_start_image")
        layout.operator("moviedir.generate_video", icon="FILE_MOVIE")
        handle = generate_video.CURRENT.get("handle")
        if handle is None:
            return
        job = handle.status()
        if not handle.done:
            layout.progress(factor=job.progress.fraction, type="BAR", text=progress_text(job))
            if job.log:
                layout.label(text=job.log[-1][:100])
            elif job.progress.message:
                layout.label(text=job.progress.message[:100])
        elif job.error is not None:
            layout.label(text=job.error.message[:120], icon="ERROR")


classes = (MOVIEDIR_PT_video,)
register, unregister = bpy.utils.register_classes_factory(classes)
