"""Write and Shot List: script text streamed token by token into a Blender Text block, and a scene description
turned into a validated shot list stored on the scene (so it is saved with the .blend, ready for the other backends).

Touches bpy (main thread only). Streamed text arrives through the job handle's ``on_text`` callbacks, which the pump
runs on the main thread in order, one per piece, none dropped. The operators queue the job and return at once
(Stop, or the cancel button in the status bar, ends the job and closes its connection) and leave the handle in
``addon_runtime.last_handle``. :func:`write` and :func:`shot_list` are the console forms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import CollectionProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from .. import addon_runtime
from .base import JobOperator

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job

DEFAULT_TEXT = "Script"
#: Text.cursor_set clamps a column past the end of the line to its end (columns are bytes in some versions).
_LINE_END = 1 << 30

#: The newest Write and Shot List jobs, for the sidebar's progress and Stop button (main thread only).
active: dict[str, JobHandle] = {}


class MOVIEDIR_PG_shot(bpy.types.PropertyGroup):
    description: StringProperty(name="Description", description="What the camera sees")  # type: ignore[valid-type]
    duration: FloatProperty(  # type: ignore[valid-type]
        name="Duration", description="Length of the shot in seconds", default=2.0, min=0.5, max=60.0, unit="NONE"
    )
    camera: StringProperty(name="Camera", description="Framing and movement")  # type: ignore[valid-type]
    dialogue: StringProperty(  # type: ignore[valid-type]
        name="Dialogue", description="One 'CHARACTER: line' per line, in order"
    )
    sound_cues: StringProperty(name="Sound Cues", description="Sounds heard, separated by ';'")  # type: ignore[valid-type]


class MOVIEDIR_PG_llm_settings(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", description="What the script should be about")  # type: ignore[valid-type]
    text_name: StringProperty(  # type: ignore[valid-type]
        name="Text", description="The Text block the script streams into (created if missing)", default=DEFAULT_TEXT
    )
    model: StringProperty(  # type: ignore[valid-type]
        name="Model", description="Model name on the server (empty = the server's first model)"
    )
    scene_description: StringProperty(  # type: ignore[valid-type]
        name="Scene", description="The scene to break into shots"
    )
    shot_list_title: StringProperty(name="Title")  # type: ignore[valid-type]
    shots: CollectionProperty(type=MOVIEDIR_PG_shot)  # type: ignore[valid-type]
    active_shot: IntProperty(name="Shot", default=0, min=0)  # type: ignore[valid-type]


# --- Write ----------------------------------------------------------------------------------------------------------
def text_writer(text_name: str) -> Any:
    """An ``on_text`` callback appending each piece at the end of the named Text block (recreated if deleted)."""

    def append(job: Job, delta: str) -> None:
        text = bpy.data.texts.get(text_name) or bpy.data.texts.new(text_name)
        text.cursor_set(len(text.lines) - 1, character=_LINE_END)
        text.write(delta)
        _redraw("TEXT_EDITOR")

    return append


def write(
    prompt: str,
    *,
    text_name: str = DEFAULT_TEXT,
    model: str = "",
    system: str | None = None,
    max_tokens: int | None = None,
    append: bool = False,
) -> JobHandle:
    """Stream a script for ``prompt`` into the Text block ``text_name`` (emptied first unless ``append``).

    Returns the job's handle at once; ``handle.cancel()`` stops the model mid-sentence. The whole answer is also the
    job's ``outputs.text``.
    """
    from ..clients.llm.shots import SCRIPT_SYSTEM

    if not prompt.strip():
        raise ValueError("Write a prompt first")
    name = text_name.strip() or DEFAULT_TEXT
    text = bpy.data.texts.get(name) or bpy.data.texts.new(name)
    if not append:
        text.clear()
    request: dict[str, Any] = {"prompt": prompt, "system": SCRIPT_SYSTEM if system is None else system}
    request.update(model=model, title=f"Write: {prompt[:60]}")
    if max_tokens:
        request["max_tokens"] = max_tokens
    handle = addon_runtime.runtime().submit("llm", "chat_stream", request)
    handle.on_text(text_writer(text.name))
    active["write"] = handle
    return handle


# --- Shot List ------------------------------------------------------------------------------------------------------
def shot_list(scene_text: str, *, model: str = "", scene: Any = None) -> JobHandle:
    """Break ``scene_text`` into a validated shot list, stored on ``scene`` (the current one by default) when done."""
    if not scene_text.strip():
        raise ValueError("Describe the scene first")
    scene_name = (scene or bpy.context.scene).name
    request = {"scene": scene_text, "model": model, "title": f"Shot list: {scene_text[:60]}"}
    handle = addon_runtime.runtime().submit("llm", "shot_list", request)

    def store(job: Job) -> None:
        target = bpy.data.scenes.get(scene_name)
        if target is not None:
            store_shot_list(target, job.outputs.data["shot_list"])

    handle.on_complete(store)
    active["shot_list"] = handle
    return handle


def store_shot_list(scene: Any, data: dict[str, Any]) -> None:
    """Replace the scene's shot list with ``data`` (a ShotList dump, validated again: it crosses threads as data)."""
    from ..clients.llm.shots import ShotList

    value = ShotList.model_validate(data)
    settings = scene.movie_director_llm
    settings.shots.clear()
    settings.shot_list_title = value.title
    for shot in value.shots:
        item = settings.shots.add()
        item.name = shot.description[:60]
        item.description = shot.description
        item.duration = shot.duration_s
        item.camera = shot.camera
        item.dialogue = "\n".join(f"{d.character}: {d.line}" for d in shot.dialogue)
        item.sound_cues = "; ".join(shot.sound_cues)
    settings.active_shot = 0
    addon_runtime.tag_redraw()


