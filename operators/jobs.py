"""Operators on jobs and backends: test a connection, cancel a job, clear finished jobs from the list.

Touches bpy (main thread only).
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import StringProperty

from .. import addon_runtime


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
        rt = addon_runtime.current()
        if rt:
            for handle in rt.jobs():
                if handle.done:
                    handle.dispose()
        addon_runtime.tag_redraw()
        return {"FINISHED"}


classes = (MOVIEDIR_OT_test_connection, MOVIEDIR_OT_cancel_job, MOVIEDIR_OT_clear_finished)
register, unregister = bpy.utils.register_classes_factory(classes)
