"""The "Takes" panel: the files the active generated strip has shown, the one it shows now, and a new take.

Touches bpy (main thread only). Draw code reads the strip's custom properties only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

from ..operators import sequencer
from ..operators.takes import active_generated_strip
from .sidebar import MovieDirectorPanel


class MOVIEDIR_PT_takes(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_takes"
    bl_label = "Takes"

    def draw(self, context: Any) -> None:
        layout = self.layout
        strip = active_generated_strip(context.scene)
        if strip is None:
            layout.label(text="Select a generated strip to see its takes", icon="INFO")
            return
        current = sequencer.current_file(strip)
        col = layout.column(align=True)
        for index, path in enumerate(sequencer.takes(strip)):
            shown = Path(path) == Path(current)
            icon = "RADIOBUT_ON" if shown else "RADIOBUT_OFF"
            op = col.operator("moviedir.swap_take", text=f"{index + 1}: {Path(path).name}", icon=icon, depress=shown)
            op.index = index
        layout.operator("moviedir.new_take", icon="FILE_REFRESH")


classes = (MOVIEDIR_PT_takes,)
register, unregister = bpy.utils.register_classes_factory(classes)
