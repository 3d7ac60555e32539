"""Wan2GP over Gradio: a Wan2GP-compatible app's named ``/generate`` endpoint, driven through :mod:`..gradio_app`.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/wan2gp.md``: Wan2GP's own UI has no API, but
forks and wrappers expose one endpoint that takes the generation settings as named parameters (``prompt``,
``model_type``, ``resolution``, ``video_length``, ...) plus optional ``image_start``/``image_end`` files and returns a
video. Settings the app has no parameter for are left out (and logged); a start or end image it cannot take is
refused before anything is sent. ``gr.Progress`` becomes the job's progress ("inference 12/30"), ``gr.Info`` lines
its log. The model list is the ``model_type`` input's choices (or a ``/list_models`` endpoint where there is one).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...runtime.backend import BackendConfig, HealthInfo, NetworkPolicy, RemoteStatus
from ...runtime.errors import InvalidRequestError, JobFailedError, MovieDirectorError, ProtocolError
from ...runtime.jobs import JobOutputs, JobState
from ..gradio_app import EndpointMatch, EndpointQuery, GradioCall, GradioRunner, Param
from .schema import MEDIA_SETTINGS, ModelSchema

if TYPE_CHECKING:
    from ...runtime.context import JobContext
    from .settings import Wan2gpSettings

GENERATE = EndpointQuery(names=("generate",), what="Wan2GP-style /generate endpoint (settings as named parameters)")
LIST_MODELS = EndpointQuery(names=("list_models",), what="model list")
_VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".gif")
#: Finished jobs whose end we remember for ``status`` (the client asks after cancelling).
KEEP_ENDED = 64


def _coerce(value: Any, param: Param) -> Any:
    """Settings as the app's inputs want them: text boxes take text, number inputs numbers."""
    kind = param.python_type.lower()
    if kind == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if kind in ("float", "int") and isinstance(value, str):
        try:
            return float(value) if kind == "float" else int(value)
        except ValueError:
            return value  # the app says what is wrong with it
    return value


