"""What a backend client may do to the job it runs: report progress, log lines, mark it running.

Plain Python: this module never imports bpy. A :class:`JobContext` lives on the loop thread; every report is posted to
the outbox, where the pump coalesces progress to the newest per job.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import bridge
from .jobs import Job, JobState, Progress

if TYPE_CHECKING:
    from .core import Runtime, _Record

#: Progress stops short of 1.0 until the job has its outputs: a full bar means the files are there.
MAX_RUNNING_FRACTION = 0.99


class JobContext:
    def __init__(self, runtime: Runtime, record: _Record) -> None:
        self._rt = runtime
        self._rec = record

    @property
    def job(self) -> Job:
        return self._rec.job

    @property
    def output_dir(self) -> Path:
        """The folder this job's files go to (created on first use); nothing may be written outside it."""
        path = self._rt.output_root / self.job.backend / self.job.id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def mark_running(self) -> None:
        job = self.job
        if job.state is JobState.SUBMITTED:
            self._rt._move(self._rec, JobState.RUNNING)
            self._rt.outbox.post(bridge.PROGRESS, self._rec.handle, None)
            self._rt._notice("job_started", job)

    def mark_resubmitted(self, remote_id: str | None = None) -> None:
        """The server lost the job and it was sent again."""
        job = self.job
        if remote_id:
            job.remote_id = remote_id
        if job.state is JobState.RUNNING:
            self._rt._move(self._rec, JobState.SUBMITTED, "resubmitted")
        self._rt.outbox.post(bridge.PROGRESS, self._rec.handle, None)

    def report_progress(
        self,
        fraction: float | None = None,
        *,
        stage: str | None = None,
        message: str | None = None,
        step: int | None = None,
        total: int | None = None,
        eta_s: float | None = None,
        preview: bytes | None = None,
        preview_media_type: str | None = None,
    ) -> None:
        job = self.job
        old = job.progress
        values: dict[str, Any] = {
            "stage": old.stage if stage is None else stage,
            "fraction": old.fraction if fraction is None else min(max(fraction, 0.0), MAX_RUNNING_FRACTION),
            "message": old.message if message is None else message,
            "step": old.step if step is None else step,
            "total": old.total if total is None else total,
            "eta_s": eta_s,
            "preview": old.preview if preview is None else preview,
            "preview_media_type": old.preview_media_type if preview is None else preview_media_type,
        }
        job.progress = Progress.model_construct(**values)
        self._rt.outbox.post(bridge.PROGRESS, self._rec.handle, None)

    def log(self, line: str) -> None:
        """A server log line: kept on the job and handed to ``on_log`` callbacks."""
        job = self.job
        job.log.append(line)
        if len(job.log) > 500:
            del job.log[:-500]
        self._rt.outbox.post(bridge.LOG, self._rec.handle, line)

    def emit_text(self, delta: str) -> None:
        """A piece of streamed text (an LLM token): delivered to ``on_text`` callbacks in order, never coalesced."""
        self._rt.outbox.post(bridge.TEXT, self._rec.handle, delta)
