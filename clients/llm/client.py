"""The LLM client: chat completions from any OpenAI-compatible server, LiteLLM's proxy first.

Plain Python: this module never imports bpy. Wire facts: ``shared/protocols/litellm.md``.

Job kinds and their ``request``:
    chat         {"prompt" | "messages", "system", "model", "max_tokens", "temperature"} -> outputs.text
    chat_stream  the same; every piece of text goes out through ``ctx.emit_text`` as it arrives -> outputs.text
    structured   the same + {"output": "ShotList" | <pydantic model class>} -> outputs.data["value"]
    shot_list    {"scene": "description", "model", ...} -> outputs.data["shot_list"] (a :class:`ShotList` dump)
    models       {} -> outputs.data["models"] (ids from GET /v1/models)

Code running on the runtime's loop (a later "direct a scene" pipeline) uses the same client directly,
``client = runtime.client("llm")`` (loop thread only), then ``stream_chat``, ``complete`` and ``structured``.

Options (``BackendConfig.options``): ``model`` (default model; empty = the server's first), ``idle_timeout`` (s,
default 60: the longest silence of a streamed answer, before its first piece too), ``first_byte_timeout`` (s,
default 120: the longest wait for a whole, non-streamed answer), ``context_window`` (tokens, default 32768),
``max_tokens`` (default 4096). The whole answer is bounded by ``BackendConfig.timeout``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...runtime.backend import BackendConfig, HealthInfo, NetworkPolicy
from ...runtime.errors import InvalidRequestError, JobFailedError, MovieDirectorError, ProtocolError, excerpt
from ...runtime.jobs import Job, JobOutputs
from ...runtime.retry import NO_RETRY
from ..errorpage import page_message
from ..http import HttpBackendClient, loads
from . import structured as st
from .conversation import Conversation
from .protocol import Completion, error_from_payload, parse_completion, parse_models
from .shots import SHOT_LIST_SYSTEM, ShotList
from .stream import ChatStream

if TYPE_CHECKING:
    from ...runtime.context import JobContext

NAME = "llm"
KINDS = ("chat", "chat_stream", "structured", "shot_list", "models")
DEFAULT_IDLE_TIMEOUT = 60.0
#: A whole (non-streamed) answer arrives all at once: the longest wait for it to start.
DEFAULT_FIRST_BYTE_TIMEOUT = 120.0
DEFAULT_CONTEXT_WINDOW = 32768
DEFAULT_MAX_TOKENS = 4096
#: Structured-output models a job may name (a job's request is plain data; in-process callers may pass the class).
OUTPUT_MODELS: dict[str, type[BaseModel]] = {"ShotList": ShotList, "shot_list": ShotList}
#: Seconds between progress reports while text streams (every piece of text itself goes out at once).
PROGRESS_EVERY = 0.1

Messages = Conversation | Iterable[Mapping[str, Any]] | str


class LlmRequest(BaseModel):
    """What an LLM job asks for."""

    model_config = ConfigDict(extra="ignore", arbitrary_types_allowed=True)

    prompt: str = ""
    system: str = ""
    messages: list[dict[str, Any]] = Field(default_factory=list)
    model: str = ""
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    context_window: int | None = Field(default=None, ge=256)
    output: Any = None
    scene: str = ""

    def conversation(self) -> Conversation:
        if self.messages:
            conv = Conversation.from_messages(self.messages, system=self.system)
            return conv.user(self.prompt) if self.prompt else conv
        if not self.prompt.strip():
            raise InvalidRequestError("Write a prompt first", backend=NAME)
        return Conversation(system=self.system).user(self.prompt)


class LlmClient(HttpBackendClient):
    name = NAME

    def __init__(self, config: BackendConfig, network: NetworkPolicy | None = None) -> None:
        super().__init__(config, network)
        self._streams: dict[str, ChatStream] = {}
        self._models: list[str] | None = None

    # --- settings ---------------------------------------------------------------------------------------------------
    def option(self, key: str, default: float) -> float:
        value = self.config.options.get(key)
        try:
            return float(value) if value not in (None, "") else default
        except (TypeError, ValueError):
            raise InvalidRequestError(f"The LLM option {key} must be a number, not {value!r}", backend=NAME) from None

    async def resolve_model(self, model: str | None) -> str:
        """The named model, the configured default, or the server's first model."""
        chosen = model or str(self.config.options.get("model") or "")
        if chosen:
            return chosen
        models = await self.models()
        if not models:
            raise InvalidRequestError("The server offers no models", backend=NAME, hint="Add a model to its config.")
        return models[0]

    async def build_body(
        self,
        messages: Messages,
        model: str | None = None,
        *,
        system: str = "",
        max_tokens: int | None = None,
        temperature: float | None = None,
        context_window: int | None = None,
        stream: bool = False,
        **extra: Any,
    ) -> dict[str, Any]:
        """A chat request body whose prompt fits the context window (oldest turns dropped, never the system)."""
        conv = messages if isinstance(messages, Conversation) else Conversation.from_messages(messages, system=system)
        if isinstance(messages, Conversation) and system:
            conv = Conversation(system=system, history=list(messages.history))
        answer = int(max_tokens or self.option("max_tokens", DEFAULT_MAX_TOKENS))
        window = int(context_window or self.option("context_window", DEFAULT_CONTEXT_WINDOW))
        fitted = conv.fit(window, answer)
        body: dict[str, Any] = {
            "model": await self.resolve_model(model),
            "messages": fitted.messages(),
            "max_tokens": answer,
        }
        if temperature is not None:
            body["temperature"] = temperature
        if stream:
            body["stream"] = True
        body.update({k: v for k, v in extra.items() if v is not None})
        return body

    # --- errors -----------------------------------------------------------------------------------------------------
    def status_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MovieDirectorError:
        """LiteLLM's ``{"error": {"message", "type", "param", "code"}}``, mapped onto the shared hierarchy."""
        try:
            payload = loads(body, what="", backend=self.name) if body else None
        except ProtocolError:
            payload = None
        page = page_message(status, body, self.config.url, headers.get("Content-Type", ""))
        if page is not None:  # an nginx / framework error page: its title, never its markup
            payload = {"error": {"message": page}}
        elif not isinstance(payload, dict):
            text = excerpt(body, 200).strip()  # redact first, then cut
            payload = {"error": {"message": text or f"the server answered {status}"}}
        return error_from_payload(
            payload, status=status, headers=headers, backend=self.name, has_key=bool(self.config.key())
        )

    # --- the in-loop API ------------------------------------------------------------------------------------------
    async def open_stream(self, messages: Messages, model: str | None = None, **opts: Any) -> ChatStream:
        """An opened :class:`ChatStream` (its first event has arrived). Close it when done."""
        body = await self.build_body(messages, model, stream=True, **opts)
        idle = self.option("idle_timeout", DEFAULT_IDLE_TIMEOUT)
        stream = ChatStream(self, self.config.url, body, idle=idle, total=self.config.timeout)
        return await stream.open()

    async def stream_chat(self, messages: Messages, model: str | None = None, **opts: Any) -> AsyncIterator[str]:
        """The answer's text, piece by piece as the server sends it. Breaking out closes the connection."""
        stream = await self.open_stream(messages, model, **opts)
        try:
            async for delta in stream.deltas():
                if delta.content:
                    yield delta.content
        finally:
            stream.close()

    async def complete(self, messages: Messages, model: str | None = None, **opts: Any) -> str:
        """The whole answer at once (one blocking request, retried per the policy)."""
        return (await self.completion(messages, model, **opts)).text

    async def completion(self, messages: Messages, model: str | None = None, **opts: Any) -> Completion:
        body = await self.build_body(messages, model, **opts)
        answer = await self.request(
            "POST",
            self.config.url,
            "v1/chat/completions",
            json_body=body,
            deadline=self.config.timeout,
            read_timeout=self.option("first_byte_timeout", DEFAULT_FIRST_BYTE_TIMEOUT),
            idempotent=True,  # a completion leaves nothing on the server: asking again only asks again (as openai)
        )
        return parse_completion(answer, self.name)

    async def structured(
        self,
        model_cls: type[BaseModel],
        messages: Messages,
        model: str | None = None,
        *,
        on_text: Callable[[str], Any] | None = None,
        **opts: Any,
    ) -> BaseModel:
        """An instance of ``model_cls`` from the model's answer (see :meth:`structured_answer`)."""
        value, _, _ = await self.structured_answer(model_cls, messages, model, on_text=on_text, **opts)
        return value

    async def structured_answer(
        self,
        model_cls: type[BaseModel],
        messages: Messages,
        model: str | None = None,
        *,
        on_text: Callable[[str], Any] | None = None,
        tag: str | None = None,
        **opts: Any,
    ) -> tuple[BaseModel, Completion, int]:
        """Ask with the model's strict schema; an invalid answer gets ONE repair round-trip with the validation
        errors sent back; then :class:`JobFailedError` quoting what came back. Returns (value, last answer, tries)."""
        conv = messages if isinstance(messages, Conversation) else Conversation.from_messages(messages)
        if opts.get("system"):
            conv = Conversation(system=str(opts.pop("system")), history=list(conv.history))
        fmt = st.response_format(model_cls)
        schema = fmt["json_schema"]["schema"]
        completion = await self._collect(conv, model, on_text=on_text, tag=tag, response_format=fmt, **opts)
        value, errors = st.validate_answer(model_cls, completion.text)
        if value is not None:
            return value, completion, 1
        first = completion.text
        conv = Conversation(system=conv.system, history=list(conv.history))
        conv.assistant(first).user(st.repair_request(errors, schema))
        completion = await self._collect(conv, model, on_text=on_text, tag=tag, response_format=fmt, **opts)
        value, errors = st.validate_answer(model_cls, completion.text)
        if value is not None:
            return value, completion, 2
        raise JobFailedError(
            f"The model's answer is not a valid {model_cls.__name__}, even after one correction: "
            f"{'; '.join(errors[:5])}. It answered: {st.quote(completion.text)!r}",
            backend=self.name,
            details={"errors": errors, "answer": excerpt(completion.text, 4000), "first_answer": excerpt(first, 4000)},
            hint="Try again, reword the request, or use a stronger model.",
        )

    async def _collect(
        self,
        messages: Messages,
        model: str | None,
        *,
        on_text: Callable[[str], Any] | None = None,
        tag: str | None = None,
        **opts: Any,
    ) -> Completion:
        """A streamed answer gathered whole; ``on_text`` hears every piece, ``tag`` lets :meth:`cancel` close it."""
        stream = await self.open_stream(messages, model, **opts)
        if tag is not None:
            self._streams[tag] = stream
        parts: list[str] = []
        finish, usage = None, {}
        try:
            async for delta in stream.deltas():
                if delta.content:
                    parts.append(delta.content)
                    if on_text is not None:
                        on_text(delta.content)
                if delta.finish_reason:
                    finish = delta.finish_reason
                if delta.usage:
                    usage = delta.usage
        finally:
            stream.close()
            if tag is not None and self._streams.get(tag) is stream:
                del self._streams[tag]
        return Completion("".join(parts), model=str(stream.body.get("model", "")), finish_reason=finish, usage=usage)

    async def models(self, *, refresh: bool = False, deadline: float | None = None) -> list[str]:
        """Model ids the server offers (cached; ``refresh`` asks again)."""
        if self._models is None or refresh:
            body = await self.request("GET", self.config.url, "v1/models", deadline=deadline)
            self._models = parse_models(body, self.name)
        return list(self._models)

    # --- the job verbs ----------------------------------------------------------------------------------------------
    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        if job.kind not in KINDS:
            raise InvalidRequestError(
                f"The LLM backend cannot do {job.kind!r}", backend=self.name, hint=f"Known kinds: {', '.join(KINDS)}."
            )
        req = _parse_request(job.request)
        if job.kind in ("chat", "chat_stream", "structured"):
            req.conversation()
        if job.kind == "shot_list" and not req.scene.strip():
            raise InvalidRequestError("Describe the scene first", backend=self.name)
        if job.kind == "structured":
            _output_model(req.output)
        return None

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        req = _parse_request(job.request)
        opts = {"max_tokens": req.max_tokens, "temperature": req.temperature, "context_window": req.context_window}
        ctx.report_progress(0.0, stage="asking", message=req.model or str(self.config.options.get("model") or ""))
        if job.kind == "models":
            models = await self.models(refresh=True)
            return JobOutputs(text="\n".join(models), data={"models": models})
        if job.kind == "chat":
            ctx.mark_running()
            completion = await self.completion(req.conversation(), req.model, **opts)
            return JobOutputs(text=completion.text, data=completion.data())
        progress = _Progress(ctx, req.max_tokens or int(self.option("max_tokens", DEFAULT_MAX_TOKENS)))
        if job.kind == "chat_stream":
            completion = await self._collect(req.conversation(), req.model, on_text=progress.text, tag=job.id, **opts)
            return JobOutputs(text=completion.text, data=completion.data())
        if job.kind == "shot_list":
            conv = Conversation(system=req.system or SHOT_LIST_SYSTEM).user(req.scene)
            value, completion, tries = await self.structured_answer(
                ShotList, conv, req.model, on_text=progress.count, tag=job.id, **opts
            )
            data = {"shot_list": value.model_dump(mode="json"), "tries": tries, **completion.data()}
            return JobOutputs(text=completion.text, data=data)
        model_cls = _output_model(req.output)
        value, completion, tries = await self.structured_answer(
            model_cls, req.conversation(), req.model, on_text=progress.count, tag=job.id, **opts
        )
        data = {"value": value.model_dump(mode="json"), "output": model_cls.__name__, "tries": tries}
        return JobOutputs(text=completion.text, data={**data, **completion.data()})

    async def cancel(self, job: Job) -> None:
        """The runtime already cancelled the task (which closed its response); close it here too, idempotently."""
        stream = self._streams.pop(job.id, None)
        if stream is not None:
            stream.close()

    async def health(self) -> HealthInfo:
        """Any OpenAI-compatible server: ``GET /v1/models`` answers. A LiteLLM proxy is recognised by its extra
        ``/health/liveliness`` (asked only after the models answered; other servers need not have it)."""
        url = self.config.url
        start = time.perf_counter()
        try:
            models = await self.models(refresh=True, deadline=5.0)
        except MovieDirectorError as exc:
            return HealthInfo(ok=False, url=url, message=str(exc))
        latency = (time.perf_counter() - start) * 1000
        kind = await self._server_kind(url)
        shown = ", ".join(models[:5]) + (" …" if len(models) > 5 else "")
        listed = f"{len(models)} model{'s' if len(models) != 1 else ''}: {shown}" if models else "no models"
        return HealthInfo(
            ok=True,
            url=url,
            message=f"{kind}, {listed}" if kind else listed,
            latency_ms=latency,
            details={"models": models, "server": kind or "openai-compatible"},
        )

    async def _server_kind(self, url: str) -> str:
        """ "LiteLLM" when the server answers LiteLLM's liveliness check, else "" (a plain OpenAI-compatible one)."""
        try:
            body = await self.request(
                "GET", url, "health/liveliness", deadline=3.0, retry=NO_RETRY, expect_json=False, max_bytes=4096
            )
        except MovieDirectorError:
            return ""
        return "LiteLLM" if b"alive" in body.lower() else ""

    async def close(self) -> None:
        for stream in list(self._streams.values()):
            stream.close()
        self._streams.clear()
        await super().close()


