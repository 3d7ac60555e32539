"""The contract between the RVC client and its two transports (rvc-python's HTTP API, an Applio-style Gradio app).

Plain Python: this module never imports bpy. The client owns what is shared across transports (which server gets a
job, the voice-list cache, one loaded voice per server); a transport only speaks its server's protocol. Transports
know the client only as a :class:`VoiceHost` (what they need of it) and raise the shared errors themselves, so no
transport imports the client module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import aiohttp

    from ...runtime.backend import BackendConfig, HealthInfo, NetworkPolicy
    from ...runtime.context import JobContext
    from ...runtime.errors import MovieDirectorError, NotFoundError
    from ...runtime.jobs import JobOutputs
    from ...runtime.retry import RetryPolicy
    from .request import ConvertRequest, TrainRequest

RVC_PYTHON = "rvc-python"
GRADIO = "gradio"
TRANSPORTS = (RVC_PYTHON, GRADIO)


class VoiceHost(Protocol):
    """What a transport uses of the RVC client: its name, settings, HTTP plumbing and the unknown-voice error."""

    name: str
    config: BackendConfig
    network: NetworkPolicy
    #: Longest one conversion (or one training stage) may take, in seconds.
    job_timeout: float

    async def request(
        self,
        method: str,
        base_url: str,
        path: str,
        *,
        json_body: Any = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
    ) -> Any: ...

    def session(self, base_url: str) -> aiohttp.ClientSession: ...

    def status_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MovieDirectorError: ...

    async def unknown_voice(self, voice: str, url: str) -> NotFoundError: ...


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
