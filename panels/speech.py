"""The "Speak Line" panel in the Movie Director sidebar tab: the line, who says it (a cast character, or a speech
voice and an optional RVC voice), and the line on its way.

Touches bpy (main thread only). Draw code reads cached state only (the window manager's voice list and
``operators.speak_line`` state): no network, no waiting, no runtime start-up.
"""

from __future__ import annotations

from typing import Any

import bpy

from ..operators import speak_line
from .sidebar import MovieDirectorPanel, draw_server_list, progress_text


class MOVIEDIR_PT_speech(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_speech"
    bl_label = "Speak Line"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_speech", None)
        wm = context.window_manager
        if settings is None or wm is None:
            return
        layout.prop(settings, "text")
        layout.prop_search(settings, "character", context.scene, "movie_director_cast", icon="USER")
        col = layout.column()
        col.enabled = not settings.character  # a cast character brings its own voices
        draw_server_list(
            col, settings, "voice", wm, "movie_director_speech_voices", "moviedir.refresh_speech_voices",
            speak_line.VOICE_STATE, label="Voice", noun="voices", asking="Asking the speech server for its voices...",
            empty="Press refresh to list the speech server's voices",
        )  # fmt: skip
        row = col.row(align=True)
        row.prop_search(settings, "rvc_voice", wm, "movie_director_voices")
        row.prop(settings, "pitch")
        row = layout.row(align=True)
        row.prop(settings, "speed")
        row.prop(settings, "model")
        layout.operator("moviedir.speak_line", icon="PLAY_SOUND")
        line = speak_line.CURRENT["line"]
        if line is None:
            return
        if line.error:
            layout.label(text=line.error[:120], icon="ERROR")
        elif not line.done:
            job = line.current.status()
            box = layout.box()
            row = box.row(align=True)
            row.label(text="Converting voice" if line.voice else "Speaking", icon="SOUND")
            row.operator("moviedir.cancel_job", text="", icon="X").job_id = job.id
            box.progress(factor=job.progress.fraction, type="BAR", text=progress_text(job))


classes = (MOVIEDIR_PT_speech,)
register, unregister = bpy.utils.register_classes_factory(classes)
