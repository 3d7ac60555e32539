"""Operators on jobs and backends: test a connection, cancel one job or all, pause a backend's queue, move a queued
job up or down, retry a job, copy its settings back into its panel, open its output folder, clear finished jobs.

Touches bpy (main thread only).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import EnumProperty, StringProperty

from .. import addon_runtime

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle


def _handle(job_id: str) -> JobHandle:
    rt = addon_runtime.current()
    handle = rt.handle(job_id) if rt else None
    if handle is None:
        raise ValueError(f"The job {job_id!r} is no longer known")
    return handle


def cancel_all() -> int:
    """Cancel every live job; returns how many were asked to stop."""
    rt = addon_runtime.current()
    live = [h for h in rt.jobs() if not h.done] if rt else []
    for handle in live:
        handle.cancel()
    return len(live)


def clear_finished() -> int:
    """Forget ended jobs in the job list; returns how many went."""
    rt = addon_runtime.current()
    done = [h for h in rt.jobs() if h.done] if rt else []
    for handle in done:
        handle.dispose()
    addon_runtime.tag_redraw()
    return len(done)


def move_job(job_id: str, direction: str) -> int:
    """Move a queued job one step ``"UP"`` (starts sooner) or ``"DOWN"``; returns its new priority."""
    job = _handle(job_id).status()
    if job.state.value != "queued":
        raise ValueError("Only a queued job can move; this one has started")
    if direction not in ("UP", "DOWN"):
        raise ValueError(f"direction must be UP or DOWN, not {direction!r}")
    priority = job.priority + (1 if direction == "UP" else -1)
    addon_runtime.runtime().set_priority(job.id, priority)
    addon_runtime.ensure_timer()
    return priority


def retry_job(job_id: str) -> JobHandle:
    """Run a job's request again as a new job; its result lands where the first one was to land."""
    job = _handle(job_id).status()
    handle = addon_runtime.runtime().submit(
        job.backend, job.kind, job.request, priority=job.priority, placement=job.placement
    )
    addon_runtime.ensure_timer()
    return handle


def use_settings(job_id: str, scene: Any = None) -> tuple[list[str], list[str]]:
    """Copy a job's settings back into its panel: (settings copied, settings the panel could not hold)."""
    from .job_settings import copy_settings

    job = _handle(job_id).status()
    return copy_settings(scene or bpy.context.scene, job.backend, job.kind, job.request)


class MOVIEDIR_OT_test_connection(bpy.types.Operator):
    bl_idname = "moviedir.test_connection"
    bl_label = "Test Connection"
    bl_description = "Check that the backend's server answers (runs in the background)"
    bl_options = {"INTERNAL"}  # a UI action, not an edit: nothing to undo

    backend: StringProperty(name="Backend")  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        rt = addon_runtime.runtime()
        if self.backend not in rt.backends:
            self.report({"ERROR"}, f"Unknown backend {self.backend!r}")
            return {"CANCELLED"}
        # The answer arrives as a backend_state event; the sidebar shows it.
        rt.check_health(self.backend)
        self.report({"INFO"}, f"Testing the {self.backend} connection…")
        return {"FINISHED"}


class MOVIEDIR_OT_cancel_job(bpy.types.Operator):
    bl_idname = "moviedir.cancel_job"
    bl_label = "Cancel Job"
    bl_description = "Stop this job (the server is asked to stop its work too)"
    bl_options = {"INTERNAL"}  # acts on background work, not on Blender data

    job_id: StringProperty(name="Job")  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        rt = addon_runtime.current()
        handle = rt.handle(self.job_id) if rt else None
        if handle is None:
            self.report({"WARNING"}, "That job is no longer known")
            return {"CANCELLED"}
        handle.cancel()
        self.report({"INFO"}, "Cancelling the job")
        return {"FINISHED"}


class MOVIEDIR_OT_clear_finished(bpy.types.Operator):
    bl_idname = "moviedir.clear_finished"
    bl_label = "Clear Finished"
    bl_description = "Remove finished, failed and cancelled jobs from the list"
    bl_options = {"INTERNAL"}  # only tidies the sidebar

    def execute(self, context: Any) -> set[str]:
        clear_finished()
        return {"FINISHED"}


class MOVIEDIR_OT_cancel_all(bpy.types.Operator):
    bl_idname = "moviedir.cancel_all"
    bl_label = "Cancel All Jobs"
    bl_description = "Stop every running and queued Movie Director job (servers are asked to stop their work too)"
    bl_options = {"INTERNAL"}  # acts on background work, not on Blender data

    def execute(self, context: Any) -> set[str]:
        count = cancel_all()
        self.report({"INFO"}, f"Cancelling {count} job(s)" if count else "No job is running")
        return {"FINISHED"}


class MOVIEDIR_OT_pause_backend(bpy.types.Operator):
    bl_idname = "moviedir.pause_backend"
    bl_label = "Pause / Resume"
    bl_description = "Hold this server's queued jobs (running ones carry on), or let them start again"
    bl_options = {"INTERNAL"}  # acts on background work

    backend: StringProperty(name="Backend")  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        rt = addon_runtime.runtime()
        if self.backend not in rt.backends:
            self.report({"ERROR"}, f"Unknown backend {self.backend!r}")
            return {"CANCELLED"}
        if rt.is_paused(self.backend):
            rt.resume(self.backend)
            self.report({"INFO"}, f"{self.backend}: queued jobs start again")
        else:
            rt.pause(self.backend)
            self.report({"INFO"}, f"{self.backend}: queued jobs are held")
        addon_runtime.tag_redraw()
        return {"FINISHED"}


