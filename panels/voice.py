"""The "Voice (RVC)" panel in the Movie Director sidebar tab: the server's voices, the conversion settings and the
Convert Voice button; below it, "Train Voice" (a new voice from a folder of recordings, on an Applio server).

Touches bpy (main thread only). Draw code reads cached state only (the window manager's voice list and
``operators.convert_voice.VOICE_STATE``): no network, no waiting, no runtime start-up. The list changes only when the
user presses refresh (or a script calls ``voices()``).
"""

from __future__ import annotations

from typing import Any

import bpy

from ..operators import convert_voice, train_voice
from .sidebar import MovieDirectorPanel, draw_server_list, progress_text


class MOVIEDIR_PT_voice(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_voice"
    bl_label = "Voice (RVC)"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_voice", None)
        wm = context.window_manager
        if settings is None or wm is None:
            return
        draw_server_list(
            layout, settings, "voice", wm, "movie_director_voices", "moviedir.refresh_voices",
            convert_voice.VOICE_STATE, label="Voice", noun="voices", asking="Asking the server for its voices...",
            empty="Press refresh to list the server's voices",
        )  # fmt: skip
        col = layout.column(align=True)
        col.prop(settings, "pitch")
        col.prop(settings, "f0method")
        col.prop(settings, "index_rate")
        col.prop(settings, "protect")
        strip = convert_voice.active_sound_strip(context.scene)
        if strip is None:
            layout.label(text="Select a sound strip to convert", icon="SOUND")
        else:
            layout.label(text=f"Strip: {strip.name}", icon="SOUND")
        layout.operator("moviedir.convert_voice", icon="OUTLINER_OB_SPEAKER")


class MOVIEDIR_PT_train_voice(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_train_voice"
    bl_label = "Train Voice"
    bl_parent_id = "MOVIEDIR_PT_voice"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_train", None)
        if settings is None:
            return
        layout.prop(settings, "name")
        layout.prop(settings, "dataset")
        col = layout.column(align=True)
        col.prop(settings, "epochs")
        col.prop(settings, "sample_rate")
        col.prop(settings, "batch_size")
        col.prop(settings, "f0method")
        handle = train_voice.CURRENT.get("handle")
        if handle is None or handle.done:
            layout.operator("moviedir.train_voice", icon="REC")
        if handle is None:
            return
        job = handle.status()
        if not handle.done:
            row = layout.row(align=True)
            row.progress(factor=job.progress.fraction, type="BAR", text=progress_text(job))
            row.operator("moviedir.cancel_training", text="", icon="CANCEL")
            if job.log:
                layout.label(text=job.log[-1][:100])
        elif job.error is not None:
            layout.label(text=job.error.message[:120], icon="ERROR")
        elif job.state.value == "succeeded":
            layout.label(text=f"Trained {job.outputs.data.get('voice', '')}", icon="CHECKMARK")


classes = (MOVIEDIR_PT_voice, MOVIEDIR_PT_train_voice)
register, unregister = bpy.utils.register_classes_factory(classes)
