"""The "Movie Director" tab in the Sequencer's sidebar: backend connection states and the job list.

Touches bpy (main thread only). Draw code reads cached state only: no network, no waiting, no runtime start-up.
"""

from __future__ import annotations

import time
from typing import Any

import bpy

from .. import addon_runtime
from ..clients import registry

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
    """What a progress bar says: "sampling 12/30", "inference 4/8", or the job's state."""
    p = job.progress
    text = p.stage or job.state.value
    if p.step is not None and p.total:
        text += f" {p.step}/{p.total}"
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
            row.operator("moviedir.test_connection", text="", icon="FILE_REFRESH").backend = info.name
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
            job = handle.status()
            box = layout.box()
            row = box.row(align=True)
            title = job.request.get("title") or job.request.get("prompt") or job.kind
            row.label(text=f"{job.backend}: {str(title)[:40]}", icon=JOB_ICONS.get(job.state.value, "DOT"))
            if not handle.done:
                row.operator("moviedir.cancel_job", text="", icon="X").job_id = job.id
                box.progress(factor=job.progress.fraction, type="BAR", text=progress_text(job))
                if job.log:
                    box.label(text=job.log[-1][:100])
            elif job.error is not None:
                box.label(text=job.error.message[:120])
        layout.operator("moviedir.clear_finished", icon="TRASH")


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
        layout.prop(settings, "checkpoint")
        layout.prop(settings, "input_source")
        if settings.input_source == "IMAGE":
            layout.prop(settings, "input_image")
        layout.operator("moviedir.generate_image", icon="IMAGE_DATA")
        preview = bpy.data.images.get("Movie Director Preview")
        if preview is not None and preview.preview is not None:
            layout.template_icon(icon_value=preview.preview.icon_id, scale=6.0)


classes = (MOVIEDIR_PT_backends, MOVIEDIR_PT_image, MOVIEDIR_PT_jobs)
register, unregister = bpy.utils.register_classes_factory(classes)
