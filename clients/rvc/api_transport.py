"""rvc-python's API server (FastAPI, ``python -m rvc_python api``): list voices, load one, set the inference
settings, convert a file.

Plain Python: this module never imports bpy. Wire facts: ``shared/protocols/rvc-audioldm.md``. The server keeps one
loaded model and one set of settings for everyone, so the client gates conversions per server (see :mod:`.gate`),
loads the voice only when it is not the loaded one, and sends the settings before every conversion. A server that
restarted answers 400 "No model loaded": the voice is loaded again and the conversion retried once, unseen.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...runtime.backend import HealthInfo
from ...runtime.errors import (
    BackendUnavailableError,
    InvalidRequestError,
    JobFailedError,
    MovieDirectorError,
    NotFoundError,
    ProtocolError,
)
from ...runtime.retry import call_with_retry
from ..http import answer_within, download_to, error_from_exception, read_limited
from .transport import RVC_PYTHON

if TYPE_CHECKING:
    from ...runtime.context import JobContext
    from ...runtime.jobs import JobOutputs
    from .request import ConvertRequest, TrainRequest
    from .transport import VoiceHost

#: Error bodies are short JSON; never read more of one than this.
MAX_ERROR_BYTES = 64 * 1024
MAX_VOICES = 10_000


class ModelsAnswer(BaseModel):
    """GET /models -> ``{"models": ["name", ...]}`` (folders holding a .pth). Extra fields are tolerated."""

    model_config = ConfigDict(extra="ignore")

    models: list[str] = Field(max_length=MAX_VOICES)


def _no_model_loaded(exc: MovieDirectorError) -> bool:
    return exc.status == 400 and "no model loaded" in exc.message.lower()


class RvcPythonTransport:
    kind = RVC_PYTHON
    can_train = False

    def __init__(self, client: VoiceHost, url: str) -> None:
        self.client = client
        self.url = url
        #: The voice this client last loaded there (None: unknown, e.g. after the server restarted).
        self.loaded: str | None = None

    @property
    def backend(self) -> str:
        return self.client.name

    async def list_voices(self) -> list[str]:
        return self.parse_models(await self.client.request("GET", self.url, "models", deadline=15.0))

    def parse_models(self, body: Any) -> list[str]:
        try:
            answer = ModelsAnswer.model_validate(body)
        except ValidationError:
            message = f"{self.url}/models did not answer with a list of voices"
            raise ProtocolError(message, backend=self.backend) from None
        return sorted({m[:200] for m in answer.models if m.strip()})

    async def load(self, voice: str) -> None:
        """POST /models/{name}; an unknown voice is a NotFoundError naming the voices the server has."""
        self.loaded = None
        try:
            await self.client.request("POST", self.url, f"models/{quote(voice, safe='')}", deadline=120.0)
        except InvalidRequestError as exc:
            if "not found" in exc.message.lower():
                raise await self.client.unknown_voice(voice, self.url) from None
            raise
        except NotFoundError:
            raise await self.client.unknown_voice(voice, self.url) from None
        self.loaded = voice

    async def set_params(self, params: dict[str, Any]) -> None:
        await self.client.request("POST", self.url, "params", json_body={"params": params}, deadline=15.0)

    async def convert(self, req: ConvertRequest, ctx: JobContext, target: Path) -> Path:
        for attempt in range(2):
            if self.loaded != req.voice:
                ctx.report_progress(0.05, stage="loading voice", message=f"loading {req.voice}")
                await self.load(req.voice)
                ctx.log(f"loaded the voice {req.voice} on {self.url}")
            await self.set_params(req.server_params())
            ctx.report_progress(0.1, stage="converting", message=f"converting to {req.voice}")
            try:
                await self._convert_file(req, target)
                return target
            except MovieDirectorError as exc:
                if attempt == 0 and _no_model_loaded(exc):
                    ctx.log(f"{self.url} had no voice loaded (did it restart?): loading {req.voice} again")
                    self.loaded = None
                    continue
                if isinstance(exc, BackendUnavailableError):
                    self.loaded = None  # whatever comes back up has nothing loaded
                    raise BackendUnavailableError(
                        f"The RVC server at {self.url} stopped answering while converting "
                        f"{Path(req.input).name}: {exc.message}",
                        backend=self.backend,
                    ) from None
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _convert_file(self, req: ConvertRequest, target: Path) -> None:
        """POST /convert_file (multipart ``file``), the WAV answer streamed into ``target``."""
        client = self.client
        source = Path(req.input)

        async def once() -> None:
            try:
                with source.open("rb") as fh:
                    form = aiohttp.FormData()
                    form.add_field("file", fh, filename=source.name, content_type="application/octet-stream")
                    session = client.session(self.url)  # the server converts before it answers: wait that long
                    async with session.post(
                        "convert_file", data=form, timeout=answer_within(client.job_timeout)
                    ) as resp:
                        if resp.status >= 400:
                            body = await read_limited(resp, MAX_ERROR_BYTES, self.backend)
                            error = client.status_error(resp.status, body, resp.headers)
                            if resp.status == 500:  # the model itself failed on this input: trying again won't help
                                raise JobFailedError(
                                    f"The RVC server could not convert {source.name}: {error.message}",
                                    backend=self.backend,
                                    status=500,
                                )
                            raise error
                        kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                        if kind and not kind.startswith("audio/") and kind != "application/octet-stream":
                            raise ProtocolError(
                                f"{self.url}/convert_file answered {kind}, not audio", backend=self.backend
                            )
                        await download_to(resp, target, backend=self.backend)
            except MovieDirectorError:
                raise
            except Exception as exc:
                raise error_from_exception(exc, self.url, backend=self.backend) from exc

        await call_with_retry(once, client.config.retry, backend=self.backend, deadline=client.job_timeout)

    async def train(self, req: TrainRequest, ctx: JobContext) -> JobOutputs:
        raise InvalidRequestError(
            f"The RVC server at {self.url} cannot train voices (rvc-python's API only converts)",
            backend=self.backend,
            hint="Train on an Applio server (set the RVC server URL to it), then convert here.",
        )

    async def health(self) -> HealthInfo:
        start = time.perf_counter()
        try:
            voices = await self.list_voices()
        except MovieDirectorError as exc:
            return HealthInfo(ok=False, url=self.url, message=str(exc))
        latency = (time.perf_counter() - start) * 1000
        return HealthInfo(
            ok=True,
            url=self.url,
            message=f"rvc-python API with {len(voices)} voice{'s' if len(voices) != 1 else ''}",
            latency_ms=latency,
            details={"transport": self.kind, "voices": len(voices)},
        )

    async def close(self) -> None:
        """Sessions belong to the client, which closes them."""
