"""Blender's conventions for long work, shared by every generation operator.

Invoked from the UI, an operator runs modal while its job runs: a window-manager timer keeps the UI fresh, the status
bar shows progress, Esc cancels the job. Called from a script (``execute``), it returns at once and leaves the job's
handle in :data:`addon_runtime.last_handle` (the console API returns it directly). Where the result lands is data (a
Placement, part of the job); the placer registry (``operators/placement.py``) places it on the main thread when the
job finishes, whichever way it was started, even after a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime
from ..runtime.errors import MovieDirectorError

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job
    from ..runtime.placement import Placement


def describe_progress(job: Job) -> str:
    """A status line a film-maker can read: "ComfyUI: sampling 12/30 (40%)"."""
    p = job.progress
    parts = [p.stage or job.state.value]
    if p.step is not None and p.total:
        parts.append(f"{p.step}/{p.total}")
    parts.append(f"({p.fraction:.0%})")
    return f"{job.backend}: {' '.join(parts)}"


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
    # Plain class attributes, not annotations: Blender reads an operator's annotations as its properties.
    _handle = None
    _timer = None

    def start_job(self, context: Any, placement: Placement | None) -> JobHandle:
        """Submit the job, passing ``placement`` on to the runtime (it is stored with the job)."""
        raise NotImplementedError

    def placement(self, context: Any) -> Placement | None:
        """Where the result lands (``operators.placement.placement_for``); None: nothing to place."""
        return None

    def _submit(self, context: Any) -> JobHandle | None:
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
        self.report({"INFO"}, f"{self.what} was queued")
        return {"FINISHED"}

    def invoke(self, context: Any, event: Any) -> set[str]:
        handle = self._submit(context)
        if handle is None:
            return {"CANCELLED"}
        self._handle = handle
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> set[str]:
        handle = self._handle
        if handle is None:
            return {"CANCELLED"}
        if event.type == "ESC" and event.value == "PRESS":
            handle.cancel()
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        addon_runtime.runtime().pump()
        job = handle.status()
        if not handle.done:
            if context.workspace:
                context.workspace.status_text_set(describe_progress(job) + "  (Esc to cancel)")
            return {"PASS_THROUGH"}
        self._cleanup(context)
        level, message = describe_end(job, self.what)
        self.report({level}, message)
        return {"FINISHED"} if level != "ERROR" else {"CANCELLED"}

    def cancel(self, context: Any) -> None:
        if self._handle is not None and not self._handle.done:
            self._handle.cancel()
        self._cleanup(context)

    def _cleanup(self, context: Any) -> None:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        if context.workspace:
            context.workspace.status_text_set(None)
