"""A protocol-faithful ComfyUI 0.3.75 emulator on aiohttp, for tests, ``make demo``, benchmarks and users without a GPU.

Routes, bodies, status codes and websocket sequences follow the real server (see comfyui.md and the recorded
transcripts); nodes draw real pixels with Pillow. Fault knobs (plain attributes, settable while running) let tests
provoke what real servers do to clients: failed runs, dropped sockets, slow downloads, garbage frames, restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import io
import json
import logging
import mimetypes
import os
import shutil
import sys
import tempfile
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import WSMsgType, web
from PIL import Image

from .. import protocol
from .executor import CacheEntry, PromptRun, QueueItem, now_ms
from .graph import SENSITIVE_EXTRA_DATA_KEYS, error, validate_prompt
from .nodes import NODES, Folders, InterruptProcessing, NodeDef

log = logging.getLogger(__name__)

VERSION = "0.3.75-emulator"
MAX_HISTORY_SIZE = 10000
MAX_UPLOAD_SIZE = 100 * 1024 * 1024
KNOBS = ("step_delay", "fail_next", "drop_ws_after_steps", "view_delay", "malformed_frame_next", "socket_cleanup_delay")
MALFORMED_FRAME = '{"type": "progress", "data": {"value": 1, "max": '
_BAD_JSON = object()
_FORCE_DOWNLOAD = {"text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript", "text/css"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(eq=False)
class _Client:
    sid: str
    ws: web.WebSocketResponse
    request: web.Request
    flags: dict[str, Any] = field(default_factory=dict)


class ComfyEmulator:
    """The server. ``async with ComfyEmulator() as emu:`` then talk to ``emu.url``.

    Fault knobs, read live: ``step_delay`` (seconds per sampler step), ``fail_next`` (the next prompt ends in
    execution_error at its first staged node), ``drop_ws_after_steps`` (abort every websocket once a prompt has sent
    that many progress steps), ``view_delay`` (seconds before /view answers), ``malformed_frame_next`` (send one
    truncated JSON text frame before the next message), ``socket_cleanup_delay`` (seconds the server takes to notice
    that a socket closed: then, as the real server does, it unregisters the socket's client id whatever socket holds
    that id by then, so a client that reconnected with the same id meanwhile goes deaf). ``restart()`` loses queue,
    history and cache.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        output_dir: Path | str | None = None,
        *,
        input_dir: Path | str | None = None,
        step_delay: float = 0.02,
        fail_next: bool = False,
        drop_ws_after_steps: int | None = None,
        view_delay: float = 0.0,
        malformed_frame_next: bool = False,
        socket_cleanup_delay: float = 0.0,
        checkpoints: list[str] | None = None,
        loras: list[str] | None = None,
        max_upload_size: int = MAX_UPLOAD_SIZE,
        registry: dict[str, NodeDef] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.step_delay = step_delay
        self.fail_next = fail_next
        self.drop_ws_after_steps = drop_ws_after_steps
        self.view_delay = view_delay
        self.malformed_frame_next = malformed_frame_next
        self.socket_cleanup_delay = socket_cleanup_delay
        self.max_upload_size = max_upload_size
        self.registry: dict[str, NodeDef] = dict(registry or NODES)
        self._output_dir_arg = Path(output_dir) if output_dir is not None else None
        self._input_dir_arg = Path(input_dir) if input_dir is not None else None
        self._checkpoints = checkpoints
        self._loras = loras
        self._scratch: Path | None = None
        self._folders: Folders | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reset_state()

    # ---- lifecycle

    def _reset_state(self) -> None:
        self.history: dict[str, dict[str, Any]] = {}
        #: Every prompt id a POST /prompt queued, in order (a test peer's record; ComfyUI keeps none).
        self.accepted: list[str] = []
        self.upload_count = 0  # POST /upload/image requests served (tests check deduplication with it)
        self.socket_cleanups = 0  # websocket handlers that have run their clean-up
        self.cache: dict[str, CacheEntry] = {}
        self._pending: list[tuple[tuple[float, int], QueueItem]] = []
        self._running: QueueItem | None = None
        self._number = 0
        self._seq = 0
        self._clients: dict[str, _Client] = {}
        self._sockets: set[_Client] = set()  # every open socket, routed or replaced
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self._interrupted = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._outbox: asyncio.Queue[tuple[str, Any, Any, str | None]] = asyncio.Queue()

    @property
    def url(self) -> str:
        """``http://host:port`` once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def folders(self) -> Folders:
        """input/output/temp folders (they exist from ``start()`` until ``stop()``)."""
        if self._folders is None:
            raise RuntimeError("the ComfyUI emulator is not started")
        return self._folders

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"

    async def start(self) -> ComfyEmulator:
        """Bind (port 0 = a free port), start the worker; folders are created here."""
        if self._runner is not None:
            return self
        if self._folders is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="comfy-emulator-"))
            # removed by stop(); this also removes it at exit when a caller never stopped the emulator
            self._scratch_finalizer = weakref.finalize(self, shutil.rmtree, str(self._scratch), True)
            output_dir = self._output_dir_arg or self._scratch / "output"
            input_dir = self._input_dir_arg or self._scratch / "input"
            temp_dir = self._scratch / "temp"
            for d in (output_dir, input_dir, temp_dir):
                d.mkdir(parents=True, exist_ok=True)
            self._folders = Folders(
                Path(os.path.abspath(input_dir)),
                Path(os.path.abspath(output_dir)),
                Path(os.path.abspath(temp_dir)),
                **({"checkpoints": list(self._checkpoints)} if self._checkpoints is not None else {}),
                **({"loras": list(self._loras)} if self._loras is not None else {}),
            )
        self._reset_state()
        await self._serve()
        log.info("ComfyUI emulator serving on %s", self.url)
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=self.max_upload_size + 1024 * 1024)
        for method, path, handler in self._routes():
            app.router.add_route(method, path, handler)
            app.router.add_route(method, "/api" + path, handler)
        app.router.add_get("/", self._index)
        runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._tasks = [
            asyncio.create_task(self._worker(), name="comfy-emulator-worker"),
            asyncio.create_task(self._publisher(), name="comfy-emulator-publisher"),
        ]

    async def _unserve(self) -> None:
        for client in list(self._sockets):
            self._abort(client)
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def stop(self) -> None:
        """Stop serving, drop every socket and remove the folders the emulator created itself."""
        await self._unserve()
        if self._scratch is not None:
            await asyncio.to_thread(shutil.rmtree, self._scratch, True)
            self._scratch_finalizer.detach()
            self._scratch = None
            self._folders = None

    async def restart(self, downtime: float = 0.0) -> None:
        """Die and come back on the same port: queue, history, cache and sockets are lost; files on disk stay."""
        await self._unserve()
        self._reset_state()
        if downtime > 0:
            await asyncio.sleep(downtime)
        await self._serve()

    async def __aenter__(self) -> ComfyEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- queue and sockets

    def queue_remaining(self) -> int:
        return len(self._pending) + (1 if self._running is not None else 0)

    def _queue_info(self) -> dict[str, Any]:
        return {"exec_info": {"queue_remaining": self.queue_remaining()}}

    def _queue_updated(self) -> None:
        self.send("status", {"status": self._queue_info()}, None)

    def send(self, event: str, data: Any, sid: str | None) -> None:
        """Queue a JSON message for ``sid`` (None = every socket), in order, as the server's send_sync does."""
        self._outbox.put_nowait(("text", event, data, sid))

    def send_bytes(self, frame: bytes, sid: str | None) -> None:
        self._outbox.put_nowait(("bytes", frame, None, sid))

    def drop_websockets(self) -> None:
        """Abort every websocket once the frames queued so far have gone out."""
        self._outbox.put_nowait(("drop", None, None, None))

    def supports_preview_metadata(self, sid: str | None) -> bool:
        client = self._clients.get(sid) if sid is not None else None
        return bool(client and client.flags.get("supports_preview_metadata") is True)

    def check_interrupt(self) -> None:
        if self._interrupted.is_set():
            self._interrupted.clear()
            raise InterruptProcessing("Processing interrupted")

    async def interruptible_sleep(self, delay: float | None) -> None:
        delay = self.step_delay if delay is None else delay
        if not delay or delay <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._interrupted.wait()

    def interrupt(self, prompt_id: str | None = None) -> bool:
        """What POST /interrupt does; True when something was (or will be) interrupted."""
        if prompt_id and (self._running is None or self._running.prompt_id != prompt_id):
            return False
        self._interrupted.set()
        return True

    @staticmethod
    def _abort(client: _Client) -> None:
        """Cut the TCP connection without a close frame, as a crashed server or a broken network does."""
        transport = client.request.transport
        if transport is not None:
            transport.abort()

    async def _publisher(self) -> None:
        while True:
            kind, a, b, sid = await self._outbox.get()
            if kind == "drop":
                for client in list(self._clients.values()):
                    self._abort(client)
                self._clients.clear()
                continue
            if sid is None:
                targets = list(self._clients.values())
            else:
                found = self._clients.get(sid)
                targets = [found] if found is not None else []
            payload: str | bytes = protocol.encode_message(a, b) if kind == "text" else a
            for client in targets:
                if client.ws.closed:
                    continue
                try:
                    if kind == "text":
                        if self.malformed_frame_next:
                            self.malformed_frame_next = False
                            await client.ws.send_str(MALFORMED_FRAME)
                        await client.ws.send_str(payload)  # type: ignore[arg-type]
                    else:
                        await client.ws.send_bytes(payload)  # type: ignore[arg-type]
                except Exception as exc:  # a socket closing under us is the client's problem, not the server's
                    log.debug("websocket send to %s failed: %s", client.sid, exc)

    async def _worker(self) -> None:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            _, item = heapq.heappop(self._pending)
            self._running = item
            self._queue_updated()
            self._interrupted.clear()
            fail, self.fail_next = self.fail_next, False
            run = PromptRun(self, item, fail)
            self.client_id = run.client_id
            try:
                result = await run.execute()
                success, messages, outputs, meta = result.success, result.messages, result.outputs, result.meta
            except Exception as exc:  # an emulator bug must not kill the worker
                log.exception("emulator failed to run prompt %s", item.prompt_id)
                success, messages, outputs, meta = (
                    False,
                    [*run.messages, ("execution_error", {"error": str(exc)})],
                    {},
                    {},
                )
            self._running = None
            if len(self.history) > MAX_HISTORY_SIZE:
                self.history.pop(next(iter(self.history)))
            self.history[item.prompt_id] = {
                "prompt": item.as_list(),
                "outputs": outputs,
                "status": {
                    "status_str": "success" if success else "error",
                    "completed": success,
                    "messages": [[event, data] for event, data in messages],
                },
                "meta": meta,
            }
            self._queue_updated()
            if run.client_id is not None:
                self.send("executing", {"node": None, "prompt_id": item.prompt_id}, run.client_id)
            self.client_id = None

    # ---- routes

    def _routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/ws", self._websocket),
            ("POST", "/prompt", self._post_prompt),
            ("GET", "/prompt", self._get_prompt),
            ("GET", "/queue", self._get_queue),
            ("POST", "/queue", self._post_queue),
            ("POST", "/interrupt", self._post_interrupt),
            ("GET", "/history", self._get_history),
            ("GET", "/history/{prompt_id}", self._get_history_item),
            ("POST", "/history", self._post_history),
            ("GET", "/view", self._view),
            ("POST", "/upload/image", self._upload_image),
            ("POST", "/upload/mask", self._upload_mask),
            ("GET", "/object_info", self._object_info),
            ("GET", "/object_info/{node_class}", self._object_info_one),
            ("GET", "/system_stats", self._system_stats),
            ("GET", "/features", self._features),
            ("GET", "/embeddings", self._embeddings),
            ("GET", "/models", self._models),
            ("GET", "/models/{folder}", self._models_folder),
        ]

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text=f"ComfyUI emulator {VERSION}\n")

    @staticmethod
    async def _read_json(request: web.Request) -> Any:
        try:
            raw = await request.read()
            return json.loads(raw) if raw else _BAD_JSON
        except (ValueError, RecursionError):
            return _BAD_JSON

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(timeout=2.0)
        await ws.prepare(request)
        sid = request.query.get("clientId", "") or uuid.uuid4().hex
        client = _Client(sid, ws, request)
        self._sockets.add(client)
        try:
            await ws.send_str(protocol.encode_message("status", {"status": self._queue_info(), "sid": sid}))
            self._clients[sid] = client  # a new connection with the same id takes the routing over
            if self.client_id == sid and self.last_node_id is not None:
                self.send("executing", {"node": self.last_node_id}, sid)
            first = True
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except (ValueError, RecursionError):
                    log.warning("invalid JSON from websocket client %s", sid)
                    continue
                if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                    flags = data.get("data")
                    client.flags = flags if isinstance(flags, dict) else {}
                    self.send("feature_flags", dict(protocol.SERVER_FEATURE_FLAGS), sid)
                first = False
        except Exception as exc:
            log.debug("websocket %s ended: %s", sid, exc)
        finally:
            self._sockets.discard(client)
            try:
                if self.socket_cleanup_delay > 0:
                    await asyncio.sleep(self.socket_cleanup_delay)
            finally:
                # As server.py's websocket_handler: pop the id unconditionally, even if another socket holds it now.
                self._clients.pop(sid, None)
                self.socket_cleanups += 1
        return ws

    async def _post_prompt(self, request: web.Request) -> web.Response:
        body = await self._read_json(request)
        if body is _BAD_JSON:
            err = error("invalid_prompt", "Invalid JSON in request body", "The body must be a JSON object")
            return web.json_response({"error": err, "node_errors": {}}, status=400)
        if not isinstance(body, dict):
            body = {}
        if "number" in body:
            try:
                number: float = float(body["number"])
            except (TypeError, ValueError):
                err = error("invalid_prompt", "Invalid 'number'", str(body["number"])[:100])
                return web.json_response({"error": err, "node_errors": {}}, status=400)
        else:
            number = self._number
            if body.get("front"):
                number = -number
            self._number += 1
        if "prompt" not in body:
            err = error("no_prompt", "No prompt provided", "No prompt provided")
            return web.json_response({"error": err, "node_errors": {}}, status=400)
        prompt = body["prompt"]
        prompt_id = str(body["prompt_id"]) if body.get("prompt_id") is not None else str(uuid.uuid4())
        targets = body.get("partial_execution_targets")
        targets = [str(t) for t in targets] if isinstance(targets, list) else None
        valid = validate_prompt(prompt, self.registry, self.folders, targets)
        extra_data = body.get("extra_data")
        extra_data = dict(extra_data) if isinstance(extra_data, dict) else {}
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if not valid.ok:
            log.warning("invalid prompt: %s", valid.error)
            return web.json_response({"error": valid.error, "node_errors": valid.node_errors}, status=400)
        self.accepted.append(prompt_id)  # (not upstream: lets tests prove no prompt was sent twice)
        sensitive = {k: extra_data.pop(k) for k in SENSITIVE_EXTRA_DATA_KEYS if k in extra_data}
        extra_data["create_time"] = now_ms()
        self._seq += 1
        item = QueueItem(number, prompt_id, prompt, extra_data, valid.outputs, sensitive, self._seq)
        heapq.heappush(self._pending, (item.sort_key(), item))
        self._wakeup.set()
        self._queue_updated()
        return web.json_response({"prompt_id": prompt_id, "number": number, "node_errors": valid.node_errors})

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response(self._queue_info())

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [self._running.as_list()] if self._running is not None else []
        pending = [item.as_list() for _, item in sorted(self._pending, key=lambda p: p[0])]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _post_queue(self, request: web.Request) -> web.Response:
        body = await self._read_json(request)
        if not isinstance(body, dict):
            return web.Response(status=400)
        if body.get("clear"):
            self._pending.clear()
            self._queue_updated()
        to_delete = body.get("delete")
        if isinstance(to_delete, list):
            for prompt_id in to_delete:
                kept = [p for p in self._pending if p[1].prompt_id != prompt_id]
                if len(kept) != len(self._pending):  # as the real server: one status frame per deleted item
                    self._pending = kept
                    heapq.heapify(self._pending)
                    self._queue_updated()
        return web.Response(status=200)

    async def _post_interrupt(self, request: web.Request) -> web.Response:
        body = await self._read_json(request)
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        self.interrupt(str(prompt_id) if prompt_id else None)
        return web.Response(status=200)

    async def _get_history(self, request: web.Request) -> web.Response:
        try:
            max_items = int(request.query["max_items"]) if "max_items" in request.query else None
            offset = int(request.query["offset"]) if "offset" in request.query else -1
        except ValueError:
            return web.Response(status=400)
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        out: dict[str, Any] = {}
        for i, (key, value) in enumerate(self.history.items()):
            if i >= offset:
                out[key] = value
                if max_items is not None and len(out) >= max_items:
                    break
        return web.json_response(out)

    async def _get_history_item(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry is not None else {})

    async def _post_history(self, request: web.Request) -> web.Response:
        body = await self._read_json(request)
        if not isinstance(body, dict):
            return web.Response(status=400)
        if body.get("clear"):
            self.history.clear()
        to_delete = body.get("delete")
        if isinstance(to_delete, list):
            for prompt_id in to_delete:
                if isinstance(prompt_id, str):
                    self.history.pop(prompt_id, None)
        return web.Response(status=200)

    async def _view(self, request: web.Request) -> web.StreamResponse:
        if self.view_delay > 0:
            await asyncio.sleep(self.view_delay)
        query = request.query
        if "filename" not in query:
            return web.Response(status=404)
        filename = query["filename"]
        kind = None
        for suffix in ("output", "input", "temp"):
            if filename.endswith(f"[{suffix}]"):
                filename, kind = filename[: -len(suffix) - 2].rstrip(), suffix
                break
        if not filename or filename[0] == "/" or ".." in filename or "\x00" in filename:
            return web.Response(status=400)
        base = self.folders.by_type(kind or query.get("type", "output"))
        if base is None:
            return web.Response(status=400)
        folder = str(base)
        if "subfolder" in query:
            full = os.path.abspath(os.path.join(folder, query["subfolder"]))
            if "\x00" in full or os.path.commonpath((full, folder)) != folder:
                return web.Response(status=403)
            folder = full
        filename = os.path.basename(filename)
        path = os.path.join(folder, filename)
        if not os.path.isfile(path):
            return web.Response(status=404)
        headers = {"Content-Disposition": f'filename="{filename}"'}
        channel = query.get("channel", "rgba")
        try:
            if "preview" in query:
                info = query["preview"].split(";")
                fmt = info[0] if info[0] in ("webp", "jpeg") and "a" not in query.get("channel", "") else "webp"
                quality = int(info[-1]) if info[-1].isdigit() else 90
                body = await asyncio.to_thread(_convert_preview, path, fmt, quality, channel)
                return web.Response(body=body, content_type=f"image/{fmt}", headers=headers)
            if channel in ("rgb", "a"):
                body = await asyncio.to_thread(_convert_channel, path, channel)
                return web.Response(body=body, content_type="image/png", headers=headers)
        except (OSError, ValueError, Image.DecompressionBombError):
            return web.Response(status=415)
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if content_type in _FORCE_DOWNLOAD:
            content_type = "application/octet-stream"
        headers["Content-Type"] = content_type
        return web.FileResponse(path, headers=headers)

    async def _upload_image(self, request: web.Request) -> web.Response:
        return await self._upload(request, mask=False)

    async def _upload_mask(self, request: web.Request) -> web.Response:
        """As upstream: the upload's alpha channel replaces the alpha of ``original_ref``'s picture, saved as PNG
        under the upload's name (an original that is not there: nothing is written, yet the answer is 200)."""
        return await self._upload(request, mask=True)

    async def _upload(self, request: web.Request, *, mask: bool) -> web.Response:
        self.upload_count += 1
        try:
            post = await request.post()
        except web.HTTPException:
            raise
        except Exception:
            return web.Response(status=400)
        image = post.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        kind = post.get("type") or "input"
        base = self.folders.by_type(kind) if isinstance(kind, str) else None
        if base is None:
            return web.Response(status=400)
        subfolder = post.get("subfolder", "")
        subfolder = subfolder if isinstance(subfolder, str) else ""
        filename = image.filename
        folder = os.path.abspath(os.path.join(base, os.path.normpath(subfolder) if subfolder else ""))
        path = os.path.abspath(os.path.join(folder, filename))
        if (
            "\x00" in path
            or os.path.basename(filename) != filename
            or os.path.commonpath((str(base), path)) != str(base)
        ):
            return web.Response(status=400)
        content = image.file.read()
        overwrite = post.get("overwrite")
        original: Path | None = None
        if mask:
            original = self._mask_original(post.get("original_ref"))
            if isinstance(original, web.Response):
                return original
        name = await asyncio.to_thread(_store_upload, folder, filename, content, overwrite in ("true", "1"))
        if original is not None:
            try:
                await asyncio.to_thread(_apply_mask, original, content, os.path.join(folder, name))
            except (OSError, ValueError, Image.DecompressionBombError):  # upstream: an unhandled error, HTTP 500
                return web.Response(status=500)
        return web.json_response({"name": name, "subfolder": subfolder, "type": kind})

    def _mask_original(self, ref: Any) -> Any:
        """The picture ``original_ref`` names (None when it is not there), or the error response upstream gives."""
        try:
            data = json.loads(ref) if isinstance(ref, str) else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("filename"), str) or not data["filename"]:
            return web.Response(status=400)
        filename = data["filename"]
        if filename[0] == "/" or ".." in filename:
            return web.Response(status=400)
        base = self.folders.by_type(str(data.get("type", "output")))
        if base is None:
            return web.Response(status=400)
        sub = data.get("subfolder") or ""
        folder = os.path.abspath(os.path.join(base, str(sub)))
        if os.path.commonpath((folder, str(base))) != str(base):
            return web.Response(status=403)
        path = Path(folder) / filename
        return path if path.is_file() else None

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response({name: node.info(self.folders) for name, node in self.registry.items()})

    async def _object_info_one(self, request: web.Request) -> web.Response:
        name = request.match_info["node_class"]
        node = self.registry.get(name)
        return web.json_response({name: node.info(self.folders)} if node else {})

    async def _system_stats(self, request: web.Request) -> web.Response:
        ram_total, ram_free = _memory()
        stats = {
            "system": {
                "os": sys.platform,
                "ram_total": ram_total,
                "ram_free": ram_free,
                "comfyui_version": VERSION,
                "required_frontend_version": "1.28.8",
                "python_version": sys.version,
                "pytorch_version": "emulated",
                "embedded_python": False,
                "argv": ["main.py", "--emulator"],
            },
            "devices": [
                {
                    "name": "cpu",
                    "type": "cpu",
                    "index": None,
                    "vram_total": ram_total,
                    "vram_free": ram_free,
                    "torch_vram_total": 0,
                    "torch_vram_free": 0,
                }
            ],
        }
        return web.json_response(stats)

    async def _features(self, request: web.Request) -> web.Response:
        return web.json_response(dict(protocol.SERVER_FEATURE_FLAGS))

    async def _embeddings(self, request: web.Request) -> web.Response:
        return web.json_response([])

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(["checkpoints", "loras", "vae", "embeddings"])

    async def _models_folder(self, request: web.Request) -> web.Response:
        if request.match_info["folder"] == "checkpoints":
            return web.json_response(list(self.folders.checkpoints))
        if request.match_info["folder"] == "loras":
            return web.json_response(list(self.folders.loras))
        if request.match_info["folder"] in ("vae", "embeddings"):
            return web.json_response([])
        return web.Response(status=404)


