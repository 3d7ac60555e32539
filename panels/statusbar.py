"""Running jobs in Blender's status bar, as Blender shows its own render and bake jobs: overall progress, the time
left, and one button that cancels them; after a job ends, how it ended, for a few seconds.

Touches bpy (main thread only). Draw code reads the handles' latest snapshots only: no network, no waiting.
"""

from __future__ import annotations

import time
from typing import Any

import bpy

from .. import addon_runtime

#: How long the status bar keeps saying how the last job ended.
LAST_MESSAGE_SECONDS = 8.0
_last: list[tuple[float, str, str]] = []  # (when, icon, text) of the last job that ended


def end_message(job: Any) -> tuple[bool, str]:
    """(failed, words) for a finished job: "ComfyUI image is ready", "… failed: <the server's reason>"."""
    what = f"{job.backend} {job.kind}"
    if job.state.value == "succeeded":
        return False, f"{what} is ready"
    if job.state.value == "cancelled":
        return False, f"{what} was cancelled"
    return True, f"{what} failed: {job.error.message if job.error else 'unknown error'}"


def _on_event(event: Any) -> None:
    """Remember how the last job ended (the runtime's job_finished event, on the main thread)."""
    if event.job is not None:
        failed, text = end_message(event.job)
        _last[:] = [(time.monotonic(), "ERROR" if failed else "CHECKMARK", text[:120])]


def _attach(rt: Any) -> Any:
    """The runtime start hook: hear every job that ends."""
    return rt.subscribe(_on_event, kinds=("job_finished",))


def draw_status(self: Any, context: Any) -> None:
    """Appended to ``STATUSBAR_HT_header``: nothing at all while no job is live and nothing just ended."""
    rt = addon_runtime.current()
    summary = None
    if rt is not None:  # a runtime exists: its modules (and pydantic) are loaded, unlike when the add-on is enabled
        from ..runtime.eta import overall

        summary = overall(h.status() for h in rt.jobs())
    layout = self.layout
    if summary is not None:
        row = layout.row(align=True)
        row.progress(factor=summary.fraction, type="BAR", text=summary.text)
        row.operator("moviedir.cancel_all", text="", icon="X", emboss=False)
    elif _last and time.monotonic() - _last[0][0] < LAST_MESSAGE_SECONDS:
        _, icon, text = _last[0]
        layout.label(text=text, icon=icon)


def register() -> None:
    bpy.types.STATUSBAR_HT_header.append(draw_status)
    addon_runtime.add_start_hook(_attach)


def unregister() -> None:
    addon_runtime.remove_start_hook(_attach)
    bpy.types.STATUSBAR_HT_header.remove(draw_status)
    _last.clear()
