"""The "Movie Director" tab in the Sequencer's sidebar: backend connection states, the Image panel with the ComfyUI
server's model pickers (also drawn by the Direct panel), and the job list.

Touches bpy (main thread only). Draw code reads cached state only: no network, no waiting, no runtime start-up.
"""

from __future__ import annotations

import time
from typing import Any

import bpy

from .. import addon_runtime
from ..clients import registry
from ..operators import image_models
from ..operators.generate_image import saved_checkpoint, takes_mask, template_params

STATE_ICONS = {
    "connected": "CHECKMARK",
    "connecting": "SORTTIME",
    "reconnecting": "FILE_REFRESH",
    "disconnected": "ERROR",
    "offline": "INTERNET_OFFLINE",
}
JOB_ICONS = {
    "queued": "SORTTIME",
    "submitted": "EXPORT",
    "running": "PLAY",
    "succeeded": "CHECKMARK",
    "failed": "ERROR",
    "cancelled": "CANCEL",
}


def progress_text(job: Any) -> str:
    """What a progress bar says: "sampling 12/30, 2 min left", "inference 4/8", or the job's state."""
    from ..runtime.eta import format_eta

    p = job.progress
    text = p.stage or job.state.value
    if p.step is not None and p.total:
        text += f" {p.step}/{p.total}"
    if p.eta_s is not None:
        text += f", {format_eta(p.eta_s)} left"
    return text


