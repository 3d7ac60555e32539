"""gradio_client's status updates (queue position, ``gr.Progress`` bars, ``gr.Info`` log lines) onto a job's context.

Plain Python: this module never imports bpy. ``Job.status()`` keeps only the newest update, so a log line followed
at once by a progress tick would be lost; the job's update queue keeps every one and is drained here instead (it is
an unbounded ``asyncio.Queue`` filled from gradio_client's thread: ``get_nowait`` only touches its deque).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gradio_client.utils import Status, StatusUpdate

from ...runtime.errors import excerpt

if TYPE_CHECKING:
    from ...runtime.context import JobContext

_RUNNING = {Status.PROCESSING, Status.PROGRESS, Status.ITERATING, Status.LOG}
MAX_LOG_LINE = 500


def drain(job: Any, last: StatusUpdate | None) -> list[StatusUpdate]:
    """Every status update since the last drain (the newest one only, when this gradio_client keeps no queue)."""
    queue = getattr(getattr(job, "communicator", None), "updates", None)
    if queue is None:
        status = job.status()
        return [] if status is last else [status]
    updates = []
    while True:
        try:
            item = queue.get_nowait()
        except Exception:  # asyncio.QueueEmpty, or QueueShutDown (Python 3.13)
            break
        if isinstance(item, StatusUpdate):
            updates.append(item)
    return updates


class StatusMapper:
    """Turns updates into ``ctx.report_progress`` / ``ctx.log`` / ``ctx.mark_running`` calls (loop thread only)."""

    def __init__(self, ctx: JobContext | None, label: str = "") -> None:
        self.ctx = ctx
        self.label = label
        self.running = False
        self.last: StatusUpdate | None = None

    def apply(self, updates: list[StatusUpdate]) -> None:
        for update in updates:
            self.last = update
            if update.code in _RUNNING:
                self.running = True
            ctx = self.ctx
            if ctx is None:
                continue
            if self.running:
                ctx.mark_running()
            if update.log:
                text, level = update.log
                line = excerpt(str(text), MAX_LOG_LINE)  # redacted, then cut
                ctx.log(line if str(level).lower() == "info" else f"{str(level).upper()}: {line}")
            if update.code is Status.IN_QUEUE and not self.running:
                ahead = update.rank if isinstance(update.rank, int) else None
                message = "waiting in the app's queue" + (f" ({ahead} ahead)" if ahead else "")
                eta = float(update.eta) if isinstance(update.eta, (int, float)) else None
                ctx.report_progress(stage="queued", message=message, eta_s=eta)
            elif update.code is Status.PROCESSING and not update.progress_data:
                ctx.report_progress(stage="running", message=self.label)
            if update.progress_data:
                self._progress(ctx, update.progress_data[-1])

    def _progress(self, ctx: JobContext, unit: Any) -> None:
        """The innermost bar: ``tqdm`` steps (index/length) or a plain fraction (``progress(0.5, desc=...)``)."""
        index = unit.index if isinstance(unit.index, int) and unit.index >= 0 else None
        length = unit.length if isinstance(unit.length, int) and unit.length > 0 else None
        fraction = None
        if isinstance(unit.progress, (int, float)) and 0.0 <= unit.progress <= 1.0:
            fraction = float(unit.progress)
        elif index is not None and length is not None:
            fraction = min(index / length, 1.0)
        stage = excerpt(str(unit.desc or "running"), 80)
        message = f"{stage} {index}/{length}" if index is not None and length is not None else stage
        ctx.report_progress(fraction, stage=stage, message=message, step=index, total=length)
