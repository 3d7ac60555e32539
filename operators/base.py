"""Blender's conventions for long work, shared by every generation operator.

Invoked from the UI, an operator runs modal while its job runs: a window-manager timer keeps the UI fresh, the status
bar shows progress, Esc cancels the job. Called from a script (``execute``), it returns at once and leaves the job's
handle in :data:`addon_runtime.last_handle` (the console API returns it directly). Results are placed by an
``on_complete`` callback, which runs on the main thread whichever way the job was started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime
from ..runtime.errors import MovieDirectorError

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job


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
    """Base class (never registered itself): subclasses implement :meth:`start_job` and :meth:`place_result`.

    ``place_result`` is a classmethod on purpose: Blender frees the operator instance when it returns, long before a
    job finishes, so everything placement needs is captured by :meth:`placement` at submit time as plain data.
    """

    bl_options = {"REGISTER"}  # results are placed by a callback later, outside the operator's undo step

    what = "The job"
    # Plain class attributes, not annotations: Blender reads an operator's annotations as its properties.
    _handle = None
    _timer = None

    def start_job(self, context: Any) -> JobHandle:
        raise NotImplementedError

    def placement(self, context: Any) -> dict[str, Any]:
        """Plain data that :meth:`place_result` needs later (e.g. the frame and channel to put a strip at)."""
        return {"frame": context.scene.frame_current if context.scene else 1}

    @classmethod
    def place_result(cls, scene: Any, job: Job, placement: dict[str, Any]) -> None:
        """Put the finished job's outputs into Blender (main thread). Default: nothing."""

    def _submit(self, context: Any) -> JobHandle | None:
        try:
            handle = self.start_job(context)
        except (MovieDirectorError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return None
        scene_name = context.scene.name if context.scene else ""
        placement = self.placement(context)
        cls = type(self)

        def place(job: Job) -> None:
            scene = bpy.data.scenes.get(scene_name) or bpy.context.scene
            cls.place_result(scene, job, placement)

        handle.on_complete(place)
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
