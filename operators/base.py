"""Blender's conventions for long work, shared by every generation operator.

An operator queues its job and returns at once, from the UI and from a script alike: generation runs in the
background as Blender's own render and bake jobs do, shown in the status bar with a cancel button (panels/statusbar)
and in the sidebar's job list. Nothing listens for Esc: pressing it to stop playback or to cancel a grab can never
cancel a ten-minute video job. The job's handle is left in :data:`addon_runtime.last_handle` (the console API returns
it directly). Where the result lands is data (a Placement, part of the job); the placer registry
(``operators/placement.py``) places it on the main thread when the job finishes, whichever way it was started, even
after a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job
    from ..runtime.placement import Placement


def describe_end(job: Job, what: str) -> tuple[str, str]:
    """(report level, message) for a finished job."""
    if job.state.value == "succeeded":
        return "INFO", f"{what} is ready"
    if job.state.value == "cancelled":
        return "WARNING", f"{what} was cancelled"
    message = job.error.message if job.error else "unknown error"
    return "ERROR", f"{what} failed: {message}"


class JobOperator(bpy.types.Operator):
    """Base class (never registered itself): subclasses implement :meth:`start_job` and, when the result lands in
    Blender, :meth:`placement`.

    Blender frees the operator instance when it returns, long before a job finishes, so everything placing needs is
    captured by :meth:`placement` at submit time as data, and travels with the job.
    """

    bl_options = {"REGISTER"}  # results are placed later by the placer registry, outside the operator's undo step

    what = "The job"

    def start_job(self, context: Any, placement: Placement | None) -> JobHandle:
        """Submit the job, passing ``placement`` on to the runtime (it is stored with the job)."""
        raise NotImplementedError

    def placement(self, context: Any) -> Placement | None:
        """Where the result lands (``operators.placement.placement_for``); None: nothing to place."""
        return None

    def _submit(self, context: Any) -> JobHandle | None:
        from ..runtime.errors import MovieDirectorError  # with the first job: not when the add-on is enabled

        try:
            handle = self.start_job(context, self.placement(context))
        except (MovieDirectorError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return None
        addon_runtime.last_handle = handle
        return handle

    def execute(self, context: Any) -> set[str]:
        handle = self._submit(context)
        if handle is None:
            return {"CANCELLED"}
        addon_runtime.ensure_timer()
        self.report({"INFO"}, f"{self.what} was queued: follow it in the status bar or the Jobs panel")
        return {"FINISHED"}
