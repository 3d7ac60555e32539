"""The "Video (Wan2GP)" panel in the Movie Director sidebar tab: the server's models, prompt and length, the common
settings (filled with the chosen model's defaults), its LoRAs with their strengths, an end image when the model takes
one, the running video's progress with Wan2GP's latest log line, and the Generate Video button.

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
        schema = generate_video.schema_of(settings)
        declared = set(schema.get("settings") or ())
        if schema:
            layout.label(text=f"{schema.get('name', '')[:40]}: {schema.get('fps')} fps", icon="FILE_MOVIE")
        layout.prop(settings, "prompt")
        layout.prop(settings, "negative_prompt")
        layout.prop(settings, "resolution")
        row = layout.row(align=True)
        row.prop(settings, "seconds")
        row.prop(settings, "seed")
        col = layout.column(align=True)
        for prop, key in generate_video.MODEL_SETTINGS.items():
            if not declared or key in declared:
                col.prop(settings, prop)
        if not schema or schema.get("start_image"):
            layout.prop(settings, "use_start_image")
        if not schema or schema.get("end_image"):
            layout.prop(settings, "end_image")
        if not schema or schema.get("lora_support", True):
            draw_loras(layout, settings, wm)
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


def draw_loras(layout: Any, settings: Any, wm: Any) -> None:
    """The LoRAs to apply, each picked from the model's list with its strength."""
    box = layout.box()
    row = box.row()
    row.label(text=f"LoRAs ({len(wm.movie_director_video_loras)} available)", icon="MODIFIER")
    row.operator("moviedir.add_video_lora", text="", icon="ADD")
    for index, lora in enumerate(settings.loras):
        row = box.row(align=True)
        row.prop_search(lora, "name", wm, "movie_director_video_loras", text="")
        row.prop(lora, "multiplier", text="")
        row.operator("moviedir.remove_video_lora", text="", icon="X").index = index


classes = (MOVIEDIR_PT_video,)
register, unregister = bpy.utils.register_classes_factory(classes)
