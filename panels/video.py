"""The "Video (Wan2GP)" panel in the Movie Director sidebar tab: model, prompt and length settings, the server's
models, the running video's progress with Wan2GP's latest log line, and the Generate Video button.

Touches bpy (main thread only). Draw code reads cached state only (the window manager's model list,
``operators.generate_video.MODEL_STATE`` and the handle the sidebar follows): no network, no waiting, no runtime
start-up.
"""

from __future__ import annotations

from typing import Any

import bpy

from ..operators import generate_video
from .sidebar import MovieDirectorPanel, draw_server_list, progress_text


class MOVIEDIR_PT_video(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_video"
    bl_label = "Video (Wan2GP)"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_video", None)
        wm = context.window_manager
        if settings is None or wm is None:
            return
        draw_server_list(
            layout, settings, "model", wm, "movie_director_video_models", "moviedir.refresh_video_models",
            generate_video.MODEL_STATE, label="Model", noun="models", asking="Asking Wan2GP for its models...",
            empty="Press refresh to list the server's models",
        )  # fmt: skip
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
