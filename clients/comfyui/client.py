"""The ComfyUI client: preflight, submit with our own prompt id, live progress and previews, outputs downloaded
safely, cancel in every phase, reconnect and reconcile, several servers per backend.

Plain Python: this module never imports bpy. Wire facts: ``docs/protocols/comfyui.md``; message models and parsers:
:mod:`.protocol` (shared with the emulator); one server's socket and prompts: :mod:`.connection`; one prompt's
progress and reports: :mod:`.tracking`.

A job's ``request``:
    {"template": "txt2img", "params": {"prompt": "...", "steps": 20}, "preset": "draft",
     "images": {"input_image": "/path/to/local.png"}}     # uploaded, then passed as the parameter's value
     + "masks": {"input_image": "/path/to/mask.png"}       # optional: the mask's alpha becomes the image's (inpainting)
or  {"workflow": {<API-format graph>}}
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...runtime.backend import BackendConfig, HealthInfo, NetworkPolicy, RemoteStatus
from ...runtime.errors import (
    BackendUnavailableError,
    InvalidRequestError,
    JobFailedError,
    MovieDirectorError,
    ProtocolError,
    ServerError,
)
from ...runtime.jobs import Job, JobOutputs, JobState, OutputFile
from ...runtime.retry import NO_RETRY, call_with_retry
from ..http import HttpBackendClient, download_to, guess_media_type, safe_path
from .connection import ServerConnection
from .models import MODEL_KINDS, last_choices, model_lists, remember_choice
from .outputs import plan_outputs
from .protocol import (
    FileRef,
    PromptErrorResponse,
    PromptResponse,
    QueueState,
    UploadResponse,
    parse_body,
    parse_history,
)
from .templates.requirements import missing_in_workflow
from .templates.schema import is_output_type
from .tracking import Outcome, PromptTracker

if TYPE_CHECKING:
    from ...runtime.context import JobContext

log = logging.getLogger(__name__)

NAME = "comfyui"
#: How long one server may stay skipped after it failed to answer before it is probed again.
DOWN_FOR = 15.0


class ComfyRequest(BaseModel):
    """What a ComfyUI job asks for."""

    model_config = ConfigDict(extra="ignore")

    template: str | None = None
    workflow: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    preset: str | None = None
    images: dict[str, str] = Field(default_factory=dict)
    #: Per image parameter, a PNG whose alpha replaces the uploaded image's alpha (transparent = repaint), as
    #: ComfyUI's mask editor does through ``/upload/mask``; LoadImage's MASK output is then the area to repaint.
    masks: dict[str, str] = Field(default_factory=dict)
    title: str = ""


class ComfyClient(HttpBackendClient):
    name = NAME

    def __init__(self, config: BackendConfig, network: NetworkPolicy | None = None) -> None:
        super().__init__(config, network)
        #: Prefix of the client ids: every connection takes a fresh id under it (see :mod:`.connection`); the add-on
        #: passes its installation id (option ``client_id``) so a server's queue shows whose prompts they are.
        self.client_id_prefix = str(config.options.get("client_id") or uuid.uuid4().hex[:12])
        self._conns: dict[str, ServerConnection] = {}
        self._job_conn: dict[str, ServerConnection] = {}

    def deadline(self, seconds: float) -> float:
        """A call's own deadline, never longer than the retry policy's total deadline."""
        policy = self.config.retry.deadline
        return seconds if policy is None else min(seconds, policy)

    # --- servers ----------------------------------------------------------------------------------------------------
    def connection(self, url: str) -> ServerConnection:
        conn = self._conns.get(url)
        if conn is None:
            conn = self._conns[url] = ServerConnection(self, url, self.client_id_prefix)
        return conn

    async def _probe(self, conn: ServerConnection) -> int:
        """Queue length of a server (from its socket when connected), or raise when it does not answer."""
        if conn.connected.is_set():
            return conn.queue_remaining
        body = await self.request("GET", conn.url, "prompt", deadline=self.deadline(3.0))
        return int(((body or {}).get("exec_info") or {}).get("queue_remaining", 0))

    async def pick_server(self) -> ServerConnection:
        """The reachable server with the fewest queued prompts; servers that just failed are skipped for a while."""
        urls = list(self.config.urls) or [self.config.url]
        if len(urls) == 1:
            return self.connection(urls[0])
        now = time.monotonic()
        candidates = [self.connection(u) for u in urls if self.connection(u).down_until <= now]
        if not candidates:
            candidates = [self.connection(u) for u in urls]
        results = await asyncio.gather(*(self._probe(c) for c in candidates), return_exceptions=True)
        best: tuple[int, ServerConnection] | None = None
        for conn, result in zip(candidates, results, strict=True):
            if isinstance(result, BaseException):
                conn.down_until = time.monotonic() + DOWN_FOR
                conn.last_error = str(result)
                continue
            load = result + sum(1 for t in conn.trackers.values() if not t.done)
            if best is None or load < best[0]:
                best = (load, conn)
        if best is None:
            raise BackendUnavailableError(f"None of the ComfyUI servers answers ({', '.join(urls)})", backend=self.name)
        return best[1]

    async def preflight(self, conn: ServerConnection, *, refresh: bool = False) -> None:
        """System stats, the event socket and the node catalogue, fetched once per server (again on ``refresh``)."""
        if conn.system_stats is None or refresh:
            conn.system_stats = await self.request("GET", conn.url, "system_stats", deadline=self.deadline(10.0))
        await conn.wait_connected(timeout=self.deadline(10.0))
        if conn.object_info is None or refresh:

            async def fetch() -> dict[str, Any]:
                info = await self.request("GET", conn.url, "object_info", deadline=self.deadline(30.0))
                if not isinstance(info, dict):
                    raise ProtocolError("/object_info is not a JSON object", backend=self.name)
                return info

            conn.object_info = await self.cache.get_or_fetch(f"comfyui:{conn.url}:object_info", fetch, refresh=refresh)

    async def object_info(self, url: str | None = None) -> dict[str, Any]:
        conn = self.connection(url or self.config.url)
        await self.preflight(conn)
        assert conn.object_info is not None
        return conn.object_info

    # --- templates ------------------------------------------------------------------------------------------------
    def catalog(self) -> Any:
        """The catalogue shared with the sidebar (``templates.shared``): a changed templates folder shows at once."""
        from .templates.shared import catalog_for

        return catalog_for(self.config.options.get("templates_dir"))

    async def build_workflow(
        self, req: ComfyRequest, conn: ServerConnection, ctx: JobContext | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The API-format graph to run and the parameter values it was built from (e.g. the seed actually used)."""
        params = dict(req.params)
        names = list(req.images)
        uploaded = await asyncio.gather(*(self.upload(conn, Path(req.images[n]), ctx) for n in names))
        params.update(zip(names, uploaded, strict=True))
        for name, mask in req.masks.items():
            if not isinstance(params.get(name), str) or not params[name]:
                raise InvalidRequestError(
                    f"the mask for {name} needs an image for {name}", backend=self.name, details={"param": name}
                )
            try:
                params[name] = await self.upload_mask(conn, Path(mask), params[name], ctx)
            except ServerError as exc:  # upstream fails with a bare 500 when the sizes differ
                raise JobFailedError(
                    f"ComfyUI could not apply the mask for {name} ({exc.message})",
                    backend=self.name,
                    details={"param": name},
                    hint="The mask must be exactly as large as the picture.",
                ) from exc
        if req.workflow is not None:
            return req.workflow, params
        if not req.template:
            raise InvalidRequestError("A ComfyUI job needs a template or a workflow", backend=self.name)
        catalog = self.catalog()
        template = catalog.get(req.template)
        if getattr(template, "needs_conversion", False):
            template = catalog.resolve(req.template, conn.object_info)
        try:
            workflow, values = self._build(template, params, req.preset, conn)
        except InvalidRequestError as exc:
            if exc.details.get("kind") not in MODEL_KINDS:
                raise
            await self.preflight(conn, refresh=True)  # models added since the list was read: look once more
            workflow, values = self._build(template, params, req.preset, conn)
        self.remember_choices(conn.url, template, params, values)
        return workflow, values

    # --- models (see .models) -------------------------------------------------------------------------------------
    def _build(
        self, template: Any, params: dict[str, Any], preset: str | None, conn: ServerConnection
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return template.build_with_values(  # type: ignore[no-any-return]
            params,
            preset=preset,
            models=model_lists(conn.object_info or {}),
            last_choices=last_choices(self.cache, conn.url),
            server=conn.url,
        )

    def remember_choices(self, url: str, template: Any, given: dict[str, Any], values: dict[str, Any]) -> None:
        """A model the user named becomes the default for that kind on that server."""
        for param in template.params:
            if param.type == "model" and given.get(param.name) not in (None, ""):
                remember_choice(self.cache, url, param.kind, values[param.name])

    async def models(self, url: str | None = None, *, refresh: bool = False) -> dict[str, Any]:
        """``{"server", "models": {kind: [names]}, "choices": {kind: last choice}}`` from the cached /object_info."""
        conn = self.connection(url or (await self.pick_server()).url)
        await self.preflight(conn, refresh=refresh)
        lists = model_lists(conn.object_info or {})
        choices = {k: v for k, v in last_choices(self.cache, conn.url).items() if k in lists}
        return {"server": conn.url, "models": lists, "choices": choices}

    # --- uploads ----------------------------------------------------------------------------------------------------
    async def upload(self, conn: ServerConnection, path: Path, ctx: JobContext | None = None) -> str:
        """Upload a local image to the server's input folder once per content (deduplicated by SHA-256 per server);
        returns the name workflows use for it.

        The file is streamed from disk, never read whole into memory, with byte progress on ``ctx``. An upload cut
        off midway is retried from the start by the retry policy: ComfyUI (like every server we talk to) cannot
        resume a partial upload.
        """
        sha = await asyncio.to_thread(_sha256, path)
        known = conn.uploaded.get(sha)
        if known:
            return known
        pending = conn.uploading.get(sha)
        if pending is not None:  # the same content is on its way already: share that upload
            return await asyncio.shield(pending)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        conn.uploading[sha] = future
        try:
            server_name = await self._send_upload(conn, path, sha, ctx)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else MovieDirectorError("upload cancelled"))
            future.exception()  # retrieved: a failed shared upload is reported by each waiter, not as a leak
            raise
        finally:
            conn.uploading.pop(sha, None)
        future.set_result(server_name)
        return server_name

    async def upload_mask(
        self, conn: ServerConnection, mask: Path, original: str, ctx: JobContext | None = None
    ) -> str:
        """Upload ``mask`` with ``/upload/mask`` semantics: the server stores ``original`` (a name in its input folder)
        with the mask's alpha as its alpha, under a new name, which is returned. Deduplicated per image and mask."""
        sha = hashlib.sha256(f"{original}\0{await asyncio.to_thread(_sha256, mask)}".encode()).hexdigest()
        known = conn.uploaded.get(sha)
        if known:
            return known
        subfolder, _, filename = original.rpartition("/")
        ref = json.dumps({"filename": filename, "subfolder": subfolder, "type": "input"})
        return await self._send_upload(conn, mask, sha, ctx, endpoint="upload/mask", fields={"original_ref": ref})

    async def _send_upload(
        self,
        conn: ServerConnection,
        path: Path,
        sha: str,
        ctx: JobContext | None,
        *,
        endpoint: str = "upload/image",
        fields: dict[str, str] | None = None,
    ) -> str:
        name = f"md_{sha[:24]}{'.png' if fields else path.suffix.lower() or '.png'}"

        streams: list[_FileChunks] = []

        def form() -> aiohttp.FormData:
            for stream in streams:  # the attempt before this one is over: its file is closed now, not at GC
                stream.close()
            streams.append(_FileChunks(path, ctx))
            data = aiohttp.FormData()
            payload = aiohttp.payload.AsyncIterablePayload(streams[-1], content_type=guess_media_type(name))
            data.add_field("image", payload, filename=name, content_type=guess_media_type(name))
            data.add_field("overwrite", "true")
            data.add_field("type", "input")
            for key, value in (fields or {}).items():
                data.add_field(key, value)
            return data

        try:
            body = await self.request(  # a content-named file with overwrite=true: sending it again is harmless
                "POST", conn.url, endpoint, data=form, retry=self.config.retry, idempotent=True
            )
        finally:
            for stream in streams:
                stream.close()
        stored = parse_body(UploadResponse, body, "upload answer")
        server_name = f"{stored.subfolder}/{stored.name}" if stored.subfolder else stored.name
        conn.uploaded[sha] = server_name
        return server_name

    # --- the job verbs ----------------------------------------------------------------------------------------------
    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        if job.kind == "models":
            return None
        try:
            req = ComfyRequest.model_validate(job.request)
        except ValidationError as exc:
            raise InvalidRequestError(f"Bad ComfyUI request: {exc.errors()[0]['msg']}", backend=self.name) from None
        conn = await self.pick_server()
        ctx.report_progress(0.0, stage="connecting", message=conn.url)
        await self.preflight(conn)
        workflow, values = await self.build_workflow(req, conn, ctx)
        assert conn.object_info is not None
        missing = missing_in_workflow(workflow, conn.object_info)
        if missing:  # the catalogue may be stale (models added since): look once more before refusing
            await self.preflight(conn, refresh=True)
            missing = missing_in_workflow(workflow, conn.object_info or {})
        if missing:
            raise InvalidRequestError(
                f"{conn.url} lacks what this workflow needs: {'; '.join(missing)}",
                backend=self.name,
                details={"missing": missing},
                hint="Install the missing nodes or models on the server, or pick another template.",
            )
        job.server = conn.url
        # Kept on the job (and so in the journal): a restart can follow the prompt without rebuilding it.
        job.request = {**job.request, "resolved_params": values, "resolved_workflow": workflow}
        tracker = PromptTracker(prompt_id=job.id, workflow=workflow, job=ctx, client_id=conn.client_id)
        conn.track(tracker)
        self._job_conn[job.id] = conn
        await self._post_prompt(conn, tracker)
        return tracker.prompt_id

    async def _post_prompt(self, conn: ServerConnection, tracker: PromptTracker) -> None:
        """POST /prompt, never blindly twice: when an answer is lost, the server is asked (``/queue``, ``/history``)
        whether it has the prompt under our id before it is sent again."""
        policy = self.config.retry
        attempt = 0
        while True:
            tracker.client_id = conn.client_id  # the socket its events go to
            body = {
                "prompt": tracker.workflow,
                "client_id": tracker.client_id,
                "prompt_id": tracker.prompt_id,
                "extra_data": {"client": "movie_director"},
            }
            try:
                # Sent once per try (NO_RETRY); the loop below asks the server before any resend, so the error keeps
                # its "worth another try" flag (idempotent=True: no blind resend happens in request()).
                answer = await self.request("POST", conn.url, "prompt", json_body=body, retry=NO_RETRY, idempotent=True)
                break
            except InvalidRequestError as exc:
                conn.trackers.pop(tracker.prompt_id, None)
                raise self._prompt_refused(exc) from None
            except MovieDirectorError as exc:
                if not exc.retryable or not policy.should_retry(exc, attempt):
                    conn.trackers.pop(tracker.prompt_id, None)
                    raise
                await asyncio.sleep(policy.delay(attempt, exc))
                attempt += 1
                if await self._prompt_arrived(conn, tracker, policy.max_retries - attempt):
                    log.info("comfyui %s: prompt %s arrived although its answer was lost", conn.url, tracker.prompt_id)
                    conn.track(tracker)  # its events may go to the id it was first sent with: follow it
                    return
        parsed = parse_body(PromptResponse, answer, "prompt answer")
        if parsed.prompt_id != tracker.prompt_id:
            raise ProtocolError(
                f"the server renamed prompt {tracker.prompt_id} to {parsed.prompt_id}", backend=self.name
            )

    def _prompt_refused(self, exc: InvalidRequestError) -> InvalidRequestError:
        """A 400 from POST /prompt, with ComfyUI's node errors kept as structured details."""
        try:
            parsed = PromptErrorResponse.model_validate(exc.details)
        except ValidationError:
            return exc
        node_errors = {k: v.model_dump() for k, v in parsed.node_errors.items()}
        return InvalidRequestError(
            f"ComfyUI refused the workflow: {parsed.summary()}",
            backend=self.name,
            status=exc.status,
            details={"error": exc.details.get("error"), "node_errors": node_errors},
        )

    async def _prompt_arrived(self, conn: ServerConnection, tracker: PromptTracker, budget: int) -> bool:
        """Whether the server has the prompt after all; raises when that cannot be learnt (then sending it again
        could run it twice)."""
        for attempt in range(max(budget, 0) + 1):
            try:
                return await conn.known(tracker.prompt_id)
            except MovieDirectorError as exc:
                if not exc.retryable or attempt >= budget:
                    conn.trackers.pop(tracker.prompt_id, None)
                    raise BackendUnavailableError(
                        f"{conn.url} stopped answering while the job was being sent, and whether it arrived cannot "
                        f"be learnt ({exc.message}); it was not sent again, so that it cannot run twice",
                        backend=self.name,
                        retryable=False,
                    ) from None
                await asyncio.sleep(self.config.retry.delay(attempt, exc))
        return False

    async def resubmit(self, conn: ServerConnection, tracker: PromptTracker) -> None:
        """The server lost the prompt (it restarted): send it again once, under the same id."""
        log.info("comfyui %s lost prompt %s: submitting it again", conn.url, tracker.prompt_id)
        tracker.restart()
        try:
            await self._post_prompt(conn, tracker)
        except MovieDirectorError as exc:  # the job ends with the reason, rather than waiting for a prompt never sent
            tracker.fail(exc)

    async def resume(self, job: Job, ctx: JobContext) -> JobOutputs:
        """After a restart: find the prompt on its server again (finished -> collect; queued or running -> listen;
        lost -> send it again once) and follow it to its end."""
        if job.kind == "models":
            return await self.get_result(job, ctx)
        conn = self.connection(job.server or self.config.url)
        await self.preflight(conn)
        workflow = job.request.get("resolved_workflow") or job.request.get("workflow") or {}
        # Its events go to the client id that sent it (an earlier session's): the connection follows it through
        # /history and /queue until it ends.
        tracker = PromptTracker(prompt_id=job.id, workflow=workflow, job=ctx, client_id="")
        conn.track(tracker)
        self._job_conn[job.id] = conn
        ctx.log("Movie Director restarted: looking for the job on the server")
        await conn.reconcile_one(tracker)
        return await self.get_result(job, ctx)

    def _conn_of(self, job_id: str) -> ServerConnection:
        conn = self._job_conn.get(job_id)
        if conn is None:
            raise InvalidRequestError(f"job {job_id} was never sent to ComfyUI", backend=self.name)
        return conn

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        if job.kind == "models":
            server = job.request.get("server")
            answer = await self.models(str(server) if server else None, refresh=bool(job.request.get("refresh")))
            return JobOutputs(data=answer)
        conn = self._conn_of(job.id)
        tracker = conn.trackers[job.id]
        tracker.job = ctx
        assert tracker.outcome is not None
        timeout = float(self.config.options.get("job_timeout", 3600.0))
        try:
            async with asyncio.timeout(timeout):
                outcome = await asyncio.shield(tracker.outcome)
            return await self._collect(conn, tracker, outcome, ctx)
        except TimeoutError:
            raise JobFailedError(
                f"ComfyUI did not finish the job within {timeout:.0f} s", backend=self.name, retryable=True
            ) from None
        finally:
            cancelling = asyncio.current_task().cancelling()  # type: ignore[union-attr]
            if tracker.done or cancelling:
                conn.trackers.pop(job.id, None)
            if tracker.done and not cancelling:  # ended on the server: nothing left to cancel there
                self._job_conn.pop(job.id, None)

    async def _collect(
        self, conn: ServerConnection, tracker: PromptTracker, outcome: Outcome, ctx: JobContext
    ) -> JobOutputs:
        if tracker.failure is not None:
            raise tracker.failure
        if tracker.lost:
            raise JobFailedError(
                f"ComfyUI at {conn.url} lost the job twice (it restarted while the job was queued or running)",
                backend=self.name,
                retryable=True,
            )
        if outcome.error is not None:
            err = outcome.error
            raise JobFailedError(
                f"ComfyUI node {err.node_id} ({err.node_type}) failed: {err.exception_type}: "
                f"{err.exception_message.strip()}",
                backend=self.name,
                details={"node_id": err.node_id, "node_type": err.node_type, "traceback": err.traceback[-3:]},
            )
        if outcome.interrupted:
            raise JobFailedError("The job was interrupted on the ComfyUI server", backend=self.name)
        ctx.report_progress(0.99, stage="downloading")
        files = outcome.files
        if not files:  # nothing came over the socket (e.g. it was down at the end): history lists every output
            recorded = await conn.finished_entry(tracker.prompt_id)  # a malformed answer is a protocol error
            if recorded is not None:
                files = recorded.files
        if not files and _has_output_nodes(tracker.workflow):
            raise ProtocolError(
                f"ComfyUI at {conn.url} reported the job finished but named no output file, although the workflow "
                "has output nodes",
                backend=self.name,
            )
        folder = ctx.output_dir.resolve()
        outputs = [await self.download(conn, out.node, out.ref, folder, out.name) for out in plan_outputs(files)]
        return JobOutputs(files=tuple(outputs), data={"prompt_id": tracker.prompt_id, "server": conn.url})

    async def download(
        self, conn: ServerConnection, node: str, ref: FileRef, folder: Path, name: str | None = None
    ) -> OutputFile:
        """Fetch one output through /view into ``folder`` (absolute) as ``name`` (see :mod:`.outputs`).

        Downloads land under their final name only when complete, and the name belongs to this output alone, so a
        file already there is this output fetched before a restart: it is kept when the server reports the same
        size, and replaced otherwise.
        """
        params = {"filename": ref.filename, "subfolder": ref.subfolder, "type": ref.type}
        target = safe_path(folder, name or ref.filename)
        if target.exists():
            size = await self._remote_size(conn, params)
            if size is not None and size == target.stat().st_size:
                media_type = guess_media_type(target.name)
                return OutputFile(path=str(target), media_type=media_type, name=target.name, size=size, node=node)

        async def fetch() -> tuple[int, str]:
            try:
                async with self.session(conn.url).get("view", params=params) as resp:
                    if resp.status >= 400:
                        body = await resp.read()
                        raise self.status_error(resp.status, body, resp.headers)
                    size, _ = await download_to(resp, target, backend=self.name)
                    return size, resp.headers.get("Content-Type", "")
            except MovieDirectorError:
                raise
            except Exception as exc:
                raise self._error_from_exception(exc, conn.url) from exc

        size, content_type = await call_with_retry(fetch, self.config.retry, backend=self.name)
        media_type = content_type.split(";")[0].strip() or guess_media_type(target.name)
        size = size or 0
        if media_type in ("application/octet-stream", ""):
            media_type = guess_media_type(target.name)
        return OutputFile(path=str(target), media_type=media_type, name=target.name, size=size, node=node)

    async def _remote_size(self, conn: ServerConnection, params: dict[str, str]) -> int | None:
        try:
            async with self.session(conn.url).head("view", params=params) as resp:
                return resp.content_length if resp.status == 200 else None
        except Exception:  # no HEAD support or no answer: download again
            return None

    async def cancel(self, job: Job) -> None:
        """Pending on the server -> delete it from the queue; running -> interrupt *that* prompt (never another's)."""
        conn = self._job_conn.get(job.id)
        if conn is None:
            return  # never sent: the runtime's local cancel is all there is
        tracker = conn.trackers.pop(job.id, None)
        if tracker is not None and tracker.outcome is not None and not tracker.outcome.done():
            tracker.outcome.cancel()
        running = conn.running_prompt == job.id or (tracker is not None and tracker.started)
        if running:
            await self.request("POST", conn.url, "interrupt", json_body={"prompt_id": job.id}, expect_json=False)
        else:
            await self.request("POST", conn.url, "queue", json_body={"delete": [job.id]}, expect_json=False)
            # It may have started between our look and the delete; interrupt is scoped to this prompt.
            await self.request("POST", conn.url, "interrupt", json_body={"prompt_id": job.id}, expect_json=False)

    async def get_status(self, job: Job) -> RemoteStatus:
        conn = self._job_conn.get(job.id) or self.connection(job.server or self.config.url)
        entry = parse_history(await self.request("GET", conn.url, f"history/{job.id}")).get(job.id)
        if entry is not None and entry.finished:
            return RemoteStatus(state=JobState.SUCCEEDED if entry.succeeded else JobState.FAILED)
        queue = parse_body(QueueState, await self.request("GET", conn.url, "queue"), "queue")
        if job.id in queue.running_ids():
            return RemoteStatus(state=JobState.RUNNING)
        if job.id in queue.pending_ids():
            return RemoteStatus(state=JobState.SUBMITTED)
        return RemoteStatus(state=None, message="the server does not know this job")

    async def health(self) -> HealthInfo:
        url = self.config.url
        start = time.perf_counter()
        try:
            stats = await self.request("GET", url, "system_stats", deadline=self.deadline(5.0))
        except MovieDirectorError as exc:
            return HealthInfo(ok=False, url=url, message=str(exc))
        latency = (time.perf_counter() - start) * 1000
        version = str(((stats or {}).get("system") or {}).get("comfyui_version", ""))
        devices = [d.get("name", "") for d in (stats or {}).get("devices", []) if isinstance(d, dict)]
        message = f"ComfyUI {version}" + (f" on {devices[0]}" if devices else "")
        return HealthInfo(ok=True, url=url, message=message, version=version, latency_ms=latency)

    async def close(self) -> None:
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            await conn.close()
        await super().close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _FileChunks:
    """A file read from disk in chunks (off the loop thread), reporting the bytes sent on the job.

    An iterator with an explicit ``close`` rather than an async generator: when a connection is cut midway, aiohttp
    drops the body without finishing it, and a generator would hold the file open until garbage collection.
    """

    CHUNK = 1 << 18

    def __init__(self, path: Path, ctx: JobContext | None) -> None:
        self._path, self._ctx = path, ctx
        self._fh: BinaryIO | None = None
        self._size = self._sent = 0
        self._closed = False

    def __aiter__(self) -> _FileChunks:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        if self._fh is None:
            self._fh = self._path.open("rb")
            self._size = os.fstat(self._fh.fileno()).st_size
        chunk = await asyncio.to_thread(self._fh.read, self.CHUNK)
        if not chunk:
            self.close()
            raise StopAsyncIteration
        self._sent += len(chunk)
        if self._ctx is not None:
            sent, size = self._sent / 2**20, self._size / 2**20
            self._ctx.report_progress(stage="uploading", message=f"{sent:.1f} of {size:.1f} MB sent")
        return chunk

    def close(self) -> None:
        self._closed = True
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _has_output_nodes(workflow: dict[str, Any]) -> bool:
    """Whether a workflow has nodes that write files (SaveImage, PreviewImage, ...)."""
    return any(isinstance(n, dict) and is_output_type(str(n.get("class_type", ""))) for n in workflow.values())


def factory(config: BackendConfig, network: NetworkPolicy) -> ComfyClient:
    return ComfyClient(config, network)
