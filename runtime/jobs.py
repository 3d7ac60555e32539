"""The job model: what was asked, where it stands, what came out.

Plain Python: this module never imports bpy. A :class:`Job` is owned and mutated by the runtime's loop thread only;
other threads see frozen snapshots (``Job.snapshot()``) delivered through the outbox.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import MovieDirectorError, error_from_exception
from .placement import Placement


class JobState(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

#: The legal moves of the state machine. A job may fail or be cancelled from any live state; it may only succeed
#: once it has been handed to a server. Resubmission after a lost prompt goes RUNNING -> SUBMITTED.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTED, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUBMITTED: frozenset({JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.SUBMITTED, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


class IllegalTransitionError(MovieDirectorError):
    """A state change the job model forbids (a bug in a client, never a user error)."""


class Progress(BaseModel):
    """Where a running job stands. ``fraction`` never reaches 1.0 before outputs exist."""

    model_config = ConfigDict(frozen=True)

    stage: str = ""
    fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    message: str = ""
    step: int | None = None
    total: int | None = None
    eta_s: float | None = None
    preview: bytes | None = Field(default=None, repr=False)
    preview_media_type: str | None = None

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Progress:
        """A progress from values the runtime already checked (every field given, in range): built without
        validation, as ``model_construct`` does but at a fraction of its cost (the loop builds one per message)."""
        progress = cls.__new__(cls)
        object.__setattr__(progress, "__dict__", values)
        object.__setattr__(progress, "__pydantic_fields_set__", set(_PROGRESS_FIELDS))
        object.__setattr__(progress, "__pydantic_extra__", None)
        object.__setattr__(progress, "__pydantic_private__", None)
        return progress


_PROGRESS_FIELDS = frozenset(Progress.model_fields)


class OutputFile(BaseModel):
    """A file a job produced, saved inside the job's output folder."""

    model_config = ConfigDict(frozen=True)

    path: str
    media_type: str
    name: str = ""
    size: int = 0
    node: str = ""


class JobOutputs(BaseModel):
    model_config = ConfigDict(frozen=True)

    files: tuple[OutputFile, ...] = ()
    text: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class JobError(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    retryable: bool = False
    details: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_exception(cls, exc: BaseException) -> JobError:
        return cls.model_validate(error_from_exception(exc).to_dict())


def new_job_id() -> str:
    """Job ids are lowercase UUIDs, the form the strictest servers (ComfyUI) accept as their own ids."""
    return str(uuid.uuid4())


class Job(BaseModel):
    """One unit of work for one backend."""

    model_config = ConfigDict(validate_assignment=False)

    id: str = Field(default_factory=new_job_id)
    backend: str
    kind: str
    request: dict[str, Any] = Field(default_factory=dict)
    priority: int = 0
    state: JobState = JobState.QUEUED
    progress: Progress = Field(default_factory=Progress)
    outputs: JobOutputs = Field(default_factory=JobOutputs)
    error: JobError | None = None
    remote_id: str | None = None
    server: str | None = None
    placement: Placement | None = None
    log: list[str] = Field(default_factory=list)
    created_at: float = Field(default_factory=time.time)
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def transition(self, new: JobState) -> None:
        """Move to ``new`` or raise :class:`IllegalTransitionError`; stamps the matching timestamp."""
        if new is self.state:
            return
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransitionError(f"job {self.id}: {self.state.value} -> {new.value} is not allowed")
        self.state = new
        now = time.time()
        if new is JobState.SUBMITTED and self.submitted_at is None:
            self.submitted_at = now
        elif new is JobState.RUNNING and self.started_at is None:
            self.started_at = now
        elif new.terminal:
            self.finished_at = now

    def snapshot(self) -> Job:
        """A frozen copy (:class:`JobSnapshot`) that other threads may read while the loop keeps mutating this one.

        A shallow copy: every field the loop changes is replaced, never mutated in place (progress, outputs and error
        are frozen models; the log is copied)."""
        snap = JobSnapshot.__new__(JobSnapshot)
        values = dict(self.__dict__)
        values["log"] = self.log[-50:]
        object.__setattr__(snap, "__dict__", values)
        object.__setattr__(snap, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        object.__setattr__(snap, "__pydantic_extra__", None)
        object.__setattr__(snap, "__pydantic_private__", None)
        return snap

    @property
    def done(self) -> bool:
        return self.state.terminal


class JobSnapshot(Job):
    """A job as it was at one moment: what crosses the thread line. Frozen: assigning a field raises."""

    model_config = ConfigDict(frozen=True)

    def snapshot(self) -> Job:
        return self

    def with_log_line(self, line: str) -> Job:
        """A copy with one more log line (a callback failure, reported on the job)."""
        return self.model_copy(update={"log": [*self.log, line]})


@dataclass(frozen=True)
class JobSpec:
    """One job to submit, as data (used by batches)."""

    backend: str
    kind: str
    request: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    placement: Placement | None = None
