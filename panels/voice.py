"""The "Voice (RVC)" panel in the Movie Director sidebar tab: the server's voices, the conversion settings and the
Convert Voice button.

Touches bpy (main thread only). Draw code reads cached state only (the window manager's voice list and
``operators.convert_voice.VOICE_STATE``): no network, no waiting, no runtime start-up. The list changes only when the
user presses refresh (or a script calls ``voices()``).
"""

from __future__ import annotations

from typing import Any

import bpy

from ..operators import convert_voice
from .sidebar import MovieDirectorPanel, draw_server_list


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


classes = (MOVIEDIR_PT_voice,)
register, unregister = bpy.utils.register_classes_factory(classes)