def scene_shot_list(scene: Any) -> Any:
    """The scene's stored shot list as a ``ShotList`` (what other backends take), or None when there is none."""
    from ..clients.llm.shots import ShotList

    settings = scene.movie_director_llm
    if not len(settings.shots):
        return None
    shots = []
    for item in settings.shots:
        dialogue = []
        for line in item.dialogue.splitlines():
            character, sep, said = line.partition(":")
            if sep and character.strip() and said.strip():
                dialogue.append({"character": character.strip(), "line": said.strip()})
        cues = [c.strip() for c in item.sound_cues.split(";") if c.strip()]
        shots.append(
            {
                "description": item.description,
                "duration_s": item.duration,
                "camera": item.camera,
                "dialogue": dialogue,
                "sound_cues": cues,
            }
        )
    return ShotList.model_validate({"title": settings.shot_list_title or scene.name, "shots": shots})


def _redraw(area_type: str) -> None:
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == area_type:
                area.tag_redraw()


def _show_text(context: Any, text_name: str) -> None:
    """Show the Text block in an open Text Editor, if there is one, so the script is seen as it arrives."""
    screen = getattr(context, "screen", None)
    text = bpy.data.texts.get(text_name)
    if screen is None or text is None:
        return
    for area in screen.areas:
        if area.type == "TEXT_EDITOR":
            area.spaces.active.text = text
            return


# --- operators ------------------------------------------------------------------------------------------------------
class MOVIEDIR_OT_write_script(JobOperator):
    bl_idname = "moviedir.write_script"
    bl_label = "Write"
    bl_description = "Stream a script from the LLM into a Text block, token by token (Stop ends it)"
    bl_options = {"REGISTER"}  # the text arrives later through callbacks, outside this operator's undo step

    what = "The script"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def start_job(self, context: Any, placement: Any = None) -> JobHandle:
        settings = context.scene.movie_director_llm
        handle = write(settings.prompt, text_name=settings.text_name, model=settings.model)
        _show_text(context, settings.text_name.strip() or DEFAULT_TEXT)
        return handle


class MOVIEDIR_OT_shot_list(JobOperator):
    bl_idname = "moviedir.shot_list"
    bl_label = "Shot List"
    bl_description = "Turn the scene description into a validated list of shots, stored with the .blend"
    bl_options = {"REGISTER"}  # the shots are stored later by a callback, outside this operator's undo step

    what = "The shot list"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def start_job(self, context: Any, placement: Any = None) -> JobHandle:
        settings = context.scene.movie_director_llm
        return shot_list(settings.scene_description, model=settings.model, scene=context.scene)


# --- the model picker: the server's own model list (GET /v1/models), cached in the window manager ----------------
#: Where the model list stands, for the sidebar (the names are in ``WindowManager.movie_director_llm_models``).
MODEL_STATE: dict[str, Any] = {"updated": 0.0, "error": "", "busy": False}


def models(refresh: bool = True) -> JobHandle:
    """Ask the LLM server for its models; the Script panel's picker is filled when the answer comes."""
    handle = addon_runtime.runtime().submit("llm", "models", {})
    MODEL_STATE["busy"] = True
    handle.on_complete(_store_models).on_error(_models_failed)
    return handle


def _store_models(job: Job) -> None:
    import time

    for wm in bpy.data.window_managers:
        items = wm.movie_director_llm_models
        items.clear()
        for name in job.outputs.data.get("models") or []:
            items.add().name = str(name)
    MODEL_STATE.update(updated=time.time(), error="", busy=False)
    addon_runtime.tag_redraw()


def _models_failed(job: Job) -> None:
    MODEL_STATE.update(error=job.error.message if job.error else "the model list failed", busy=False)
    addon_runtime.tag_redraw()


class MOVIEDIR_PG_llm_model(bpy.types.PropertyGroup):
    """One model the LLM server offers (its ``name`` is the model id)."""


class MOVIEDIR_OT_refresh_llm_models(bpy.types.Operator):
    bl_idname = "moviedir.refresh_llm_models"
    bl_label = "Refresh Models"
    bl_description = "Ask the LLM server which models it offers"
    bl_options = {"REGISTER"}  # changes no data a user would undo

    def execute(self, context: Any) -> set[str]:
        addon_runtime.last_handle = models()
        self.report({"INFO"}, "Asking the LLM server for its models")
        return {"FINISHED"}


classes = (
    MOVIEDIR_PG_shot,
    MOVIEDIR_PG_llm_settings,
    MOVIEDIR_PG_llm_model,
    MOVIEDIR_OT_write_script,
    MOVIEDIR_OT_shot_list,
    MOVIEDIR_OT_refresh_llm_models,
)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_llm = PointerProperty(type=MOVIEDIR_PG_llm_settings)
    bpy.types.WindowManager.movie_director_llm_models = CollectionProperty(type=MOVIEDIR_PG_llm_model)


def unregister() -> None:
    active.clear()
    del bpy.types.WindowManager.movie_director_llm_models
    del bpy.types.Scene.movie_director_llm
    _unregister()
