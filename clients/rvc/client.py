"""The RVC client: turn a recording into another voice, list the server's voices, train new ones (Applio).

Plain Python: this module never imports bpy. Wire facts: ``shared/protocols/rvc-audioldm.md``.

Each server URL speaks one of two transports, chosen by the backend option ``transport``: ``"rvc-python"``
(rvc-python's FastAPI server, :mod:`.api_transport`) or ``"gradio"`` (an Applio-style app, :mod:`.gradio_transport`).
Without the option (the preferences set none) the client asks the server once, rvc-python first: ``GET /models``
answering ``{"models": [...]}`` is rvc-python, a Gradio ``/config`` is a Gradio app.

Job kinds and their ``request``:
    "convert": {"input": "/path/line.wav", "voice": "alice", "pitch": 0, "f0method": "rmvpe", "index_rate": 0.5,
                "filter_radius": 3, "resample_sr": 0, "rms_mix_rate": 1.0, "protect": 0.33, "speaker_id": 0}
               -> one WAV in the job's folder; data: voice, server, duration_s, params
    "voices":  {"refresh": false} -> data: {"voices": [...], "by_server": {url: [...]}}
    "train":   {"name": "alice", "dataset": "/folder/of/recordings", "epochs": 200, ...} (Gradio servers only)
               -> data: {"voice": "alice", ...}; stages "preprocess", "extract", "train 3/10", "index"

Voice lists live in the runtime's discovery cache (kept on disk when the runtime has a cache folder) for
``voices_ttl`` seconds (option, default 300; 0 = always ask) and are refreshed on request or when a job names a voice
the cached list lacks. A server holds one loaded voice: jobs on one server take turns
(:mod:`.gate`), and the loaded voice is remembered so that it is loaded only when it changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...runtime.backend import BackendConfig, HealthInfo, NetworkPolicy
from ...runtime.errors import (
    InvalidRequestError,
    JobFailedError,
    MovieDirectorError,
    NotFoundError,
    ProtocolError,
    error_for_status,
)
from ...runtime.jobs import Job, JobOutputs, OutputFile
from ...runtime.retry import RetryPolicy
from .. import audio_extract
from ..http import HttpBackendClient, safe_filename, safe_path, unique_path
from .api_transport import RvcPythonTransport
from .gate import VoiceGate
from .request import ConvertRequest, TrainRequest, VoicesRequest, parse_request
from .transport import GRADIO, RVC_PYTHON, TRANSPORTS, VoiceTransport
from .wavinfo import wav_info

if TYPE_CHECKING:
    from ...runtime.context import JobContext

log = logging.getLogger(__name__)

NAME = "rvc"
DEFAULT_VOICES_TTL = 300.0
KINDS = ("convert", "voices", "train")
#: How the transport probe asks: quickly, and once more if the server blinks.
_PROBE_RETRY = RetryPolicy(max_retries=1, base_delay=0.2, deadline=10.0)


@dataclass(eq=False)
class _Server:
    url: str
    transport: VoiceTransport | None = None
    gate: VoiceGate = field(default_factory=VoiceGate)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one transport detection at a time


class RvcClient(HttpBackendClient):
    name = NAME

    def __init__(self, config: BackendConfig, network: NetworkPolicy | None = None) -> None:
        super().__init__(config, network)
        options = config.options
        self.transport_option: str | None = options.get("transport") or None
        self.voices_ttl = float(options.get("voices_ttl", DEFAULT_VOICES_TTL))
        #: Longest one conversion (upload, inference, download) may take.
        self.job_timeout = float(options.get("job_timeout", config.timeout))
        self._servers: dict[str, _Server] = {}
        self._requests: dict[str, Any] = {}

    # --- servers and transports -------------------------------------------------------------------------------------
    def server(self, url: str) -> _Server:
        srv = self._servers.get(url)
        if srv is None:
            srv = self._servers[url] = _Server(url)
        return srv

    @property
    def urls(self) -> tuple[str, ...]:
        return self.config.urls or (self.config.url,)

    async def transport(self, srv: _Server) -> VoiceTransport:
        """The server's transport: from the ``transport`` option, or found out by asking the server once."""
        if srv.transport is not None:
            return srv.transport
        async with srv.lock:
            if srv.transport is None:
                models: Any = None
                kind = self.transport_option or ""
                if not kind:
                    kind, models = await self._detect(srv.url)
                if kind not in TRANSPORTS:
                    raise InvalidRequestError(
                        f"Unknown RVC transport {kind!r}",
                        backend=self.name,
                        hint=f"Use one of: {', '.join(TRANSPORTS)}.",
                    )
                srv.transport = self._make_transport(kind, srv.url)
                if isinstance(srv.transport, RvcPythonTransport) and models is not None:
                    self.cache.put(self.voices_key(srv.url), srv.transport.parse_models(models))  # no second ask
                self.report_state("connected", f"{srv.url}: {kind}")
        return srv.transport

    def _make_transport(self, kind: str, url: str) -> VoiceTransport:
        if kind == RVC_PYTHON:
            return RvcPythonTransport(self, url)
        from .gradio_transport import ApplioTransport

        return ApplioTransport(self, url)

    async def _detect(self, url: str) -> tuple[str, Any]:
        """rvc-python if ``GET /models`` lists models (returned too); a Gradio app if ``GET /config`` is a Gradio
        config."""
        try:
            body = await self.request("GET", url, "models", retry=_PROBE_RETRY)
            if isinstance(body, dict) and isinstance(body.get("models"), list):
                return RVC_PYTHON, body
        except (InvalidRequestError, NotFoundError, ProtocolError):
            pass
        try:
            config = await self.request("GET", url, "config", retry=_PROBE_RETRY)
            if isinstance(config, dict) and ("dependencies" in config or "protocol" in config):
                return GRADIO, None
        except (InvalidRequestError, NotFoundError, ProtocolError):
            pass
        raise ProtocolError(
            f"{url} is neither an rvc-python API server nor a Gradio app",
            backend=self.name,
            hint="Check the RVC server URL in the Movie Director preferences.",
        )

    # --- voices ---------------------------------------------------------------------------------------------------
    def voices_key(self, url: str) -> str:
        return f"{self.name}:{url}:voices"

    async def voices_of(self, srv: _Server, *, refresh: bool = False) -> list[str]:
        """The server's voices, from the shared discovery cache while younger than ``voices_ttl`` (0: always ask);
        jobs asking at the same time share one request."""
        transport = await self.transport(srv)
        voices = await self.cache.get_or_fetch(
            self.voices_key(srv.url),
            transport.list_voices,
            refresh=refresh or self.voices_ttl <= 0,
            ttl=self.voices_ttl,
        )
        return [str(v) for v in voices]

    async def voices(self, *, refresh: bool = False) -> dict[str, list[str]]:
        """Every server's voices (a server that does not answer is left out unless none answers)."""
        servers = [self.server(u) for u in self.urls]
        results = await asyncio.gather(*(self.voices_of(s, refresh=refresh) for s in servers), return_exceptions=True)
        found: dict[str, list[str]] = {}
        errors: list[BaseException] = []
        for srv, result in zip(servers, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                errors.append(result)
            else:
                found[srv.url] = result
        if not found and errors:
            raise errors[0]
        return found

    async def unknown_voice(self, voice: str, url: str) -> NotFoundError:
        """The error for a voice a server does not have, naming the ones it does (freshly listed)."""
        srv = self.server(url)
        try:
            known = await self.voices_of(srv, refresh=True)
        except MovieDirectorError:
            known = self.cache.get(self.voices_key(url), ttl=float("inf")) or []
        return _not_found(voice, url, known, self.name)

    async def pick(self, voice: str) -> _Server:
        """A server that has ``voice``: one with it loaded or the least busy; the lists are refreshed once if stale."""
        for refresh in (False, True):
            by_server = await self.voices(refresh=refresh)
            candidates = [self.server(u) for u, names in by_server.items() if voice in names]
            if candidates:
                return min(candidates, key=lambda s: (s.gate.load, getattr(s.transport, "loaded", None) != voice))
        known = sorted({v for names in by_server.values() for v in names})
        raise _not_found(voice, ", ".join(by_server) or self.urls[0], known, self.name)

    # --- the job verbs ----------------------------------------------------------------------------------------------
    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        """Check the request (the runtime fails the job at once when it is wrong); the work happens in get_result.

        A video input (another server's answer, e.g. AudioLDM's waveform video) is first reduced to its sound."""
        if job.kind == "convert" and audio_extract.is_video(str(job.request.get("input", ""))):
            job.request = {**job.request, "input": await self._sound_of(job.request["input"], ctx)}
        self._requests[job.id] = self._parse(job)
        return None

    async def _sound_of(self, video: str, ctx: JobContext) -> str:
        if not audio_extract.available():
            raise InvalidRequestError(
                f"{Path(video).name} is a video; RVC needs its sound as an audio file",
                backend=self.name,
                hint="Inside Blender this happens by itself; elsewhere extract the audio first.",
            )
        ctx.report_progress(0.0, stage="extracting the sound")
        target = ctx.output_dir / (Path(video).stem + ".input.wav")
        try:
            await asyncio.to_thread(audio_extract.extract_wav, video, target)
        except Exception as exc:  # an unreadable file is the request's fault, said in words
            raise InvalidRequestError(
                f"Could not read the sound of {Path(video).name}: {exc}", backend=self.name
            ) from exc
        return str(target)

    def _parse(self, job: Job) -> Any:
        if job.kind == "convert":
            return parse_request(ConvertRequest, job.request, backend=self.name, what="voice conversion")
        if job.kind == "voices":
            return parse_request(VoicesRequest, job.request, backend=self.name, what="voice list request")
        if job.kind == "train":
            return parse_request(TrainRequest, job.request, backend=self.name, what="training request")
        raise InvalidRequestError(
            f"RVC cannot do {job.kind!r}", backend=self.name, hint=f"Job kinds RVC knows: {', '.join(KINDS)}."
        )

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        req = self._requests.pop(job.id, None) or self._parse(job)
        if isinstance(req, ConvertRequest):
            return await self._convert(job, req, ctx)
        if isinstance(req, TrainRequest):
            return await self._train(job, req, ctx)
        ctx.report_progress(0.0, stage="listing voices")
        by_server = await self.voices(refresh=req.refresh)
        voices = sorted({v for names in by_server.values() for v in names})
        return JobOutputs(data={"voices": voices, "by_server": by_server})

    async def resume(self, job: Job, ctx: JobContext) -> JobOutputs:
        """A conversion leaves nothing on the server between calls, so an interrupted one simply runs again."""
        if job.kind == "train":
            raise JobFailedError(
                "The training was interrupted when Movie Director closed", backend=self.name, retryable=True
            )
        return await self.get_result(job, ctx)

    async def _convert(self, job: Job, req: ConvertRequest, ctx: JobContext) -> JobOutputs:
        ctx.report_progress(0.0, stage="connecting", message=f"looking for the voice {req.voice}")
        srv = await self.pick(req.voice)
        transport = await self.transport(srv)
        job.server = srv.url
        if srv.gate.load:
            message = f"waiting for {srv.url}: it is busy with another job"
            ctx.report_progress(stage="waiting", message=message)
            ctx.log(message)
        async with srv.gate.hold(req.voice):
            ctx.mark_running()
            target = unique_path(safe_path(ctx.output_dir.resolve(), self._output_name(req)))
            path = await transport.convert(req, ctx, target)
        ctx.report_progress(0.99, stage="checking")
        try:
            info = wav_info(path)
        except (OSError, ValueError) as exc:
            Path(path).unlink(missing_ok=True)
            raise ProtocolError(f"{srv.url} sent something that is not a WAV file ({exc})", backend=self.name) from None
        data: dict[str, Any] = {
            "voice": req.voice,
            "server": srv.url,
            "transport": transport.kind,
            "duration_s": info.duration,
            "sample_rate": info.rate,
            "params": {**req.server_params(), "speaker_id": req.speaker_id},
        }
        out = OutputFile(path=str(path), media_type="audio/wav", name=path.name, size=path.stat().st_size)
        return JobOutputs(files=(out,), data=data)

    @staticmethod
    def _output_name(req: ConvertRequest) -> str:
        name = req.output_name or f"{Path(req.input).stem}_{req.voice}"
        name = safe_filename(name, default="voice")
        return name if name.lower().endswith(".wav") else name + ".wav"

    async def _train(self, job: Job, req: TrainRequest, ctx: JobContext) -> JobOutputs:
        srv = self.server(self.urls[0])
        transport = await self.transport(srv)
        job.server = srv.url
        if not transport.can_train:
            return await transport.train(req, ctx)  # says why it cannot
        async with srv.gate.hold(f"training:{req.name}"):
            ctx.mark_running()
            outputs = await transport.train(req, ctx)
        self.cache.invalidate(self.voices_key(srv.url))  # the new voice shows up in the next list
        return outputs

    async def cancel(self, job: Job) -> None:
        """Nothing waits on the server between calls; cancelling the job's task stopped its request (a Gradio app
        is asked to drop the job by the runner). Only the parsed request may be left to forget."""
        self._requests.pop(job.id, None)

    async def health(self) -> HealthInfo:
        url = self.urls[0]
        try:
            transport = await self.transport(self.server(url))
        except MovieDirectorError as exc:
            return HealthInfo(ok=False, url=url, message=str(exc))
        return await transport.health()

    async def close(self) -> None:
        servers, self._servers = list(self._servers.values()), {}
        for srv in servers:
            if srv.transport is not None:
                try:
                    await srv.transport.close()
                except Exception:
                    log.exception("closing the RVC transport for %s failed", srv.url)
        await super().close()

    def status_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MovieDirectorError:
        """FastAPI's ``{"detail": "..."}`` (or a list of validation errors) becomes the error's message."""
        import json

        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        detail = parsed.get("detail") if isinstance(parsed, dict) else None
        if isinstance(detail, str):
            message = detail
        elif isinstance(detail, list):
            parts = []
            for item in detail[:5]:
                if isinstance(item, dict):
                    where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
            message = "; ".join(parts) or f"the server answered {status}"
        else:
            return super().status_error(status, body, headers)
        details = parsed if isinstance(parsed, dict) else {}
        return error_for_status(status, message[:500], backend=self.name, headers=dict(headers), details=details)


def _not_found(voice: str, where: str, known: list[str], backend: str) -> NotFoundError:
    listed = ", ".join(known[:30]) + (f" and {len(known) - 30} more" if len(known) > 30 else "")
    return NotFoundError(
        f"The voice {voice!r} is not on the RVC server at {where}",
        backend=backend,
        details={"voice": voice, "known": known},
        hint=f"Voices it has: {listed}." if known else "It has no voices yet; add a voice folder on the server.",
    )


def factory(config: BackendConfig, network: NetworkPolicy) -> RvcClient:
    return RvcClient(config, network)
