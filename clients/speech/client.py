"""The speech client: a line of text becomes spoken audio through OpenAI's ``POST /v1/audio/speech``.

Plain Python: this module never imports bpy. Wire facts: ``docs/protocols/speech.md`` (Kokoro-FastAPI, openedai-speech,
LocalAI and a LiteLLM proxy routing the route). Job kinds and their ``request``:

    speak    {"text", "voice", "model", "speed", "response_format", "title"} -> one audio file (WAV by default);
             data: voice, model, duration_s, server
    voices   {"refresh": bool} -> data["voices"] (the server's list; empty and ``listed`` False when it has none),
             data["models"] (from ``GET /v1/models``; empty when it has none)

Defaults come from the server: an empty ``voice`` is its first listed voice, an empty ``model`` the configured one or
its first speech model. A server without a voice list takes any voice name (it says if it does not know it). Options
(``BackendConfig.options``): ``model`` (default model), ``voices_ttl`` (seconds the voice list is trusted, default 600).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ...runtime.backend import BackendConfig, HealthInfo, NetworkPolicy
from ...runtime.errors import (
    InvalidRequestError,
    MovieDirectorError,
    NotFoundError,
    ProtocolError,
    error_for_status,
)
from ...runtime.jobs import Job, JobOutputs, OutputFile
from ...runtime.retry import NO_RETRY, call_with_retry
from ..errorpage import page_message
from ..http import HttpBackendClient, download_to, read_limited, safe_filename, safe_path, unique_path
from ..llm.protocol import parse_models
from ..rvc.wavinfo import wav_info
from .protocol import MEDIA_TYPES, SpeakRequest, error_message, is_blend, parse_voices, pick_model

if TYPE_CHECKING:
    from ...runtime.context import JobContext

NAME = "speech"
KINDS = ("speak", "voices")
SPEECH_PATH = "v1/audio/speech"
VOICES_PATH = "v1/audio/voices"
#: A spoken line is seconds of audio; anything near this size is not a line.
MAX_AUDIO_BYTES = 256 * 1024 * 1024
DEFAULT_VOICES_TTL = 600.0


class SpeechClient(HttpBackendClient):
    name = NAME

    def __init__(self, config: BackendConfig, network: NetworkPolicy | None = None) -> None:
        super().__init__(config, network)
        self._busy: dict[str, int] = {}

    # --- discovery --------------------------------------------------------------------------------------------------
    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(self.config.urls) or (self.config.url,)

    @property
    def voices_ttl(self) -> float:
        try:
            return float(self.config.options.get("voices_ttl", DEFAULT_VOICES_TTL))
        except (TypeError, ValueError):
            return DEFAULT_VOICES_TTL

    async def _optional_get(self, url: str, path: str, deadline: float) -> Any | None:
        """GET a discovery route; None when the server has no such route (404/405/501, or a web page)."""
        try:
            return await self.request("GET", url, path, deadline=deadline, retry=NO_RETRY)
        except (NotFoundError, ProtocolError):
            return None
        except InvalidRequestError as exc:
            if exc.status in (405, 422):
                return None
            raise
        except MovieDirectorError as exc:
            if exc.status == 501:
                return None
            raise

    async def _discover(self, url: str) -> dict[str, Any]:
        voices_payload = await self._optional_get(url, VOICES_PATH, 10.0)
        voices: list[str] = []
        listed = False
        if voices_payload is not None:
            try:
                voices, listed = parse_voices(voices_payload), True
            except ValueError:
                voices, listed = [], False
        models_payload = await self._optional_get(url, "v1/models", 10.0)
        models: list[str] = []
        if models_payload is not None:
            with contextlib.suppress(ProtocolError):
                models = parse_models(models_payload, self.name)
        return {"voices": voices, "listed": listed, "models": models}

    async def discover(self, url: str | None = None, *, refresh: bool = False) -> dict[str, Any]:
        """``{"voices", "listed", "models"}`` of a server, cached (jobs asking at once share one request)."""
        target = url or self.urls[0]

        async def fetch() -> dict[str, Any]:
            return await self._discover(target)

        value: dict[str, Any] = await self.cache.get_or_fetch(
            f"{self.name}:{target}:discovery", fetch, refresh=refresh or self.voices_ttl <= 0, ttl=self.voices_ttl
        )
        return value

    async def voices(self, *, refresh: bool = False) -> list[str]:
        """The first server's voices ([] when it does not list them)."""
        return list((await self.discover(refresh=refresh))["voices"])

    async def resolve(self, req: SpeakRequest, url: str) -> tuple[str, str]:
        """(model, voice) for a request: given ones are checked against the server's lists where it has them."""
        found = await self.discover(url)
        voice = req.voice
        if not voice:
            if not found["voices"]:
                raise InvalidRequestError(
                    f"Name a voice: the speech server at {url} does not list its voices",
                    backend=self.name,
                    hint="Type the voice name its documentation gives (e.g. af_heart on Kokoro, alloy on "
                    "openedai-speech).",
                )
            voice = str(found["voices"][0])
        elif found["listed"] and not is_blend(voice) and voice not in found["voices"]:
            found = await self.discover(url, refresh=True)  # a voice added since the list was cached
            if voice not in found["voices"]:
                known = list(found["voices"])
                shown = ", ".join(known[:30]) + (f" and {len(known) - 30} more" if len(known) > 30 else "")
                raise NotFoundError(
                    f"The speech server at {url} has no voice {voice!r}",
                    backend=self.name,
                    details={"voice": voice, "known": known},
                    hint=f"Voices it has: {shown}." if known else "It lists no voices.",
                )
        model = req.model or str(self.config.options.get("model") or "") or pick_model(list(found["models"]))
        return model, voice

    # --- errors -----------------------------------------------------------------------------------------------------
    def status_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MovieDirectorError:
        page = page_message(status, body, self.config.url, headers.get("Content-Type", ""))
        message = page or error_message(status, body)
        try:
            parsed = json.loads(body) if body and not page else {}
        except ValueError:
            parsed = {}
        details = parsed if isinstance(parsed, dict) else {}
        return error_for_status(status, message, backend=self.name, headers=dict(headers), details=details)

    # --- speaking ---------------------------------------------------------------------------------------------------
    def _pick(self) -> str:
        return min(self.urls, key=lambda u: self._busy.get(u, 0))

    async def speak(
        self, req: SpeakRequest, target_dir: Path, ctx: JobContext | None = None
    ) -> tuple[OutputFile, dict[str, Any]]:
        """Speak one line into a new file in ``target_dir`` (checked to be audio before it is kept); returns the file
        and what was sent (server, model, voice)."""
        url = self._pick()
        model, voice = await self.resolve(req, url)
        body = req.body(model, voice)
        name = safe_filename((req.title or req.text[:40]).replace(":", " -"), default="line").replace(" ", "_")
        target = unique_path(safe_path(target_dir, f"{name}.{req.response_format}"))
        if ctx is not None:
            ctx.job.server = url
            ctx.mark_running()
            ctx.report_progress(0.1, stage="speaking", message=f"{voice} ({model})")

        async def once() -> None:
            try:
                async with self.session(url).post(SPEECH_PATH, json=body, allow_redirects=False) as resp:
                    if 300 <= resp.status < 400:  # never follow: the text and the key would go where it points
                        raise ProtocolError(
                            f"The speech server at {url} redirected the request ({resp.status}); not followed",
                            backend=self.name,
                        )
                    if resp.status >= 400:
                        raw = await read_limited(resp, 1024 * 1024, self.name)
                        raise self._speech_error(resp.status, raw, resp.headers, url)
                    kind = resp.headers.get("Content-Type", "").lower()
                    if kind.startswith(("application/json", "text/")):
                        raw = await read_limited(resp, 1024 * 1024, self.name)
                        raise ProtocolError(
                            f"The speech server at {url} answered {kind.split(';')[0]} instead of audio: "
                            f"{page_message(resp.status, raw, url, kind) or error_message(resp.status, raw)}",
                            backend=self.name,
                        )
                    await download_to(resp, target, backend=self.name, max_bytes=MAX_AUDIO_BYTES)
            except MovieDirectorError:
                raise
            except Exception as exc:
                raise self._error_from_exception(exc, url) from exc

        self._busy[url] = self._busy.get(url, 0) + 1
        try:
            await call_with_retry(once, self.config.retry, backend=self.name, deadline=self.config.timeout)
        finally:
            self._busy[url] -= 1
        return self._checked(target, req, url), {"server": url, "model": model, "voice": voice}

    def _speech_error(self, status: int, raw: bytes, headers: Mapping[str, str], url: str) -> MovieDirectorError:
        if status in (404, 405, 501) and not _is_voice_error(raw):
            return InvalidRequestError(
                f"The server at {url} does not speak: POST /v1/audio/speech answered {status}",
                backend=self.name,
                status=status,
                hint="Point the Speech backend at a text-to-speech server (Kokoro-FastAPI, openedai-speech, LocalAI) "
                "or a LiteLLM proxy with a TTS model.",
            )
        return self.status_error(status, raw, headers)

    def _checked(self, path: Path, req: SpeakRequest, url: str) -> OutputFile:
        size = path.stat().st_size
        if size == 0:
            path.unlink(missing_ok=True)
            raise ProtocolError(f"The speech server at {url} sent no audio", backend=self.name)
        if req.response_format == "wav":
            try:
                wav_info(path)
            except (OSError, ValueError) as exc:
                path.unlink(missing_ok=True)
                raise ProtocolError(
                    f"The speech server at {url} sent something that is not a WAV file ({exc})", backend=self.name
                ) from None
        return OutputFile(path=str(path), media_type=MEDIA_TYPES[req.response_format], name=path.name, size=size)

    # --- the job verbs ----------------------------------------------------------------------------------------------
    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        if job.kind not in KINDS:
            known = ", ".join(KINDS)
            raise InvalidRequestError(
                f"The speech backend cannot do {job.kind!r}", backend=self.name, hint=f"Known kinds: {known}."
            )
        if job.kind == "speak":
            parse_request(job.request)
        return None

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        if job.kind == "voices":
            found = await self.discover(refresh=bool(job.request.get("refresh")))
            return JobOutputs(text="\n".join(found["voices"]), data=dict(found))
        req = parse_request(job.request)
        ctx.report_progress(0.0, stage="connecting")
        out, sent = await self.speak(req, ctx.output_dir.resolve(), ctx)
        data: dict[str, Any] = {"text": req.text, **sent}
        if req.response_format == "wav":
            data["duration_s"] = wav_info(out.path).duration
        return JobOutputs(files=(out,), data=data)

    async def resume(self, job: Job, ctx: JobContext) -> JobOutputs:
        """A line is quick to speak and the server keeps no job: speak it again."""
        ctx.log("Movie Director restarted while this line was being spoken: speaking it again")
        ctx.mark_resubmitted()
        return await self.get_result(job, ctx)

    async def health(self) -> HealthInfo:
        url = self.urls[0]
        start = time.perf_counter()
        try:
            found = await asyncio.wait_for(self.discover(url, refresh=True), 15.0)
        except (MovieDirectorError, TimeoutError) as exc:
            return HealthInfo(ok=False, url=url, message=str(exc) or "no answer")
        latency = (time.perf_counter() - start) * 1000
        voices, models = found["voices"], found["models"]
        if not found["listed"] and not models:
            return HealthInfo(
                ok=False,
                url=url,
                latency_ms=latency,
                message="It answers, but lists neither voices nor models: is it a text-to-speech server?",
            )
        parts = []
        if found["listed"]:
            parts.append(f"{len(voices)} voice{'s' if len(voices) != 1 else ''}: {', '.join(voices[:5])}")
        else:
            parts.append("no voice list (type voice names)")
        parts.append(f"model {self.config.options.get('model') or pick_model(models)}")
        return HealthInfo(ok=True, url=url, latency_ms=latency, message="; ".join(parts), details=dict(found))


def _is_voice_error(raw: bytes) -> bool:
    """A 404 that is about the voice (some servers answer so for an unknown voice), not about the route."""
    return b"voice" in raw[:2000].lower() and not raw.lstrip().startswith(b"<")


def parse_request(request: Mapping[str, Any]) -> SpeakRequest:
    try:
        return SpeakRequest.model_validate(dict(request))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err.get("loc", ())) or "request"
            problems.append(f"{where}: {str(err.get('msg', 'invalid')).removeprefix('Value error, ')}")
        raise InvalidRequestError(
            "Bad speech request: " + "; ".join(problems), backend=NAME, details={"problems": problems}
        ) from None


def factory(config: BackendConfig, network: NetworkPolicy) -> SpeechClient:
    return SpeechClient(config, network)