def draw_server_list(
    layout: Any,
    settings: Any,
    prop: str,
    wm: Any,
    collection: str,
    refresh_op: str,
    state: dict[str, Any],
    *,
    label: str,
    noun: str,
    asking: str,
    empty: str,
) -> None:
    """A list the server offers (models, voices): the choice, a refresh button and where the cached list stands.
    Reads cached state only: the refresh operator does the asking, in the background."""
    row = layout.row(align=True)
    row.prop_search(settings, prop, wm, collection, text=label)
    row.operator(refresh_op, text="", icon="FILE_REFRESH")
    if state["busy"]:
        layout.label(text=asking, icon="SORTTIME")
    elif state["error"]:
        layout.label(text=str(state["error"])[:120], icon="ERROR")
    elif state["updated"]:
        minutes = int((time.time() - state["updated"]) // 60)
        age = "just now" if minutes < 1 else f"{minutes} min ago"
        layout.label(text=f"{len(getattr(wm, collection))} {noun}, listed {age}", icon="INFO")
    else:
        layout.label(text=empty, icon="INFO")


def draw_checkpoint(layout: Any, settings: Any, wm: Any, saved: str | None = None) -> None:
    """The checkpoint picker with its refresh button, and what an empty choice means (``saved``: the checkpoint the
    chosen workflow was saved with, for a film-maker's own)."""
    draw_server_list(
        layout, settings, "checkpoint", wm, image_models.COLLECTIONS["checkpoint"], "moviedir.refresh_image_models",
        image_models.MODEL_STATE, label="Checkpoint", noun="checkpoints", asking="Asking ComfyUI for its models...",
        empty="Press refresh to list the server's models",
    )  # fmt: skip
    if not settings.checkpoint.strip():
        layout.label(text=image_models.default_label("checkpoint", saved))


def draw_image_models(layout: Any, settings: Any, wm: Any, params: set[str], saved: str | None = None) -> None:
    """Pickers for the model parameters the chosen template has (``params``: its parameter names; ``saved``: the
    checkpoint its workflow was saved with, for a film-maker's own)."""
    if "checkpoint" in params:
        draw_checkpoint(layout, settings, wm, saved)
    for prop in ("sampler", "scheduler"):
        if prop in params:
            layout.prop_search(settings, prop, wm, image_models.COLLECTIONS[prop])
    if "loras" not in params:
        return
    box = layout.box()
    row = box.row()
    row.label(text="LoRAs", icon="MODIFIER")
    row.operator("moviedir.lora_add", text="", icon="ADD")
    for i, lora in enumerate(settings.loras):
        row = box.row(align=True)
        row.prop_search(lora, "name", wm, image_models.COLLECTIONS["lora"], text="")
        row.prop(lora, "strength", text="")
        row.operator("moviedir.lora_remove", text="", icon="X").index = i


def draw_mask(layout: Any, settings: Any) -> None:
    """The inpainting mask: the input's own transparency, or a painted Blender image."""
    layout.prop(settings, "mask_source")
    if settings.mask_source == "IMAGE":
        layout.prop(settings, "mask_image")


class MovieDirectorPanel:
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Movie Director"


class MOVIEDIR_PT_backends(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_backends"
    bl_label = "Servers"

    def draw(self, context: Any) -> None:
        layout = self.layout
        rt = addon_runtime.current()
        states = rt.backend_states if rt else {}
        for info in registry.visible():
            state, message = states.get(info.name, ("unknown", "not tested yet"))
            row = layout.row(align=True)
            row.label(text=f"{info.label}: {state}", icon=STATE_ICONS.get(state, "QUESTION"))
            paused = bool(rt and rt.is_paused(info.name))
            pause = row.operator("moviedir.pause_backend", text="", icon="PLAY" if paused else "PAUSE", depress=paused)
            pause.backend = info.name
            row.operator("moviedir.test_connection", text="", icon="FILE_REFRESH").backend = info.name
            if paused:
                layout.label(text="Queue held: queued jobs wait until you resume", icon="PAUSE")
            if message and state != "connected":
                layout.label(text=message[:120])


class MOVIEDIR_PT_jobs(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_jobs"
    bl_label = "Jobs"

    def draw(self, context: Any) -> None:
        layout = self.layout
        rt = addon_runtime.current()
        handles = rt.jobs() if rt else []
        if not handles:
            layout.label(text="No jobs yet")
            return
        for handle in reversed(handles[-20:]):
            draw_job(layout.box(), handle)
        row = layout.row(align=True)
        row.operator("moviedir.clear_finished", icon="TRASH")
        row.operator("moviedir.open_output_folder", text="", icon="FILE_FOLDER").job_id = ""


def draw_job(box: Any, handle: Any) -> None:
    """One job: what it is, where it stands, and what can be done with it now."""
    from ..operators import placement
    from ..operators.job_settings import can_copy

    job, done = handle.status(), handle.done
    waiting = placement.PENDING.get(job.id)
    if waiting is not None and waiting.placement is not None:
        box.label(text=f"Result for {bpy.path.basename(waiting.placement.blend_file)}", icon="FILE_BLEND")
        row = box.row(align=True)
        row.operator("moviedir.place_here", icon="IMPORT").job_id = job.id
        row.operator("moviedir.open_result_file", icon="FILEBROWSER").job_id = job.id
    if handle.placement_error:
        box.label(text=handle.placement_error[:120], icon="ERROR")

    row = box.row(align=True)
    title = job.request.get("title") or job.request.get("prompt") or job.kind
    row.label(text=f"{job.backend}: {str(title)[:40]}", icon=JOB_ICONS.get(job.state.value, "DOT"))
    if job.state.value == "queued":
        for direction, icon in (("UP", "TRIA_UP"), ("DOWN", "TRIA_DOWN")):
            op = row.operator("moviedir.job_priority", text="", icon=icon)
            op.job_id, op.direction = job.id, direction
    if not done:
        row.operator("moviedir.cancel_job", text="", icon="X").job_id = job.id
        box.progress(factor=job.progress.fraction, type="BAR", text=progress_text(job))
        if job.log:
            box.label(text=job.log[-1][:100])
        return
    if job.state.value != "succeeded":
        row.operator("moviedir.retry_job", text="", icon="FILE_REFRESH").job_id = job.id
    if can_copy(job.backend, job.kind):
        row.operator("moviedir.use_job_settings", text="", icon="PASTEDOWN").job_id = job.id
    if job.outputs.files:
        row.operator("moviedir.open_output_folder", text="", icon="FILE_FOLDER").job_id = job.id
    if job.error is not None:
        box.label(text=job.error.message[:120])


class MOVIEDIR_PT_image(MovieDirectorPanel, bpy.types.Panel):
    bl_idname = "MOVIEDIR_PT_image"
    bl_label = "Image (ComfyUI)"

    def draw(self, context: Any) -> None:
        layout = self.layout
        settings = getattr(context.scene, "movie_director_image", None)
        if settings is None:
            return
        layout.prop(settings, "template")
        layout.prop(settings, "prompt")
        layout.prop(settings, "negative_prompt")
        row = layout.row(align=True)
        row.prop(settings, "width")
        row.prop(settings, "height")
        layout.prop(settings, "preset")
        if settings.preset == "CUSTOM":
            row = layout.row(align=True)
            row.prop(settings, "steps")
            row.prop(settings, "cfg")
        layout.prop(settings, "seed")
        draw_image_models(
            layout, settings, context.window_manager, template_params(settings.template),
            saved_checkpoint(settings.template),
        )  # fmt: skip
        layout.prop(settings, "input_source")
        if settings.input_source == "IMAGE":
            layout.prop(settings, "input_image")
        if settings.input_source != "NONE" and takes_mask(settings.template):
            draw_mask(layout, settings)
        row = layout.row(align=True)
        row.operator("moviedir.generate_image", icon="IMAGE_DATA")
        row = layout.row(align=True)
        row.prop(settings, "variations")
        if settings.variations > 1:
            row.prop(settings, "variation_layout", text="")
            layout.operator("moviedir.generate_variations", text=f"Generate {settings.variations}", icon="IMGDISPLAY")
        preview = bpy.data.images.get("Movie Director Preview")
        if preview is not None and preview.preview is not None:
            layout.template_icon(icon_value=preview.preview.icon_id, scale=6.0)


classes = (MOVIEDIR_PT_backends, MOVIEDIR_PT_image, MOVIEDIR_PT_jobs)
register, unregister = bpy.utils.register_classes_factory(classes)