class MOVIEDIR_OT_job_priority(bpy.types.Operator):
    bl_idname = "moviedir.job_priority"
    bl_label = "Move Job"
    bl_description = "Move a queued job up (starts sooner) or down its server's queue"
    bl_options = {"INTERNAL"}  # acts on background work

    job_id: StringProperty(name="Job")  # type: ignore[valid-type]
    direction: EnumProperty(items=[("UP", "Up", "Start sooner"), ("DOWN", "Down", "Start later")])  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        try:
            move_job(self.job_id, self.direction)
        except ValueError as exc:
            self.report({"WARNING"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class MOVIEDIR_OT_retry_job(bpy.types.Operator):
    bl_idname = "moviedir.retry_job"
    bl_label = "Retry Job"
    bl_description = "Run this job's request again as a new job; its result lands where the first one was to land"
    bl_options = {"INTERNAL"}  # the new result is placed later, as its own undo step

    job_id: StringProperty(name="Job")  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        try:
            addon_runtime.last_handle = retry_job(self.job_id)
        except ValueError as exc:
            self.report({"WARNING"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, "The job was queued again")
        return {"FINISHED"}


class MOVIEDIR_OT_use_job_settings(bpy.types.Operator):
    bl_idname = "moviedir.use_job_settings"
    bl_label = "Use These Settings"
    bl_description = "Copy this job's prompt and settings back into the panel it came from"
    bl_options = {"REGISTER", "UNDO"}  # it edits the scene's settings: undoable like any edit

    job_id: StringProperty(name="Job")  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        try:
            copied, refused = use_settings(self.job_id, context.scene)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        message = f"Copied {', '.join(copied) or 'nothing'}"
        if refused:
            message += f"; the panel cannot hold {', '.join(refused)}"
        self.report({"WARNING" if refused else "INFO"}, message)
        return {"FINISHED"}


class MOVIEDIR_OT_open_output_folder(bpy.types.Operator):
    bl_idname = "moviedir.open_output_folder"
    bl_label = "Open Output Folder"
    bl_description = "Show the folder generated files are saved to (one job's folder when a job is given)"
    bl_options = {"INTERNAL"}  # opens a file browser; changes nothing

    job_id: StringProperty(name="Job")  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        folder = job_folder(self.job_id)
        folder.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.path_open(filepath=str(folder))
        return {"FINISHED"}


class MOVIEDIR_OT_place_here(bpy.types.Operator):
    bl_idname = "moviedir.place_here"
    bl_label = "Place Here"
    bl_description = "Put this result, asked for from another file, into the open file's current scene"
    bl_options = {"INTERNAL"}  # placing is its own undo step

    job_id: StringProperty(name="Job")  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        from .placement import PENDING, place_into

        job = PENDING.get(self.job_id)
        if job is None:
            self.report({"WARNING"}, "That result is no longer waiting to be placed")
            return {"CANCELLED"}
        rt = addon_runtime.current()
        handle = rt.handle(job.id) if rt else None
        before = handle.placement_error if handle else ""
        place_into(job, context.scene)
        problem = handle.placement_error if handle else ""
        if problem and problem != before:
            self.report({"ERROR"}, problem)
            return {"CANCELLED"}
        self.report({"INFO"}, "The result was placed in this file")
        return {"FINISHED"}


class MOVIEDIR_OT_open_result_file(bpy.types.Operator):
    bl_idname = "moviedir.open_result_file"
    bl_label = "Open File"
    bl_description = "Open the .blend this result was asked from (it is placed there as soon as the file is open)"
    bl_options = {"INTERNAL"}  # opens another file

    job_id: StringProperty(name="Job")  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        from .placement import PENDING

        job = PENDING.get(self.job_id)
        if job is None or job.placement is None:
            self.report({"WARNING"}, "That result is no longer waiting to be placed")
            return {"CANCELLED"}
        path = job.placement.blend_file
        if not os.path.isfile(path):
            self.report({"ERROR"}, f"{path} is no longer there: use Place Here instead")
            return {"CANCELLED"}
        bpy.ops.wm.open_mainfile("INVOKE_DEFAULT" if context.window else "EXEC_DEFAULT", filepath=path)
        return {"FINISHED"}


def job_folder(job_id: str = "") -> Any:
    """A job's output folder (the folder of its first file), or the output root."""
    from pathlib import Path

    rt = addon_runtime.current()
    handle = rt.handle(job_id) if rt and job_id else None
    if handle is not None:
        files = handle.status().outputs.files
        if files:
            return Path(files[0].path).parent
    return rt.output_root if rt else addon_runtime.output_root()


classes = (
    MOVIEDIR_OT_test_connection,
    MOVIEDIR_OT_cancel_job,
    MOVIEDIR_OT_clear_finished,
    MOVIEDIR_OT_cancel_all,
    MOVIEDIR_OT_pause_backend,
    MOVIEDIR_OT_job_priority,
    MOVIEDIR_OT_retry_job,
    MOVIEDIR_OT_use_job_settings,
    MOVIEDIR_OT_open_output_folder,
    MOVIEDIR_OT_place_here,
    MOVIEDIR_OT_open_result_file,
)
register, unregister = bpy.utils.register_classes_factory(classes)
