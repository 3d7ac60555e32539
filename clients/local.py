"""An in-process backend that needs no server: the runtime's self-check, its benchmark and its tests use it.

Plain Python: this module never imports bpy. Kinds:

- ``noop``: succeeds at once (the bridge round-trip benchmark).
- ``echo``: reports ``steps`` progress events ``delay`` seconds apart (with ``stream``, also streams "1 2 3 ..." as
  text deltas), then returns ``request["text"]`` as text.
- ``fail``: raises the error named by ``request["code"]`` (an :class:`ErrorCode` value) with ``request["message"]``.
- ``hang``: waits until cancelled (tests of cancel and stop).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..runtime.backend import (
    BackendClient,
    BackendConfig,
    HealthInfo,
    NetworkPolicy,
    RemoteStatus,
)
from ..runtime.errors import InvalidRequestError, error_class_for_code
from ..runtime.jobs import Job, JobOutputs, JobState

if TYPE_CHECKING:
    from ..runtime.context import JobContext

NAME = "local"


class LocalClient(BackendClient):
    name = NAME

    def __init__(self, config: BackendConfig, network: NetworkPolicy | None = None) -> None:
        super().__init__(config, network)
        self.cancelled: list[str] = []

    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        if job.kind not in ("noop", "echo", "fail", "hang"):
            raise InvalidRequestError(f"The local backend cannot do {job.kind!r}", backend=self.name)
        return None

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        req = job.request
        if job.kind == "noop":
            return JobOutputs()
        ctx.mark_running()
        if job.kind == "fail":
            cls = error_class_for_code(str(req.get("code", "server_error")))
            raise cls(str(req.get("message", "the local backend was asked to fail")), backend=self.name)
        if job.kind == "hang":
            await asyncio.Event().wait()
        steps = int(req.get("steps", 0))
        delay = float(req.get("delay", 0.0))
        for i in range(steps):
            await asyncio.sleep(delay)
            ctx.report_progress((i + 1) / steps, stage="echo", step=i + 1, total=steps, message=f"step {i + 1}")
            if req.get("log"):
                ctx.log(f"step {i + 1} of {steps}")
            if req.get("stream"):
                ctx.emit_text(f"{i + 1} ")
        return JobOutputs(text=str(req.get("text", "")))

    async def get_status(self, job: Job) -> RemoteStatus:
        return RemoteStatus(state=JobState.RUNNING if not job.done else job.state)

    async def cancel(self, job: Job) -> None:
        self.cancelled.append(job.id)

    async def health(self) -> HealthInfo:
        return HealthInfo(ok=True, url="local", message="in-process backend", version="1")


def factory(config: BackendConfig, network: NetworkPolicy) -> LocalClient:
    return LocalClient(config, network)
