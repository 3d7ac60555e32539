"""The contract between the Wan2GP client and its two transports (MCP, Gradio).

Plain Python: this module never imports bpy. The client picks a transport per server URL (a path ending in ``/mcp``,
or the backend option ``transport``) and serializes jobs per server: Wan2GP runs one generation at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ...runtime.backend import HealthInfo, RemoteStatus
    from ...runtime.context import JobContext
    from ...runtime.jobs import JobOutputs
    from .schema import ModelSchema
    from .settings import Wan2gpSettings


class VideoTransport(Protocol):
    """One server, one transport. Every method raises only the shared error hierarchy."""

    url: str

    async def submit(self, settings: Wan2gpSettings, ctx: JobContext) -> str:
        """Start a generation (uploading start/end images first); returns the server's job id."""
        ...

    async def wait(self, remote_id: str, ctx: JobContext) -> JobOutputs:
        """Follow the job to its end, mapping progress and log lines onto ``ctx``; download outputs into
        ``ctx.output_dir``."""
        ...

    async def cancel(self, remote_id: str) -> None: ...

    async def status(self, remote_id: str) -> RemoteStatus: ...

    async def list_models(self) -> list[str]: ...

    async def model_schema(self, model_type: str) -> ModelSchema | None:
        """What the model declares (its settings with defaults, fps, frame limits, media, LoRAs); None when the
        server cannot say. An unknown model is an InvalidRequestError naming it."""
        ...

    async def health(self) -> HealthInfo: ...

    async def close(self) -> None: ...