def _apply_mask(original: Path, mask_bytes: bytes, target: str) -> None:
    """Upstream's alpha copy: the original picture, with the mask upload's alpha as its alpha, saved as PNG."""
    with Image.open(original) as img, Image.open(io.BytesIO(mask_bytes)) as mask_img:
        rgba = img.convert("RGBA")
        rgba.putalpha(mask_img.convert("RGBA").getchannel("A"))  # a mask of another size fails, as upstream
        rgba.save(target, format="PNG", compress_level=4)


def _store_upload(folder: str, filename: str, content: bytes, overwrite: bool) -> str:
    """Write an upload; a clash becomes ``name (1).ext`` unless the bytes are identical (then nothing is written)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, filename)
    stem, ext = os.path.splitext(filename)
    if not overwrite:
        digest = hashlib.sha256(content).digest()
        i = 1
        while os.path.exists(path):
            try:
                with open(path, "rb") as f:
                    if hashlib.sha256(f.read()).digest() == digest:
                        return filename
            except OSError:
                pass
            filename = f"{stem} ({i}){ext}"
            path = os.path.join(folder, filename)
            i += 1
    with open(path, "wb") as f:
        f.write(content)
    return filename


def _convert_preview(path: str, fmt: str, quality: int, channel: str) -> bytes:
    with Image.open(path) as img:
        out = img.convert("RGB") if fmt == "jpeg" or channel == "rgb" else img.copy()
        buf = io.BytesIO()
        out.save(buf, format=fmt.upper(), quality=quality)
        return buf.getvalue()


def _convert_channel(path: str, channel: str) -> bytes:
    with Image.open(path) as img:
        if channel == "rgb":
            out = Image.merge("RGB", img.split()[:3]) if img.mode == "RGBA" else img.convert("RGB")
        else:
            alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
            out = Image.new("RGBA", img.size)
            out.putalpha(alpha)
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()


def _memory() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 16 * 1024**3, 8 * 1024**3


T = TypeVar("T")


class EmulatorThread:
    """The emulator on its own event loop in a daemon thread, for synchronous callers (Blender tests, the demo).

    Knob attributes (``step_delay``, ``fail_next``, ...) set on this object are forwarded to the emulator.
    """

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "emulator", ComfyEmulator(**options))
        object.__setattr__(self, "_loop", None)
        object.__setattr__(self, "_thread", None)

    emulator: ComfyEmulator
    _loop: asyncio.AbstractEventLoop | None
    _thread: threading.Thread | None

    def start(self, timeout: float = 30.0) -> EmulatorThread:
        """Start serving; returns once the port is bound (raises what the start raised)."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            # Named workers, so that leak checks can tell the emulator's threads from the client's.
            loop.set_default_executor(ThreadPoolExecutor(max_workers=4, thread_name_prefix="comfyui-emulator-worker"))
            object.__setattr__(self, "_loop", loop)
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.emulator.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                try:
                    loop.run_until_complete(self.emulator.stop())
                    loop.run_until_complete(loop.shutdown_asyncgens())
                    loop.run_until_complete(loop.shutdown_default_executor())
                finally:
                    loop.close()

        thread = threading.Thread(target=run, name="comfyui-emulator", daemon=True)
        object.__setattr__(self, "_thread", thread)
        thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("the ComfyUI emulator did not start in time")
        if failure:
            object.__setattr__(self, "_thread", None)
            raise failure[0]
        return self

    def stop(self, timeout: float = 30.0) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        object.__setattr__(self, "_thread", None)
        object.__setattr__(self, "_loop", None)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the emulator's loop and wait for its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("the emulator thread is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def restart(self, downtime: float = 0.0, timeout: float = 30.0) -> None:
        self.call(self.emulator.restart(downtime), timeout)

    def interrupt(self, prompt_id: str | None = None) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.emulator.interrupt, prompt_id)

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def folders(self) -> Folders:
        return self.emulator.folders

    def __getattr__(self, name: str) -> Any:
        if name in KNOBS:
            return getattr(self.emulator, name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in KNOBS:
            setattr(self.emulator, name, value)
        else:
            object.__setattr__(self, name, value)

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
