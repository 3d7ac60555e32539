"""The Wan2GP client: text/image-to-video on one or more Wan2GP servers, one generation per server at a time.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/wan2gp.md``. Each server URL gets a transport:
a path ending in ``/mcp`` (or the option ``transport: "mcp"``) speaks Wan2GP's MCP server (:mod:`.mcp_transport`);
anything else (or ``transport: "gradio"``) a Wan2GP-compatible Gradio app (``.gradio_transport``, imported only then).

Wan2GP refuses a second generation while one runs, so every server has an :class:`asyncio.Lock`: a job takes a free
server (several URLs: the first free one that is not known to be down), or waits locally in the stage
"waiting for the server". The lock is held until the server's job has really ended: a cancelled or abandoned job keeps
its server until the server says the job stopped, so the next job never collides with it.

Job kinds:
    "video":  {"prompt": "...", "model_type": "t2v_1.3B", "video_length": 81, ..., "image_start": "/local/a.png"}
              any setting the model declares (:mod:`.schema`: its default settings, start/end images, LoRAs), by
              Wan2GP's names, plus ``loras: [{"name", "multiplier"}]`` and ``duration: "5s"``; no ``model_type``:
              the server's first model (with a start/end image: its first model that takes one). A "title" is
              kept for the job list. -> data: frames, fps (the model's), model_type
    "models": {"refresh": False, "server": "<url>"}  -> outputs.data["models"]: model types, cached for ``models_ttl``
    "schema": {"model_type": "...", "refresh": False} -> outputs.data: what the model declares
              (:meth:`.schema.ModelSchema.summary`: fps, frame limits, start/end image, LoRAs, settings, defaults)

Every video request is checked against its model's schema before it is sent (cached per server and model for
``models_ttl``): a setting the model does not declare, or a value of the wrong type or range, is an error naming it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...runtime.backend import BackendConfig, HealthInfo, NetworkPolicy, RemoteStatus
from ...runtime.errors import BackendUnavailableError, InvalidRequestError, MovieDirectorError
from ...runtime.jobs import Job, JobOutputs
from ..http import HttpBackendClient
from .schema import MEDIA_SETTINGS, ModelSchema
from .settings import Wan2gpSettings, parse_settings

if TYPE_CHECKING:
    from ...runtime.context import JobContext
    from .transport import VideoTransport

log = logging.getLogger(__name__)

NAME = "wan2gp"
WAITING = "waiting for the server"
#: How long a server that failed to answer is passed over while others are free.
DOWN_FOR = 15.0
_NOT_SETTINGS = ("title",)


@dataclass(eq=False)
class Server:
    """One Wan2GP server: its transport, its one-job lock and its cached model list."""

    url: str
    transport: VideoTransport
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    down_until: float = 0.0
    models: list[str] | None = None
    models_at: float = 0.0
    schemas: dict[str, tuple[ModelSchema | None, float]] = field(default_factory=dict)


@dataclass(eq=False)
class _Running:
    server: Server
    remote_id: str
    settings: Wan2gpSettings
    schema: ModelSchema | None


class Wan2gpClient(HttpBackendClient):
    name = NAME

    def __init__(self, config: BackendConfig, network: NetworkPolicy | None = None) -> None:
        super().__init__(config, network)
        opts = config.options
        self.models_ttl = float(opts.get("models_ttl", 300.0))
        #: How long a cancelled job may keep its server while the server stops it.
        self.settle_timeout = float(opts.get("settle_timeout", 60.0))
        self._servers: dict[str, Server] = {}
        self._running: dict[str, _Running] = {}
        self._settling: dict[str, tuple[asyncio.Task[None], _Running]] = {}
        self._freed: asyncio.Event | None = None

    # --- servers and transports -------------------------------------------------------------------------------------
    def transport_kind(self, url: str) -> str:
        choice = str(self.config.options.get("transport", "auto")).lower()
        if choice in ("mcp", "gradio"):
            return choice
        return "mcp" if urlsplit(url).path.rstrip("/").endswith("/mcp") else "gradio"

    def server(self, url: str) -> Server:
        server = self._servers.get(url)
        if server is None:
            server = self._servers[url] = Server(url, self._make_transport(url))
        return server

    def _make_transport(self, url: str) -> VideoTransport:
        if self.transport_kind(url) == "mcp":
            from .mcp_transport import McpVideoTransport

            return McpVideoTransport(url, self.config, self.network, http=self)
        try:
            from .gradio_transport import GradioVideoTransport
        except ImportError as exc:
            raise InvalidRequestError(
                f"{url} is not a Wan2GP MCP URL (ending in /mcp) and the Gradio transport cannot load ({exc})",
                backend=self.name,
                hint="Use Wan2GP's MCP server, e.g. http://127.0.0.1:7866/mcp.",
            ) from None
        return GradioVideoTransport(url, self.config, self.network)  # type: ignore[no-any-return]

    def _urls(self) -> list[str]:
        return list(self.config.urls) or [self.config.url]

    async def _acquire(self, ctx: JobContext, exclude: set[str]) -> Server:
        """A free server, its lock taken; waits locally while every server is busy."""
        waited = False
        while True:
            now = time.monotonic()
            servers = [self.server(u) for u in self._urls() if u not in exclude]
            if not servers:
                raise BackendUnavailableError("No Wan2GP server answers", backend=self.name)
            for server in sorted(servers, key=lambda s: s.down_until > now):
                if not server.lock.locked():
                    await server.lock.acquire()  # free: returns at once
                    return server
            if not waited:
                waited = True
                ctx.report_progress(0.0, stage=WAITING, message="another video is being made")
            if self._freed is None:
                self._freed = asyncio.Event()
            await self._freed.wait()

    def _release(self, server: Server) -> None:
        if server.lock.locked():
            server.lock.release()
        freed, self._freed = self._freed, None
        if freed is not None:
            freed.set()

    # --- the job verbs ----------------------------------------------------------------------------------------------
    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        if job.kind in ("models", "schema"):
            return None
        if job.kind != "video":
            raise InvalidRequestError(
                f"Wan2GP jobs are 'video', 'models' or 'schema', not {job.kind!r}", backend=self.name
            )
        requested = self.settings(job.request)
        tried: set[str] = set()
        while True:
            server = await self._acquire(ctx, tried)
            try:
                settings, schema = await self._checked(requested, server)
                remote_id = await server.transport.submit(settings, ctx)
            except BackendUnavailableError as exc:
                self._release(server)
                server.down_until = time.monotonic() + DOWN_FOR
                self.report_state("disconnected", str(exc))
                tried.add(server.url)
                if len(tried) < len(self._urls()):
                    ctx.log(f"{server.url} does not answer; trying another server")
                    continue
                raise
            except BaseException:
                self._release(server)
                raise
            break
        server.down_until = 0.0
        self.report_state("connected", server.url)
        job.server = server.url
        self._running[job.id] = _Running(server, remote_id, settings, schema)
        return remote_id

    async def _checked(self, settings: Wan2gpSettings, server: Server) -> tuple[Wan2gpSettings, ModelSchema | None]:
        """The settings with their model named (the server's first when none was asked for), checked against what
        that model declares."""
        if not settings.model_type:
            settings = settings.with_model(await self._default_model(settings, server.url))
        schema = await self.schema(settings.model_type, url=server.url)
        if schema is not None:
            schema.check(settings.wan2gp_settings(), backend=self.name)
        elif settings.extra:
            raise InvalidRequestError(
                f"Wan2GP at {server.url} does not describe its models, so only the common settings can be sent, "
                f"not {', '.join(sorted(settings.extra)[:5])}",
                backend=self.name,
                details={"problems": sorted(settings.extra)},
            )
        return settings, schema

    async def _default_model(self, settings: Wan2gpSettings, url: str) -> str:
        """The server's first model; with a start/end image, its first model that takes them."""
        models = await self.models(url=url)
        if not models:
            raise InvalidRequestError(f"Wan2GP at {url} lists no models", backend=self.name)
        needs = {need for key, need in MEDIA_SETTINGS.items() if getattr(settings, key)}
        if not needs:
            return models[0]
        for model in models:
            schema = await self.schema(model, url=url)
            if schema is None or needs <= schema.media:
                return model
        raise InvalidRequestError(
            f"None of the models on Wan2GP at {url} takes a {' and '.join(sorted(needs))} image",
            backend=self.name,
            hint="Generate from text only, or install an image-to-video model in Wan2GP.",
        )

    async def schema(self, model_type: str, *, url: str | None = None, refresh: bool = False) -> ModelSchema | None:
        """What ``model_type`` declares on the server at ``url`` (cached for ``models_ttl`` seconds)."""
        server = self.server(url or self._urls()[0])
        cached = server.schemas.get(model_type)
        if cached is not None and not refresh and time.monotonic() - cached[1] < self.models_ttl:
            return cached[0]
        schema = await server.transport.model_schema(model_type)
        server.schemas[model_type] = (schema, time.monotonic())
        return schema

    def settings(self, request: dict[str, Any]) -> Wan2gpSettings:
        """The request's settings, validated, with every local image checked before anything is sent."""
        settings = parse_settings({k: v for k, v in request.items() if k not in _NOT_SETTINGS}, self.name)
        for name in ("image_start", "image_end"):
            path = getattr(settings, name)
            if path and not Path(path).is_file():
                label = "start" if name == "image_start" else "end"
                raise InvalidRequestError(f"The {label} image {path} does not exist", backend=self.name)
        return settings

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        if job.kind == "models":
            url = str(job.request.get("server") or self._urls()[0])
            models = await self.models(refresh=bool(job.request.get("refresh")), url=url)
            return JobOutputs(data={"models": models, "server": url})
        if job.kind == "schema":
            return await self._schema_job(job)
        run = self._running.get(job.id)
        if run is None:
            raise InvalidRequestError(f"job {job.id} was never sent to Wan2GP", backend=self.name)
        server_free = False
        try:
            outputs = await run.server.transport.wait(run.remote_id, ctx)
            server_free = True
        except BackendUnavailableError as exc:  # the server went away: there is nothing left to stop on it
            server_free = True
            run.server.down_until = time.monotonic() + DOWN_FOR
            self.report_state("disconnected", str(exc))
            raise
        finally:
            self._running.pop(job.id, None)
            if server_free:
                self._release(run.server)
            else:  # cancelled, failed or timed out: the server is freed once it says the job has ended
                task = asyncio.get_running_loop().create_task(self._settle(job.id, run))
                self._settling[job.id] = (task, run)
        fps = run.settings.fps(run.schema.fps if run.schema else None)
        default_length = run.schema.defaults.get("video_length") if run.schema else None
        frames = run.settings.frames(fps) or (default_length if isinstance(default_length, int) else None)
        data = {**outputs.data, "frames": frames, "fps": fps, "model_type": run.settings.model_type}
        return JobOutputs(files=outputs.files, text=outputs.text, data=data)

    async def _schema_job(self, job: Job) -> JobOutputs:
        url = str(job.request.get("server") or self._urls()[0])
        model = str(job.request.get("model_type") or "").strip()
        if not model:
            models = await self.models(url=url)
            if not models:
                raise InvalidRequestError(f"Wan2GP at {url} lists no models", backend=self.name)
            model = models[0]
        schema = await self.schema(model, url=url, refresh=bool(job.request.get("refresh")))
        if schema is None:
            return JobOutputs(data={"model_type": model, "server": url, "described": False})
        return JobOutputs(data={**schema.summary(), "server": url, "described": True})

    async def _settle(self, job_id: str, run: _Running) -> None:
        """Stop the server's job if it still runs and hold its server until it has ended (bounded)."""
        transport = run.server.transport
        try:
            async with asyncio.timeout(self.settle_timeout):
                asked = False
                delay = 0.1
                while True:
                    status = await transport.status(run.remote_id)
                    if status.state is None or status.state.terminal:
                        return
                    if not asked:
                        asked = True
                        await transport.cancel(run.remote_id)
                    await asyncio.sleep(delay)
                    delay = min(delay * 1.5, 2.0)
        except (MovieDirectorError, TimeoutError) as exc:
            log.info("wan2gp: could not confirm that %s stopped job %s: %s", run.server.url, run.remote_id, exc)
        finally:
            self._settling.pop(job_id, None)
            self._release(run.server)

    async def cancel(self, job: Job) -> None:
        """Ask the server to stop the job now (``_settle`` also does, and holds the server until it has)."""
        run = self._running.get(job.id) or (self._settling[job.id][1] if job.id in self._settling else None)
        if run is not None:
            await run.server.transport.cancel(run.remote_id)

    async def get_status(self, job: Job) -> RemoteStatus:
        run = self._running.get(job.id)
        if run is not None:
            return await run.server.transport.status(run.remote_id)
        if job.server and job.remote_id:
            return await self.server(job.server).transport.status(job.remote_id)
        return RemoteStatus(state=None, message="the job was never sent to Wan2GP")

    # --- models, health, close --------------------------------------------------------------------------------------
    async def models(self, *, refresh: bool = False, url: str | None = None) -> list[str]:
        """The server's model types, cached for ``models_ttl`` seconds (``refresh`` asks again)."""
        server = self.server(url or self._urls()[0])
        fresh = server.models is not None and time.monotonic() - server.models_at < self.models_ttl
        if refresh or not fresh:
            server.models = await server.transport.list_models()
            server.models_at = time.monotonic()
        return list(server.models or [])

    async def health(self) -> HealthInfo:
        urls = self._urls()
        results = await asyncio.gather(*(self.server(u).transport.health() for u in urls), return_exceptions=True)
        infos = [
            r if isinstance(r, HealthInfo) else HealthInfo(ok=False, url=u, message=f"{type(r).__name__}: {r}")
            for u, r in zip(urls, results, strict=True)
        ]
        good = [i for i in infos if i.ok]
        if len(infos) == 1:
            return infos[0]
        message = f"{len(good)} of {len(infos)} Wan2GP servers answer" + (f"; {good[0].message}" if good else "")
        return HealthInfo(
            ok=bool(good),
            url=urls[0],
            message=message,
            version=good[0].version if good else "",
            latency_ms=min((i.latency_ms for i in good if i.latency_ms is not None), default=None),
            details={"servers": [i.model_dump() for i in infos]},
        )

    async def close(self) -> None:
        settling = [task for task, _ in self._settling.values()]
        for task in settling:
            task.cancel()
        if settling:
            await asyncio.wait(settling, timeout=1.0)
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            try:
                await server.transport.close()
            except Exception:
                log.exception("closing the Wan2GP transport for %s failed", server.url)
        await super().close()


def factory(config: BackendConfig, network: NetworkPolicy) -> Wan2gpClient:
    return Wan2gpClient(config, network)
