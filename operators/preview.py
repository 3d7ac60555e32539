"""The sidebar's live preview: the newest sampler preview of one job, in one Blender image loaded from memory.

Touches bpy (main thread only). Many jobs may preview at once (16 at 50 Hz is 800 previews a second) while the pump
must stay well inside a frame, so: one job is on display at a time (it keeps the display until it ends or sends no
preview for QUIET_S), the image changes at most PREVIEW_HZ times a second and at most once per pump, and the bytes
are packed into the image from memory (``Image.pack(data=...)``, then ``buffers_free`` so Blender decodes the new
bytes when the sidebar next draws): nothing is written to disk on the main thread.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import bpy

from .. import addon_runtime

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job

#: The Blender image the sidebar draws.
PREVIEW_IMAGE = "Movie Director Preview"
#: How often the preview may change: what the eye needs to follow sampling, far below the 800/s jobs can send.
PREVIEW_HZ = 10.0
#: A job on display that has sent no preview for this long yields the display to another job.
QUIET_S = 1.0


class Display:
    """Which job is on display and what the image holds (main thread only). A plain class, not a dataclass: this
    module is imported when the add-on is enabled, and a dataclass costs milliseconds to build."""

    def __init__(self) -> None:
        self.job_id: str | None = None
        self.last_seen = 0.0  # when the job on display last sent a preview (monotonic)
        self.shown_at = float("-inf")  # when the image last changed
        self.shown: bytes | None = None  # the bytes in the image
        self.shown_job: str | None = None  # the job they came from
        self.pending: bytes | None = None  # newer bytes held back by the rate limit
        self.fresh = False  # the image changed in the pump running now
        self.updates = 0  # how many times the image changed (the tests count them)


display = Display()


def reset() -> None:
    """Forget the job on display (the add-on is being disabled: its jobs end without their last callbacks)."""
    global display
    display = Display()


def watch_previews(handle: JobHandle) -> JobHandle:
    """Show ``handle``'s previews in the sidebar (when its job is the one on display)."""
    return handle.on_progress(show_preview).on_done(preview_done)


def show_preview(job: Job) -> None:
    """``on_progress`` callback: take the job's newest preview if the job is on display (or may take the display)."""
    data = job.progress.preview
    if not data:
        return
    now = time.monotonic()
    d = display
    if d.job_id != job.id:
        if d.job_id is not None and now - d.last_seen < QUIET_S:
            return  # another job is on display
        d.job_id = job.id
    d.last_seen = now
    if data is d.shown:  # the newest preview is on screen: an older one held back must not replace it later
        d.pending = None
        return
    d.pending = data
    if now - d.shown_at >= 1.0 / PREVIEW_HZ and not d.fresh:
        flush()


def preview_done(job: Job) -> None:
    """``on_done`` callback: the job on display shows its last preview and frees the display for the next job."""
    d = display
    if d.job_id == job.id:
        # The final snapshot's preview is the job's newest (its last progress may have been folded into the end):
        # it replaces whatever the rate limit held back, and when it is already on screen nothing older may follow.
        data = job.progress.preview
        if data:
            d.pending = None if data is d.shown else data
        job_id = job.id
        if d.pending is not None and d.fresh and _next_pump(lambda: _close(job_id)):
            # The image changed in this pump already (a log line delivered an earlier preview of the job): the last
            # one goes in first thing next pump, and the display stays this job's until then.
            d.last_seen = time.monotonic()
            return
        _close(job_id)


def _close(job_id: str) -> None:
    """The ended job ``job_id`` shows its last preview and frees the display (unless it has been reset since)."""
    d = display
    if d.job_id == job_id:
        flush()
        d.job_id = None


def flush() -> None:
    """Put the held-back preview into the image now."""
    d = display
    data, d.pending = d.pending, None
    if data is None:
        return
    d.shown, d.shown_job, d.shown_at = data, d.job_id, time.monotonic()
    d.updates += 1
    if not d.fresh:
        d.fresh = _next_pump(_pump_passed)
    load_into_image(data)


def _pump_passed() -> None:
    display.fresh = False


def _next_pump(fn: Callable[[], object]) -> bool:
    """Run ``fn`` first thing in the runtime's next pump; False when there is no runtime to pump it."""
    rt = addon_runtime.current()
    if rt is None:
        return False
    rt.outbox.later(fn)
    return True


def load_into_image(data: bytes) -> None:
    """Replace the preview image's content with ``data`` (PNG or JPEG bytes; Blender reads the format from them)."""
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is not None and image.packed_file is not None and image.source == "FILE":
        image.pack(data=data, data_len=len(data))
        image.buffers_free()  # decoded again, from the new bytes, at the next draw
    else:
        if image is not None:  # a user's image of that name, or one from an older version: replace it
            bpy.data.images.remove(image)
        image = bpy.data.images.new(PREVIEW_IMAGE, 1, 1)
        image.pack(data=data, data_len=len(data))
        image.source = "FILE"
        image.preview_ensure()
    if image.preview is not None:
        image.preview.reload()
