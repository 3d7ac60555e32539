"""The AudioLDM client: sound effects from text, through AudioLDM's (or AudioLDM2's) Gradio demo app.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/rvc-audioldm.md``; Gradio plumbing:
:mod:`..gradio_app`. The app's ``text2audio`` is found by name, or, in apps that never named it, by its inputs' labels
(text, guidance scale, seed, candidates). AudioLDM2 has no duration input and always makes 10 s.

Job kind ``"sound"``::

    {"text": "a door slams in an empty hall", "duration": 5.0, "guidance_scale": 2.5, "seed": -1,
     "n_candidates": 3, "steps": 50, "negative_prompt": "", "title": "door"}

Only ``text`` is required; unset values take the app's defaults, ``seed`` -1 picks a random seed (kept in the
outputs so a good take can be made again). Outputs: the app's file (a waveform video with the sound as its audio
track, or an audio file) with its media type; ``data`` holds the duration in seconds, the seed and the endpoint.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ...runtime.backend import BackendClient, BackendConfig, HealthInfo, NetworkPolicy, RemoteStatus
from ...runtime.errors import InvalidRequestError, ProtocolError
from ...runtime.jobs import Job, JobOutputs, JobState
from ..gradio_app import EndpointMatch, EndpointQuery, GradioCall, GradioRunner, Role
from .probe import audio_duration

if TYPE_CHECKING:
    from ...runtime.context import JobContext

NAME = "audioldm"
KIND = "sound"
MIN_SECONDS, MAX_SECONDS, DEFAULT_SECONDS = 2.5, 10.0, 5.0
#: AudioLDM2's demo has no duration input: every sound is this long.
FIXED_SECONDS = 10.0

_NUMBER = ("Slider", "Number")
TEXT2AUDIO = EndpointQuery(
    names=("text2audio",),
    roles={
        "text": Role(("text", "prompt", "input your text"), ("Textbox",)),
        "guidance_scale": Role(("guidance",), _NUMBER),
        "seed": Role(("seed", "different generation result"), _NUMBER),
        "n_candidates": Role(("n_candidates", "candidates", "quality control", "waveforms"), _NUMBER),
        "duration": Role(("duration", "audio_length", "seconds"), _NUMBER, required=False),
        "steps": Role(("steps", "ddim"), _NUMBER, required=False),
        "negative_prompt": Role(("negative",), ("Textbox",), required=False),
    },
    what="text-to-audio endpoint (AudioLDM's text2audio)",
)


class SoundRequest(BaseModel):
    """What a sound job asks for; None means "the app's default"."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000)
    duration: float = Field(default=DEFAULT_SECONDS, ge=MIN_SECONDS, le=MAX_SECONDS)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=20.0)
    seed: int | None = Field(default=None, ge=-1, le=2**31 - 1)
    n_candidates: int | None = Field(default=None, ge=1, le=5)
    steps: int | None = Field(default=None, ge=1, le=1000)
    negative_prompt: str | None = Field(default=None, max_length=2000)
    title: str = ""

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("describe the sound: the text is empty")
        return value.strip()


def parse_request(request: dict[str, Any], backend: str = NAME) -> SoundRequest:
    try:
        return SoundRequest.model_validate(request)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ())) or 'request'}: {err.get('msg', 'invalid')}"
            for err in exc.errors(include_url=False)
        ]
        raise InvalidRequestError(
            "Bad sound settings: " + "; ".join(problems), backend=backend, details={"problems": problems}
        ) from None


def _is_sound(media_type: str, name: str) -> bool:
    return media_type.startswith(("audio/", "video/")) or name.lower().endswith(
        (".wav", ".mp3", ".flac", ".ogg", ".avi", ".mp4", ".webm", ".mkv", ".mov")
    )


