"""The "Voice (RVC)" panel in the Movie Director sidebar tab: the server's voices, the conversion settings and the
Convert Voice button.

Touches bpy (main thread only). Draw code reads cached state only (the window manager's voice list and
``operators.convert_voice.VOICE_STATE``): no network, no waiting, no runtime start-up. The list changes only when the
user presses refresh (or a script calls ``voices()``).
"""

from __future__ import annotations

import time
from typing import Any

import bpy

from ..operators import convert_voice


def _age(updated: float) -> str:
    minutes = int((time.time() - updated) // 60)
    return "just now" if minutes < 1 else f"{minutes} min ago"


class MOVIEDIR_PT_voice(bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_voice"
    bl_label = "Voice (RVC)"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Movie Director"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_voice", None)
        wm = context.window_manager
        if settings is None or wm is None:
            return
        voices = wm.movie_director_voices
        state = convert_voice.VOICE_STATE
        row = layout.row(align=True)
        row.prop_search(settings, "voice", wm, "movie_director_voices", text="Voice")
        row.operator("moviedir.refresh_voices", text="", icon="FILE_REFRESH")
        if state["busy"]:
            layout.label(text="Asking the server for its voices...", icon="SORTTIME")
        elif state["error"]:
            layout.label(text=str(state["error"])[:120], icon="ERROR")
        elif state["updated"]:
            layout.label(text=f"{len(voices)} voices, listed {_age(state['updated'])}", icon="INFO")
        else:
            layout.label(text="Press refresh to list the server's voices", icon="INFO")
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