class _Progress:
    """Turns streamed text into throttled progress reports (the text itself goes out piece by piece, unthrottled)."""

    def __init__(self, ctx: JobContext, max_tokens: int) -> None:
        self.ctx = ctx
        self.max_tokens = max(max_tokens, 1)
        self.pieces = 0
        self.chars = 0
        self.next_report = 0.0

    def text(self, delta: str) -> None:
        self.ctx.emit_text(delta)
        self.count(delta)

    def count(self, delta: str) -> None:
        if not self.pieces:
            self.ctx.mark_running()
        self.pieces += 1
        self.chars += len(delta)
        now = time.monotonic()
        if now >= self.next_report:
            self.next_report = now + PROGRESS_EVERY
            self.ctx.report_progress(
                min(self.pieces / self.max_tokens, 0.99),
                stage="writing",
                message=f"{self.chars} characters",
                step=self.pieces,
            )


def _parse_request(request: Mapping[str, Any]) -> LlmRequest:
    try:
        return LlmRequest.model_validate(dict(request))
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        raise InvalidRequestError(f"Bad LLM request: {where}: {err.get('msg')}", backend=NAME) from None


def _output_model(output: Any) -> type[BaseModel]:
    if isinstance(output, type) and issubclass(output, BaseModel):
        return output
    if isinstance(output, str) and output in OUTPUT_MODELS:
        return OUTPUT_MODELS[output]
    raise InvalidRequestError(
        f"A structured job needs an output model: one of {', '.join(sorted(OUTPUT_MODELS))} or a pydantic class",
        backend=NAME,
    )


def factory(config: BackendConfig, network: NetworkPolicy) -> LlmClient:
    return LlmClient(config, network)
