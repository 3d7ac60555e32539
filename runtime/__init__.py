"""The background runtime: loop thread, job model, scheduler, retries and the outbox back to the caller.

Plain Python: nothing in this package imports bpy, so it runs and tests without Blender.
"""

from __future__ import annotations

from .backend import (
    BackendClient,
    BackendConfig,
    HealthInfo,
    NetworkPolicy,
    RemoteStatus,
    is_loopback,
)
from .bridge import BatchHandle, JobHandle, RuntimeEvent
from .context import JobContext
from .core import JobSpec, Runtime
from .errors import ErrorCode, MovieDirectorError
from .jobs import Job, JobError, JobOutputs, JobState, OutputFile, Progress
from .retry import RetryPolicy

__all__ = [
    "BackendClient",
    "BackendConfig",
    "BatchHandle",
    "ErrorCode",
    "HealthInfo",
    "Job",
    "JobContext",
    "JobError",
    "JobHandle",
    "JobOutputs",
    "JobSpec",
    "JobState",
    "MovieDirectorError",
    "NetworkPolicy",
    "OutputFile",
    "Progress",
    "RemoteStatus",
    "RetryPolicy",
    "Runtime",
    "RuntimeEvent",
    "is_loopback",
]
