"""The cast: which voices each character speaks with (a TTS voice, an RVC voice and its pitch), kept on the scene so
it is saved with the .blend. Direct speaks each dialogue line with its character's voices; Speak Line can too.

Touches bpy (main thread only). Characters match case-insensitively, ignoring surrounding spaces ("Mara" = "MARA").
"""

from __future__ import annotations

from typing import Any

import bpy


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def members(scene: Any) -> list[Any]:
    return list(getattr(scene, "movie_director_cast", []) or [])


def member(scene: Any, character: str) -> Any:
    """The cast entry for ``character``; ValueError naming the cast when there is none."""
    for item in members(scene):
        if _key(item.character) == _key(character):
            return item
    known = ", ".join(m.character for m in members(scene) if m.character) or "nobody yet"
    raise ValueError(f"{character!r} is not in the cast (the cast: {known})")


def as_dict(scene: Any) -> dict[str, dict[str, Any]]:
    """The cast as plain data (for the pipeline, which runs outside Blender): character -> voices."""
    return {
        item.character.strip(): {"tts_voice": item.tts_voice, "rvc_voice": item.rvc_voice, "pitch": item.pitch}
        for item in members(scene)
        if item.character.strip()
    }


def set_member(scene: Any, character: str, *, tts_voice: str = "", rvc_voice: str = "", pitch: int = 0) -> Any:
    """Add ``character`` to the cast or change its voices (console and scripts)."""
    try:
        item = member(scene, character)
    except ValueError:
        item = scene.movie_director_cast.add()
        item.character = character.strip()
    item.tts_voice, item.rvc_voice, item.pitch = tts_voice, rvc_voice, int(pitch)
    return item


class MOVIEDIR_PG_cast_member(bpy.types.PropertyGroup):
    character: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Character", description="The name the shot list gives the speaker, e.g. MARA"
    )
    tts_voice: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Speech Voice", description="The speech server's voice for this character (empty = its first)"
    )
    rvc_voice: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="RVC Voice", description="Convert this character's lines to this RVC voice (empty = no conversion)"
    )
    pitch: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Pitch", description="Semitones for the RVC conversion", default=0, min=-24, max=24
    )


class MOVIEDIR_UL_cast(bpy.types.UIList):
    bl_idname = "MOVIEDIR_UL_cast"

    def draw_item(
        self, context: Any, layout: Any, data: Any, item: Any, icon: int, active_data: Any, active_prop: str, *rest: Any
    ) -> None:
        row = layout.row(align=True)
        row.prop(item, "character", text="", emboss=False, icon="USER")
        row.label(text=item.tts_voice or "(first voice)")
        row.label(text=f"{item.rvc_voice} {item.pitch:+d}" if item.rvc_voice else "")


class MOVIEDIR_OT_cast_add(bpy.types.Operator):
    bl_idname = "moviedir.cast_add"
    bl_label = "Add Character"
    bl_description = "Add a character to the cast"
    bl_options = {"REGISTER", "UNDO"}  # edits scene data

    def execute(self, context: Any) -> set[str]:
        scene = context.scene
        item = scene.movie_director_cast.add()
        item.character = f"CHARACTER {len(scene.movie_director_cast)}"
        scene.movie_director_cast_index = len(scene.movie_director_cast) - 1
        return {"FINISHED"}


class MOVIEDIR_OT_cast_remove(bpy.types.Operator):
    bl_idname = "moviedir.cast_remove"
    bl_label = "Remove Character"
    bl_description = "Remove the selected character from the cast"
    bl_options = {"REGISTER", "UNDO"}  # edits scene data

    @classmethod
    def poll(cls, context: Any) -> bool:
        return bool(context.scene and len(context.scene.movie_director_cast))

    def execute(self, context: Any) -> set[str]:
        scene = context.scene
        index = scene.movie_director_cast_index
        if 0 <= index < len(scene.movie_director_cast):
            scene.movie_director_cast.remove(index)
            scene.movie_director_cast_index = max(0, index - 1)
        return {"FINISHED"}


def draw(layout: Any, scene: Any) -> None:
    """The cast table with add/remove, and the selected character's voices (for the Direct panel)."""
    layout.label(text="Cast", icon="COMMUNITY")
    row = layout.row()
    row.template_list("MOVIEDIR_UL_cast", "", scene, "movie_director_cast", scene, "movie_director_cast_index", rows=3)
    col = row.column(align=True)
    col.operator("moviedir.cast_add", text="", icon="ADD")
    col.operator("moviedir.cast_remove", text="", icon="REMOVE")
    index = scene.movie_director_cast_index
    if 0 <= index < len(scene.movie_director_cast):
        item = scene.movie_director_cast[index]
        col = layout.column(align=True)
        col.prop(item, "character")
        wm = bpy.context.window_manager
        if wm is not None and hasattr(wm, "movie_director_speech_voices"):
            col.prop_search(item, "tts_voice", wm, "movie_director_speech_voices")
        else:
            col.prop(item, "tts_voice")
        if wm is not None and hasattr(wm, "movie_director_voices"):
            col.prop_search(item, "rvc_voice", wm, "movie_director_voices")
        else:
            col.prop(item, "rvc_voice")
        col.prop(item, "pitch")


classes = (MOVIEDIR_PG_cast_member, MOVIEDIR_UL_cast, MOVIEDIR_OT_cast_add, MOVIEDIR_OT_cast_remove)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_cast = bpy.props.CollectionProperty(type=MOVIEDIR_PG_cast_member)
    bpy.types.Scene.movie_director_cast_index = bpy.props.IntProperty(options={"HIDDEN"})


def unregister() -> None:
    del bpy.types.Scene.movie_director_cast_index
    del bpy.types.Scene.movie_director_cast
    _unregister()
