"""Wan2GP's MCP server (its supported remote interface) as a :class:`~.transport.VideoTransport`.

Plain Python: this module never imports bpy. Wire facts: ``shared/protocols/wan2gp.md``. A job is
``wangp_generate(source, wait=False)`` then ``wangp_get_job`` polled with backoff (``wait=True`` would block the whole
server and lose the job id on a timeout); start/end images go up through a one-use gallery upload URL and results come
down through a one-use gallery download URL, both at the server root. On this computer a result file that exists may
be copied directly instead. The tool names are read from ``tools/list`` (see :class:`.mcp_protocol.Toolset`).

Backend options (``BackendConfig.options``): ``poll_interval`` (0.5 s), ``max_interval`` (5 s), ``backoff`` (1.5),
``job_timeout`` (3600 s), ``call_timeout`` (30 s, every MCP call), ``event_limit`` (100), ``lost_after`` (10 s: how long
a vanished server may stay away before its job is given up), ``transfer_timeout`` (600 s), ``local_copy`` (True).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ...runtime.backend import BackendConfig, HealthInfo, NetworkPolicy, RemoteStatus
from ...runtime.errors import (
    BackendUnavailableError,
    InvalidRequestError,
    JobFailedError,
    MovieDirectorError,
    NotFoundError,
    ProtocolError,
    RequestTimeoutError,
    ServerError,
)
from ...runtime.jobs import JobOutputs, JobState, OutputFile
from ...runtime.retry import NO_RETRY
from ...runtime.urls import is_loopback
from ..http import MAX_DOWNLOAD_BYTES, HttpBackendClient, download_to, guess_media_type, safe_path, unique_path
from .mcp_protocol import EventFollower, JobSnapshot, Toolset, WanGalleryItem, WanResult, tool_error, tool_payload
from .mcp_session import McpSession
from .schema import ModelSchema

if TYPE_CHECKING:
    from ...runtime.context import JobContext
    from .settings import Wan2gpSettings

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
MAX_OUTPUT_FILES = 16
LIST_PAGE = 10  # Wan2GP caps wangp_list_models at 10 per call


class McpVideoTransport:
    """One Wan2GP MCP server. ``http`` is the client's pooled HTTP plumbing, used for the gallery transfers."""

    def __init__(self, url: str, config: BackendConfig, network: NetworkPolicy, *, http: HttpBackendClient) -> None:
        self.url = url.rstrip("/")
        self.config = config
        self.network = network
        self.http = http
        self.backend = config.name
        parts = urlsplit(self.url)
        self.root = f"{parts.scheme}://{parts.netloc}"
        opts = config.options
        self.poll_interval = float(opts.get("poll_interval", 0.5))
        self.max_interval = float(opts.get("max_interval", 5.0))
        self.backoff = max(1.0, float(opts.get("backoff", 1.5)))
        self.job_timeout = float(opts.get("job_timeout", 3600.0))
        self.call_timeout = float(opts.get("call_timeout", 30.0))
        self.event_limit = int(opts.get("event_limit", 100))
        self.lost_after = float(opts.get("lost_after", 10.0))
        self.transfer_timeout = float(opts.get("transfer_timeout", 600.0))
        self.local_copy = bool(opts.get("local_copy", True))
        self.max_download_bytes = int(opts.get("max_download_bytes", MAX_DOWNLOAD_BYTES))
        self.session = McpSession(self.url, backend=self.backend, headers=http.headers())
        self._toolset: Toolset | None = None
        self._first: dict[str, JobSnapshot] = {}
        self._models: dict[str, str] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # --- calls --------------------------------------------------------------------------------------------------------
    async def tools(self, *, refresh: bool = False) -> Toolset:
        if self._toolset is None or refresh:
            self.network.check(self.url, self.backend)
            tools = await self.session.list_tools(timeout=self.call_timeout)
            self._toolset = Toolset.from_tools(tools, self.url, self.backend)
        return self._toolset

    async def op(self, action: str, arguments: dict[str, Any], *, model: str = "") -> Any:
        """Call one operation in the server's flavour; its payload, or the tool's failure as a clear error."""
        toolset = await self.tools()
        if not toolset.has(action):
            raise ProtocolError(
                f"Wan2GP at {self.url} has no wangp_{action} tool, which this needs",
                backend=self.backend,
                hint="Update Wan2GP to a version with gallery transfers and job tools.",
            )
        tool, args = toolset.route(action, arguments)
        self.network.check(self.url, self.backend)
        result = await self.session.call_tool(tool, args, timeout=self.call_timeout)
        is_error, payload, text = tool_payload(result)
        if is_error:
            raise tool_error(tool, text, url=self.url, backend=self.backend, model=model)
        return payload

    async def _snapshot(self, action: str, arguments: dict[str, Any], model: str = "") -> JobSnapshot:
        payload = await self.op(action, arguments, model=model)
        return JobSnapshot.parse(payload, url=self.url, backend=self.backend)

    # --- submit -----------------------------------------------------------------------------------------------------
    async def submit(self, settings: Wan2gpSettings, ctx: JobContext) -> str:
        await self.tools()
        media: dict[str, str] = {}
        for name in ("image_start", "image_end"):
            path = getattr(settings, name)
            if path:
                ctx.report_progress(0.0, stage="uploading", message=Path(path).name)
                media[name] = await self.upload(Path(path))
        source = settings.to_wan2gp(image_start=media.get("image_start"), image_end=media.get("image_end"))
        ctx.report_progress(0.0, stage="sending", message=self.url)
        attempts = 1 + self.config.retry.max_retries
        for attempt in range(attempts):
            try:
                snapshot = await self._start(source, settings.model_type)
                break
            except ServerError as exc:
                if not exc.retryable or "busy" not in exc.message or attempt == attempts - 1:
                    raise
                ctx.log(f"Wan2GP is busy with another generation; trying again ({attempt + 1}/{attempts - 1})")
                await asyncio.sleep(self.config.retry.delay(attempt))
        self._first[snapshot.job_id] = snapshot
        self._models[snapshot.job_id] = settings.model_type
        return snapshot.job_id

    async def _start(self, source: dict[str, Any], model: str) -> JobSnapshot:
        """``wangp_generate``, shielded: if our job is cancelled while the call is in flight, the job the server
        may have started is cancelled there as soon as its id is known."""
        args = {"source": source, "wait": False, "event_limit": self.event_limit}
        call = asyncio.ensure_future(self._snapshot("generate", args, model))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            self._spawn(self._cancel_orphan(call))
            raise

    async def _cancel_orphan(self, call: asyncio.Future[JobSnapshot]) -> None:
        try:
            snapshot = await call
        except Exception:
            return
        await self.cancel(snapshot.job_id)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- files ------------------------------------------------------------------------------------------------------
    def _transfer_path(self, url: Any, what: str) -> str:
        """A server-given transfer URL as a path under our server's root; never another host."""
        if not isinstance(url, str) or not url.strip() or len(url) > 2000:
            raise ProtocolError(f"Wan2GP gave no usable URL for the {what}", backend=self.backend)
        parts = urlsplit(url.strip())
        if (parts.scheme or parts.netloc) and f"{parts.scheme}://{parts.netloc}" != self.root:
            raise ProtocolError(
                f"Wan2GP asked to move the {what} through another server ({parts.netloc}); refused",
                backend=self.backend,
            )
        path = parts.path.lstrip("/")
        if not path or ".." in path.split("/"):
            raise ProtocolError(f"Wan2GP gave an unusable URL for the {what}", backend=self.backend)
        return path + (f"?{parts.query}" if parts.query else "")

    async def upload(self, path: Path) -> str:
        """Send a local file to the server's gallery; returns the id Wan2GP settings refer to it by."""
        try:
            size = path.stat().st_size
        except OSError:
            raise InvalidRequestError(f"The image {path} cannot be read", backend=self.backend) from None
        ticket = await self.op("create_gallery_upload", {"filename": path.name})
        if not isinstance(ticket, dict):
            raise ProtocolError("Wan2GP's upload ticket is not an object", backend=self.backend)
        limit = ticket.get("max_bytes")
        limit = int(limit) if isinstance(limit, int) and limit > 0 else MAX_UPLOAD_BYTES
        if size > min(limit, MAX_UPLOAD_BYTES):
            raise InvalidRequestError(
                f"{path.name} is too large for Wan2GP ({size} bytes, limit {limit})", backend=self.backend
            )
        target = self._transfer_path(ticket.get("upload_url"), "upload")
        method = str(ticket.get("method") or "PUT").upper()
        if method not in ("PUT", "POST"):
            raise ProtocolError(f"Wan2GP asked for an upload by {method}", backend=self.backend)
        data = await asyncio.to_thread(path.read_bytes)
        answer = await self.http.request(
            method, self.root, target, data=data, retry=NO_RETRY, deadline=self.transfer_timeout
        )
        ident = None
        if isinstance(answer, dict):
            ident = answer.get("gallery_id") or answer.get("media_id") or answer.get("id")
        if not isinstance(ident, str) or not ident:
            raise ProtocolError(f"Wan2GP did not say where it stored {path.name}", backend=self.backend)
        return ident

    async def _download(self, item_id: str, fallback_name: str, folder: Path, key: str) -> OutputFile:
        ticket = await self.op("create_gallery_download", {key: item_id})
        if not isinstance(ticket, dict):
            raise ProtocolError("Wan2GP's download ticket is not an object", backend=self.backend)
        target_url = self._transfer_path(ticket.get("download_url"), "download")
        name = ticket.get("filename") if isinstance(ticket.get("filename"), str) else fallback_name
        target = unique_path(safe_path(folder, name or fallback_name or "video.mp4"))
        self.network.check(self.root, self.backend)
        try:
            async with asyncio.timeout(self.transfer_timeout):
                async with self.http.session(self.root).get(target_url) as resp:
                    if resp.status >= 400:
                        raise self.http.status_error(resp.status, await resp.read(), resp.headers)
                    size, _ = await download_to(resp, target, backend=self.backend, max_bytes=self.max_download_bytes)
        except TimeoutError:
            raise RequestTimeoutError(
                f"Downloading {target.name} from {self.root} took too long", backend=self.backend
            ) from None
        except MovieDirectorError:
            raise
        except Exception as exc:
            raise BackendUnavailableError(
                f"Downloading {target.name} from {self.root} failed: {type(exc).__name__}", backend=self.backend
            ) from exc
        return OutputFile(path=str(target), media_type=_media_type(target.name, ticket), name=target.name, size=size)

    def _local_file(self, path: str) -> Path | None:
        """A result file to copy directly: only from a server on this computer, only an existing regular file."""
        if not self.local_copy or not is_loopback(self.url) or not path or not os.path.isabs(path):
            return None
        try:
            info = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode) or info.st_size > self.max_download_bytes:
            return None
        if not guess_media_type(path, "").startswith(("video/", "image/", "audio/")):
            return None  # only media files, whatever path the server names
        return Path(path)

    async def _copy(self, source: Path, folder: Path) -> OutputFile:
        target = unique_path(safe_path(folder, source.name))

        def copy() -> int:
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=folder)
            os.close(fd)
            try:
                shutil.copyfile(source, tmp)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return target.stat().st_size

        size = await asyncio.to_thread(copy)
        return OutputFile(path=str(target), media_type=_media_type(target.name, {}), name=target.name, size=size)

    async def _collect(self, result: WanResult, ctx: JobContext) -> list[OutputFile]:
        files = result.generated_files[:MAX_OUTPUT_FILES]
        items = list(result.gallery_items)
        if not files:
            files = [i.path for i in items if i.path][:MAX_OUTPUT_FILES]
        if not files and not items:
            raise JobFailedError("Wan2GP reported success but produced no file", backend=self.backend)
        ctx.report_progress(0.99, stage="downloading", step=0, total=0)
        folder = ctx.output_dir.resolve()
        key = (await self.tools()).media_key
        outputs = []
        for index, path in enumerate(files or [""]):
            item = _item_for(path, index, items, len(files))
            local = self._local_file(path)
            if local is not None:
                outputs.append(await self._copy(local, folder))
            elif item is not None and item.ident:
                outputs.append(await self._download(item.ident, Path(path).name or item.filename, folder, key))
            else:
                raise ProtocolError(
                    f"Wan2GP made {Path(path).name or 'a file'} but offers no way to fetch it",
                    backend=self.backend,
                    hint="Update Wan2GP (gallery downloads), or run it on this computer.",
                )
        return outputs

    # --- following a job --------------------------------------------------------------------------------------------
    async def wait(self, remote_id: str, ctx: JobContext) -> JobOutputs:
        follower = EventFollower(ctx)
        snapshot = self._first.pop(remote_id, None)
        model = self._models.pop(remote_id, "")
        interval = self.poll_interval
        end = time.monotonic() + self.job_timeout
        lost_since: float | None = None
        done_without_result = 0
        while True:
            if snapshot is not None:
                changed = follower.feed(snapshot.events)
                if follower.started or changed:
                    ctx.mark_running()
                if snapshot.done and snapshot.result is not None:
                    break
                if snapshot.done:
                    done_without_result += 1
                    if done_without_result > 20:
                        raise ProtocolError("Wan2GP says the job ended but gives no result", backend=self.backend)
                interval = self.poll_interval if changed else min(interval * self.backoff, self.max_interval)
            if time.monotonic() > end:  # the client then stops the job on the server
                raise JobFailedError(
                    f"Wan2GP did not finish the video within {self.job_timeout:.0f} s; it was asked to stop",
                    backend=self.backend,
                    retryable=True,
                )
            await asyncio.sleep(interval if snapshot is not None else min(interval, 0.5))
            try:
                snapshot = await self._snapshot("get_job", {"job_id": remote_id, "event_limit": self.event_limit})
                lost_since = None
            except NotFoundError:
                raise JobFailedError(
                    f"Wan2GP at {self.url} no longer knows the job (it restarted); the video was lost",
                    backend=self.backend,
                    retryable=True,
                    hint="Generate it again.",
                ) from None
            except (BackendUnavailableError, RequestTimeoutError) as exc:
                now = time.monotonic()
                lost_since = lost_since or now
                if now - lost_since >= self.lost_after:
                    raise BackendUnavailableError(
                        f"Wan2GP at {self.url} went away during the job and did not come back within "
                        f"{self.lost_after:.0f} s ({exc.message}); the video was lost",
                        backend=self.backend,
                        hint="Restart Wan2GP, then generate again.",
                    ) from None
                ctx.report_progress(message=f"lost Wan2GP, reconnecting: {exc.message}"[:200])
                snapshot = None
        return await self._finish(snapshot, ctx, model)

    async def _finish(self, snapshot: JobSnapshot, ctx: JobContext, model: str) -> JobOutputs:
        result = snapshot.result
        assert result is not None
        if result.cancelled:
            raise JobFailedError(
                "The job was stopped on the Wan2GP server (from its own window?)", backend=self.backend
            )
        if not result.success:
            raise _failure(result, model, self.backend)
        files = await self._collect(result, ctx)
        return JobOutputs(
            files=tuple(files),
            data={"remote_id": snapshot.job_id, "server": self.url, "generated_files": result.generated_files[:16]},
        )

    async def cancel(self, remote_id: str) -> None:
        toolset = await self.tools()
        if not toolset.has("cancel_job"):
            log.warning("wan2gp at %s has no cancel tool; job %s runs to its end", self.url, remote_id)
            return
        await self.op("cancel_job", {"job_id": remote_id})

    async def status(self, remote_id: str) -> RemoteStatus:
        try:
            snapshot = await self._snapshot("get_job", {"job_id": remote_id, "event_limit": 0})
        except NotFoundError as exc:
            return RemoteStatus(state=None, message=exc.message)
        if not snapshot.done or snapshot.result is None:
            return RemoteStatus(state=JobState.RUNNING)
        if snapshot.result.cancelled:
            return RemoteStatus(state=JobState.CANCELLED)
        return RemoteStatus(state=JobState.SUCCEEDED if snapshot.result.success else JobState.FAILED)

    # --- models, health, close --------------------------------------------------------------------------------------
    async def model_schema(self, model_type: str) -> ModelSchema | None:
        """From ``wangp_get_model_schema``, ``wangp_get_default_settings`` and ``wangp_list_loras`` (None when the
        server lacks the first two: an older Wan2GP)."""
        toolset = await self.tools()
        if not (toolset.has("get_model_schema") and toolset.has("get_default_settings")):
            return None
        args = {"model_type": model_type}
        schema = await self.op("get_model_schema", args, model=model_type)
        if schema is None:  # Wan2GP answers None for a model it does not have
            raise InvalidRequestError(
                f"Wan2GP at {self.url} has no model {model_type!r}",
                backend=self.backend,
                details={"model_type": model_type},
                hint="Pick one of the server's models (refresh the model list).",
            )
        defaults = await self.op("get_default_settings", args, model=model_type)
        loras = await self.op("list_loras", args, model=model_type) if toolset.has("list_loras") else None
        return ModelSchema.parse(model_type, schema, defaults, loras, url=self.url, backend=self.backend)

    async def list_models(self) -> list[str]:
        toolset = await self.tools()
        names = toolset.arg_names("list_models")
        paged = "limit" in names and "offset" in names
        models: list[str] = []
        offset = 0
        for _ in range(100):  # at most 1000 models
            args: dict[str, Any] = {"limit": LIST_PAGE, "offset": offset} if paged else {}
            page = await self.op("list_models", args)
            records = (page.get("models") or page.get("items") or []) if isinstance(page, dict) else page
            if not isinstance(records, list):
                raise ProtocolError("Wan2GP's model list is not a list", backend=self.backend)
            for record in records:
                name = (record.get("model_type") or record.get("id")) if isinstance(record, dict) else record
                if isinstance(name, str) and name and len(name) <= 200 and name not in models:
                    models.append(name)
            if not paged or len(records) < LIST_PAGE:
                break
            offset += len(records)
        return models

    async def health(self) -> HealthInfo:
        start = time.perf_counter()
        try:
            toolset = await self.tools(refresh=True)
        except MovieDirectorError as exc:
            return HealthInfo(ok=False, url=self.url, message=str(exc))
        latency = (time.perf_counter() - start) * 1000
        name = self.session.server_name or "WanGP"
        version = self.session.server_version
        return HealthInfo(
            ok=True,
            url=self.url,
            message=f"{name} over MCP ({len(toolset.params)} tools, MCP server {version or 'unknown'})",
            version=version,
            latency_ms=latency,
            details={"flavour": "session" if toolset.session_tool else toolset.media_key},
        )

    async def close(self) -> None:
        tasks = list(self._background)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        await self.session.close()