class GradioVideoTransport:
    """One Wan2GP-compatible Gradio app (the :class:`.transport.VideoTransport` contract)."""

    def __init__(self, url: str, config: BackendConfig, network: NetworkPolicy) -> None:
        self.url = url
        self.backend = config.name or "wan2gp"
        self.job_timeout = float(config.options.get("job_timeout", config.timeout))
        self.runner = GradioRunner(url, backend=self.backend, network=network, max_workers=1, hf_token=config.key())
        self._calls: dict[str, GradioCall] = {}
        self._ended: OrderedDict[str, JobState] = OrderedDict()

    def __repr__(self) -> str:
        return f"GradioVideoTransport({self.url!r})"

    async def endpoint(self) -> EndpointMatch:
        match = await self.runner.find_endpoint(GENERATE)
        if match.endpoint.param("prompt") is None:
            raise ProtocolError(
                f"{self.url}{match.endpoint.api_name} has no 'prompt' input: it is not a Wan2GP-style endpoint",
                backend=self.backend,
            )
        return match

    async def model_schema(self, model_type: str) -> ModelSchema | None:
        """A Gradio app declares its settings as the generate endpoint's named inputs (the same for every model)."""
        match = await self.endpoint()
        params = [p for p in match.endpoint.params if p.name]
        defaults = {p.name: p.default if p.has_default else None for p in params if p.name not in MEDIA_SETTINGS}
        media = frozenset(need for key, need in MEDIA_SETTINGS.items() if match.endpoint.param(key) is not None)
        return ModelSchema(model_type=model_type, name=model_type, media=media, defaults=defaults)

    # --- a job ------------------------------------------------------------------------------------------------------
    async def submit(self, settings: Wan2gpSettings, ctx: JobContext) -> str:
        match = await self.endpoint()
        params = {p.name: p for p in match.endpoint.params if p.name}
        values = settings.to_wan2gp()
        kwargs = {k: _coerce(v, params[k]) for k, v in values.items() if k in params}
        ignored = sorted(k for k, v in values.items() if k not in params and v not in ("", None, [], -1))
        if ignored:
            ctx.log(f"This app has no setting for {', '.join(ignored)}: its defaults apply")
        for name, label in (("image_start", "a start image"), ("image_end", "an end image")):
            path = getattr(settings, name)
            if not path:
                continue
            if name not in params:
                raise InvalidRequestError(
                    f"The app at {self.url} takes no {label.split(' ', 1)[1]}",
                    backend=self.backend,
                    hint="Generate from text only, or use Wan2GP's MCP server.",
                )
            kwargs[name] = Path(path)
            ctx.report_progress(0.0, stage="uploading", message=Path(path).name)
        ctx.report_progress(0.0, stage="sending", message=self.url)
        call = await self.runner.start(match, ctx=ctx, deadline=self.job_timeout, **kwargs)
        remote_id = call.id or uuid.uuid4().hex
        self._calls[remote_id] = call
        return remote_id

    async def wait(self, remote_id: str, ctx: JobContext) -> JobOutputs:
        call = self._calls.get(remote_id)
        if call is None:
            raise JobFailedError(f"job {remote_id} is not known to this connection to {self.url}", backend=self.backend)
        state = JobState.FAILED
        try:
            result = await call.result()
            state = JobState.SUCCEEDED
        finally:
            self._end(remote_id, JobState.CANCELLED if call.cancelled else state)
        videos = [f for f in result.files if f.media_type.startswith("video/") or f.name.endswith(_VIDEO_SUFFIXES)]
        if not videos:
            raise JobFailedError("The app finished but returned no video", backend=self.backend)
        return JobOutputs(files=tuple(videos), data={"remote_id": remote_id, "server": self.url})

    def _end(self, remote_id: str, state: JobState) -> None:
        self._calls.pop(remote_id, None)
        self._ended[remote_id] = state
        while len(self._ended) > KEEP_ENDED:
            self._ended.popitem(last=False)

    async def cancel(self, remote_id: str) -> None:
        call = self._calls.get(remote_id)
        if call is not None:
            await call.cancel()
            self._end(remote_id, JobState.CANCELLED)

    async def status(self, remote_id: str) -> RemoteStatus:
        call = self._calls.get(remote_id)
        if call is not None:
            future = call.job.future
            if call.cancelled:
                return RemoteStatus(state=JobState.CANCELLED)
            if future.done():  # ended on the app; never read a result here (see GradioCall.abandon)
                return RemoteStatus(state=JobState.FAILED if future.exception() else JobState.SUCCEEDED)
            running = call.mapper.running
            return RemoteStatus(state=JobState.RUNNING if running else JobState.SUBMITTED, message=call.api_name)
        if remote_id in self._ended:
            return RemoteStatus(state=self._ended[remote_id])
        return RemoteStatus(state=None, message=f"{self.url} has no job {remote_id} for this connection")

    # --- the app ----------------------------------------------------------------------------------------------------
    async def list_models(self) -> list[str]:
        info = await self.runner.info()
        if info.endpoint("list_models") is not None:
            result = await self.runner.call("/list_models", deadline=30.0)
            data = result.data
            if not isinstance(data, (list, tuple)) or not all(isinstance(m, str) for m in data):
                raise ProtocolError("The app's model list is not a list of names", backend=self.backend)
            return list(dict.fromkeys(data))
        param = (await self.endpoint()).endpoint.param("model_type")
        return [str(c) for c in param.choices] if param is not None else []

    async def health(self) -> HealthInfo:
        info = await self.runner.health()
        if not info.ok:
            return info
        try:
            match = await self.endpoint()
        except MovieDirectorError as exc:
            return info.model_copy(update={"ok": False, "message": str(exc)})
        return info.model_copy(
            update={"message": f"Wan2GP-compatible Gradio app at {match.endpoint.api_name}; {info.message}"}
        )

    async def close(self) -> None:
        self._calls.clear()
        await self.runner.close()