class AudioLdmClient(BackendClient):
    name = NAME

    def __init__(self, config: BackendConfig, network: NetworkPolicy | None = None) -> None:
        super().__init__(config, network)
        self.job_timeout = float(config.options.get("job_timeout", config.timeout))
        self._runners: dict[str, GradioRunner] = {}
        self._calls: dict[str, tuple[GradioCall, dict[str, Any]]] = {}

    def runner(self, url: str) -> GradioRunner:
        runner = self._runners.get(url)
        if runner is None:
            runner = self._runners[url] = GradioRunner(
                url,
                backend=self.name,
                network=self.network,
                max_workers=self.config.concurrency,
                hf_token=self.config.key(),
            )
        return runner

    def _pick(self) -> GradioRunner:
        """The least busy server (the first, when several are equally busy)."""
        urls = list(self.config.urls) or [self.config.url]
        return min((self.runner(u) for u in urls), key=lambda r: r.busy)

    async def endpoint(self, runner: GradioRunner) -> EndpointMatch:
        return await runner.find_endpoint(TEXT2AUDIO)

    # --- the job verbs ----------------------------------------------------------------------------------------------
    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        if job.kind != KIND:
            raise InvalidRequestError(f"AudioLDM jobs are {KIND!r}, not {job.kind!r}", backend=self.name)
        req = parse_request(job.request)
        runner = self._pick()
        ctx.report_progress(0.0, stage="connecting", message=runner.url)
        match = await self.endpoint(runner)
        values: dict[str, Any] = {"text": req.text}
        seed = req.seed if req.seed is not None and req.seed >= 0 else None
        if req.seed == -1:
            seed = random.randrange(2**31)
        optional = {
            "duration": req.duration,
            "guidance_scale": req.guidance_scale,
            "seed": seed,
            "n_candidates": req.n_candidates,
            "steps": req.steps,
            "negative_prompt": req.negative_prompt,
        }
        values.update({k: v for k, v in optional.items() if v is not None and match.has(k)})
        if match.has("duration"):
            seconds = req.duration
        else:
            seconds = FIXED_SECONDS
            if req.duration != FIXED_SECONDS:
                ctx.log(f"This app (AudioLDM2?) has no duration setting: the sound will be {FIXED_SECONDS:g} s long")
        args = match.arguments(values, backend=self.name)
        call = await runner.start(match, *args, ctx=ctx, deadline=self.job_timeout)
        job.server = runner.url
        info = {
            "requested_s": seconds,
            "seed": values.get("seed"),
            "endpoint": match.endpoint.api_name or f"#{match.endpoint.fn_index}",
            "found_by": match.by,
            "server": runner.url,
        }
        self._calls[job.id] = (call, info)
        return call.id

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        entry = self._calls.pop(job.id, None)
        if entry is None:
            raise InvalidRequestError(f"job {job.id} was never sent to AudioLDM", backend=self.name)
        call, info = entry
        result = await call.result()
        sounds = [f for f in result.files if _is_sound(f.media_type, f.name)]
        if not sounds:
            raise ProtocolError(
                "The app finished but returned no sound file", backend=self.name, details={"data": str(result.data)}
            )
        sound = sounds[0]
        measured = audio_duration(sound.path)
        return JobOutputs(files=(sound,), data={**info, "duration_s": measured or info["requested_s"]})

    async def resume(self, job: Job, ctx: JobContext) -> JobOutputs:
        """A Gradio job cannot be followed again after Movie Director restarted (its app session is gone), and a
        sound is quick to make: make it again."""
        ctx.log("Movie Director restarted while this sound was being made: making it again")
        remote_id = await self.submit(job, ctx)
        ctx.mark_resubmitted(remote_id)
        return await self.get_result(job, ctx)

    async def cancel(self, job: Job) -> None:
        entry = self._calls.pop(job.id, None)
        if entry is not None:
            await entry[0].cancel()

    async def get_status(self, job: Job) -> RemoteStatus:
        entry = self._calls.get(job.id)
        if entry is None:
            return RemoteStatus(state=None, message="this AudioLDM client is not following the job")
        call = entry[0]
        if not call.done:
            return RemoteStatus(state=JobState.RUNNING if call.mapper.running else JobState.SUBMITTED)
        return RemoteStatus(state=JobState.CANCELLED if call.cancelled else JobState.SUCCEEDED)

    async def health(self) -> HealthInfo:
        runner = self._pick()
        info = await runner.health()
        if not info.ok:
            return info
        try:
            match = await self.endpoint(runner)
        except Exception as exc:
            return info.model_copy(update={"ok": False, "message": str(exc)})
        where = match.endpoint.api_name or f"endpoint #{match.endpoint.fn_index}"
        kind = "AudioLDM" if match.has("duration") else "AudioLDM2 (10 s sounds)"
        return info.model_copy(update={"message": f"{kind} at {where}; {info.message}"})

    async def close(self) -> None:
        runners, self._runners = list(self._runners.values()), {}
        self._calls.clear()
        for runner in runners:
            await runner.close()


def factory(config: BackendConfig, network: NetworkPolicy) -> AudioLdmClient:
    return AudioLdmClient(config, network)
