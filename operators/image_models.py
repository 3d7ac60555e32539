"""The ComfyUI server's models in Blender: the lists the Image and Direct panels pick from (checkpoints, LoRAs,
samplers, schedulers), their refresh button, the LoRA stack of the Image panel, and the console's ``image_models``.

Touches bpy (main thread only). The lists live in the window manager (never saved in a .blend) and are filled when a
"models" job answers (:mod:`clients.comfyui.models` reads them from the server's cached ``/object_info``): enum and
draw code only read them, never the network. An empty choice means the server's default: the user's last choice on
that server, else its first model.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job

BACKEND = "comfyui"
#: Window-manager collection per model kind the panels pick from.
COLLECTIONS = {
    "checkpoint": "movie_director_checkpoints",
    "lora": "movie_director_loras",
    "sampler": "movie_director_samplers",
    "scheduler": "movie_director_schedulers",
}
#: What the panels know about the lists besides the names: when they were read, the last failure, the server's.
MODEL_STATE: dict[str, Any] = {"updated": 0.0, "error": "", "busy": False, "models": {}, "choices": {}, "server": ""}


def image_models(refresh: bool = False) -> JobHandle:
    """Ask ComfyUI for its models (from the client's cache unless ``refresh``); the panels' lists are updated when the
    answer comes. ``image_models().result(10).data["models"]`` is ``{kind: [names]}`` for checkpoints, LoRAs, VAEs,
    upscale and ControlNet models, samplers and schedulers (the kinds whose loader the server has)."""
    handle = addon_runtime.runtime().submit(BACKEND, "models", {"refresh": refresh})
    MODEL_STATE["busy"] = True
    handle.on_complete(_store_models)
    handle.on_error(_models_failed)
    return handle


def _store_models(job: Job) -> None:
    models = job.outputs.data.get("models") or {}
    for wm in bpy.data.window_managers:
        for kind, prop in COLLECTIONS.items():
            items = getattr(wm, prop)
            items.clear()
            for name in models.get(kind) or []:
                items.add().name = str(name)
    MODEL_STATE.update(
        updated=time.time(),
        error="",
        busy=False,
        models=dict(models),
        choices=dict(job.outputs.data.get("choices") or {}),
        server=str(job.outputs.data.get("server") or ""),
    )
    addon_runtime.tag_redraw()


def _models_failed(job: Job) -> None:
    MODEL_STATE.update(error=job.error.message if job.error else "the model list could not be read", busy=False)
    addon_runtime.tag_redraw()


def default_label(kind: str, saved: str | None = None) -> str:
    """What an empty choice means, for the panels: the file the film-maker's own workflow was saved with (``saved``),
    else the last choice on the server, else its first model."""
    chosen = MODEL_STATE["choices"].get(kind)
    listed = MODEL_STATE["models"].get(kind) or []
    if saved:
        missing = listed and saved not in listed
        return f"Default: {saved} (the workflow's own{'; not on the server, pick one' if missing else ''})"
    if chosen and chosen in listed:
        return f"Default: {chosen} (your last choice)"
    if listed:
        return f"Default: {listed[0]} (the server's first)"
    return "Default: the server's first"


def lora_stack(entries: Any) -> list[dict[str, Any]]:
    """The LoRA rows of a settings group as a template's ``loras`` value (rows without a name are skipped)."""
    return [{"name": e.name, "strength": e.strength} for e in entries if e.name.strip()]


class MOVIEDIR_PG_model_name(bpy.types.PropertyGroup):
    """One model the server offers (its ``name`` is the file or method name)."""


class MOVIEDIR_PG_lora(bpy.types.PropertyGroup):
    name: bpy.props.StringProperty(name="LoRA", description="A LoRA file on the server")  # type: ignore[valid-type]
    strength: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Strength", description="How strongly the LoRA applies", default=1.0, soft_min=-2.0, soft_max=2.0
    )


class MOVIEDIR_OT_refresh_image_models(bpy.types.Operator):
    bl_idname = "moviedir.refresh_image_models"
    bl_label = "Refresh Models"
    bl_description = "Ask ComfyUI which checkpoints, LoRAs, samplers and schedulers it has"
    bl_options = {"INTERNAL"}  # a lookup, nothing to undo

    def execute(self, context: Any) -> set[str]:
        image_models(refresh=True)
        return {"FINISHED"}


class MOVIEDIR_OT_lora_add(bpy.types.Operator):
    bl_idname = "moviedir.lora_add"
    bl_label = "Add LoRA"
    bl_description = "Add a LoRA to the image's LoRA stack"
    bl_options = {"REGISTER", "UNDO"}  # changes scene settings

    def execute(self, context: Any) -> set[str]:
        context.scene.movie_director_image.loras.add()
        return {"FINISHED"}


class MOVIEDIR_OT_lora_remove(bpy.types.Operator):
    bl_idname = "moviedir.lora_remove"
    bl_label = "Remove LoRA"
    bl_description = "Remove this LoRA from the stack"
    bl_options = {"REGISTER", "UNDO"}  # changes scene settings

    index: bpy.props.IntProperty(default=-1)  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        loras = context.scene.movie_director_image.loras
        if 0 <= self.index < len(loras):
            loras.remove(self.index)
        return {"FINISHED"}


classes = (MOVIEDIR_PG_model_name, MOVIEDIR_PG_lora, MOVIEDIR_OT_refresh_image_models, MOVIEDIR_OT_lora_add,
           MOVIEDIR_OT_lora_remove)  # fmt: skip
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    for prop in COLLECTIONS.values():
        setattr(bpy.types.WindowManager, prop, bpy.props.CollectionProperty(type=MOVIEDIR_PG_model_name))


def unregister() -> None:
    for prop in COLLECTIONS.values():
        delattr(bpy.types.WindowManager, prop)
    _unregister()
    MODEL_STATE.update(updated=0.0, error="", busy=False, models={}, choices={}, server="")
