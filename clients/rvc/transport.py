"""The contract between the RVC client and its two transports (rvc-python's HTTP API, an Applio-style Gradio app).

Plain Python: this module never imports bpy. The client owns what is shared across transports (which server gets a
job, the voice-list cache, one loaded voice per server); a transport only speaks its server's protocol.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ...runtime.backend import HealthInfo
    from ...runtime.context import JobContext
    from ...runtime.jobs import JobOutputs
    from .request import ConvertRequest, TrainRequest

RVC_PYTHON = "rvc-python"
GRADIO = "gradio"
TRANSPORTS = (RVC_PYTHON, GRADIO)


class VoiceTransport(Protocol):
    """One server, one transport. Every method raises only the shared error hierarchy."""

    url: str
    kind: str
    #: The server has training endpoints.
    can_train: bool

    async def list_voices(self) -> list[str]:
        """The voice names the server offers, as a film-maker picks them."""
        ...

    async def convert(self, req: ConvertRequest, ctx: JobContext, target: Path) -> Path:
        """Convert ``req.input`` with ``req.voice`` into ``target`` (or a sibling with the server's suffix); return
        the path written. The caller holds the server's voice gate."""
        ...

    async def train(self, req: TrainRequest, ctx: JobContext) -> JobOutputs:
        """Train a new voice, reporting each stage on ``ctx``."""
        ...

    async def health(self) -> HealthInfo: ...

    async def close(self) -> None: ...
