"""The background runtime: loop thread, job model, scheduler, retries and the outbox back to the caller.

Split along the thread line: ``core`` (the home-thread front, :class:`Runtime`), ``engine`` (the loop side: records,
scheduler, run/finish, journal writes), ``record`` (one job's loop-side record), ``outbox`` (the frozen messages that
cross back), ``bridge`` (the handles callers hold), ``context`` (what a client may do to its job).

Plain Python: nothing in this package imports bpy, so it runs and tests without Blender. Names are imported lazily
(PEP 562): enabling the add-on touches only ``runtime.urls``, and pydantic loads on first real use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BackendClient": ".backend",
    "BackendConfig": ".backend",
    "HealthInfo": ".backend",
    "NetworkPolicy": ".backend",
    "RemoteStatus": ".backend",
    "is_loopback": ".urls",
    "BatchHandle": ".bridge",
    "JobHandle": ".bridge",
    "RuntimeEvent": ".outbox",
    "Placement": ".placement",
    "JobSnapshot": ".jobs",
    "JobContext": ".context",
    "JobSpec": ".jobs",
    "Runtime": ".core",
    "ErrorCode": ".errors",
    "MovieDirectorError": ".errors",
    "Job": ".jobs",
    "JobError": ".jobs",
    "JobOutputs": ".jobs",
    "JobState": ".jobs",
    "OutputFile": ".jobs",
    "Progress": ".jobs",
    "RetryPolicy": ".retry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
