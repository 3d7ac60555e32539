"""The "Sound Effect (AudioLDM)" panel in the Movie Director sidebar tab: the sound's description, length and
sampler settings, the running sound's progress with the app's latest log line, and the Sound Effect button.

Touches bpy (main thread only). Draw code reads cached state only (the scene's settings and the handle the sidebar
follows): no network, no waiting, no runtime start-up. Voices (RVC) have their own panel module.
"""

from __future__ import annotations

from typing import Any

import bpy

from ..operators import sound_effect
from .sidebar import MovieDirectorPanel, progress_text


class MOVIEDIR_PT_sound(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_sound"
    bl_label = "Sound Effect (AudioLDM)"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_sound", None)
        if settings is None:
            return
        layout.prop(settings, "prompt")
        layout.prop(settings, "seconds")
        row = layout.row(align=True)
        row.prop(settings, "guidance_scale")
        row.prop(settings, "candidates")
        row = layout.row(align=True)
        row.prop(settings, "seed")
        row.prop(settings, "steps")
        layout.operator("moviedir.sound_effect", icon="SOUND")
        handle = sound_effect.CURRENT["handle"]
        if handle is None:
            return
        job = handle.status()
        if not handle.done:
            box = layout.box()
            row = box.row(align=True)
            row.label(text=str(job.request.get("title") or "sound")[:40], icon="SOUND")
            row.operator("moviedir.cancel_job", text="", icon="X").job_id = job.id
            box.progress(factor=job.progress.fraction, type="BAR", text=progress_text(job))
            if job.log:
                box.label(text=job.log[-1][:100])
        elif job.error is not None:
            layout.label(text=job.error.message[:120], icon="ERROR")


classes = (MOVIEDIR_PT_sound,)
register, unregister = bpy.utils.register_classes_factory(classes)
