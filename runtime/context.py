"""What a backend client may do to the job it runs: report progress, log lines, mark it running.

Plain Python: this module never imports bpy. A :class:`JobContext` lives on the loop thread and calls the engine only
through the public :class:`JobHost` interface; every report is posted to the outbox as a frozen snapshot, where the
pump coalesces progress to the newest per job. Text a server sends (log lines, progress messages) is scrubbed of
registered secrets before it reaches the job, its callbacks or the journal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .errors import redact
from .eta import StepClock
from .jobs import Job, JobState, Progress
from .outbox import Logged, Message, Progressed, Streamed
from .record import JobRecord

#: Progress stops short of 1.0 until the job has its outputs: a full bar means the files are there.
MAX_RUNNING_FRACTION = 0.99
#: Log lines kept on a running job.
KEEP_LOG = 500


class JobHost(Protocol):
    """The engine's side of a job context (implemented by :class:`~runtime.engine.Engine`)."""

    def job_folder(self, record: JobRecord) -> Path: ...
    def move(self, record: JobRecord, state: JobState, note: str = "") -> None: ...
    def post(self, message: Message) -> None: ...
    def notice(self, kind: str, job: Job) -> None: ...


class JobContext:
    def __init__(self, host: JobHost, record: JobRecord) -> None:
        self._host = host
        self._rec = record
        self._clock = StepClock()

    @property
    def job(self) -> Job:
        return self._rec.job

    @property
    def output_dir(self) -> Path:
        """The folder this job's files go to (created once, on first use); nothing may be written outside it."""
        return self._rec.output_dir or self._host.job_folder(self._rec)

    def _changed(self) -> None:
        self._host.post(Progressed(self._rec.handle, self._rec.job.snapshot()))

    def mark_running(self) -> None:
        job = self.job
        if job.state is JobState.SUBMITTED:
            self._host.move(self._rec, JobState.RUNNING)
            self._changed()
            self._host.notice("job_started", job)

    def mark_resubmitted(self, remote_id: str | None = None) -> None:
        """The server lost the job and it was sent again."""
        job = self.job
        if remote_id:
            job.remote_id = remote_id
        if job.state is JobState.RUNNING:
            self._host.move(self._rec, JobState.SUBMITTED, "resubmitted")
        self._changed()

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
        if job.state.terminal:
            return  # a late frame from the server: the final snapshot has gone out
        old = job.progress
        step = old.step if step is None else step
        total = old.total if total is None else total
        if fraction is None or fraction != fraction:  # NaN from a broken server: keep the last good value
            fraction = old.fraction
        else:
            fraction = min(max(fraction, 0.0), MAX_RUNNING_FRACTION)
        stage = old.stage if stage is None or stage == old.stage else redact(stage)
        message = old.message if message is None or message == old.message else redact(message)
        if eta_s is None:  # no estimate from the server: the job's own pace
            eta_s = self._clock.eta(step, total)
        if (
            preview is None
            and fraction == old.fraction
            and stage == old.stage
            and message == old.message
            and step == old.step
            and total == old.total
        ):
            return  # nothing a user would see changed (a time estimate alone is not worth a message)
        job.progress = Progress.trusted(
            {
                "stage": stage,
                "fraction": fraction,
                "message": message,
                "step": step,
                "total": total,
                "eta_s": eta_s,
                "preview": old.preview if preview is None else preview,
                "preview_media_type": old.preview_media_type if preview is None else preview_media_type,
            }
        )
        self._changed()

    def log(self, line: str) -> None:
        """A server log line: scrubbed, kept on the job and handed to ``on_log`` callbacks."""
        line = redact(line)
        job = self.job
        job.log.append(line)
        if len(job.log) > KEEP_LOG:
            del job.log[:-KEEP_LOG]
        self._host.post(Logged(self._rec.handle, job.snapshot(), line))

    def emit_text(self, delta: str) -> None:
        """A piece of streamed text (an LLM token): delivered to ``on_text`` callbacks in order, never coalesced."""
        self._host.post(Streamed(self._rec.handle, delta))