def _item_for(path: str, index: int, items: list[WanGalleryItem], count: int) -> WanGalleryItem | None:
    for item in items:
        if path and item.path == path:
            return item
    if path:
        base = Path(path).name
        for item in items:
            if item.path and Path(item.path).name == base:
                return item
    return items[index] if len(items) == count and index < len(items) else None


def _media_type(name: str, ticket: dict[str, Any]) -> str:
    guessed = guess_media_type(name, "")
    if guessed:
        return guessed
    kind = str(ticket.get("media_type") or "video")
    return {"video": "video/mp4", "image": "image/png", "audio": "audio/wav"}.get(kind, "application/octet-stream")


def _failure(result: WanResult, model: str, backend: str) -> MovieDirectorError:
    """A failed generation, in words: validation problems are the request's fault, the rest the server's."""
    errors = result.errors or []
    text = "; ".join(e.message.strip()[:300] for e in errors if e.message.strip()) or "no reason given"
    stages = {(e.stage or "").lower() for e in errors}
    if "validation" in stages:
        about = f" for model {model!r}" if model else ""
        return InvalidRequestError(
            f"Wan2GP refused the settings{about}: {text}",
            backend=backend,
            details={"errors": [e.model_dump() for e in errors[:10]], "model_type": model},
        )
    return JobFailedError(
        f"Wan2GP failed while generating: {text}",
        backend=backend,
        details={"errors": [e.model_dump() for e in errors[:10]]},
        hint="Its console says more; lower the resolution or length if it ran out of memory.",
    )
