"""A small, scriptable fake ComfyUI (aiohttp, in-process, own thread) for hostile-server tests.

It speaks just enough of the protocol for our client (system_stats, object_info, the event socket, POST /prompt,
/queue, /history/{id}, /view) and lets a test make it misbehave: lose the answer to a POST it did queue, send frames a
real server never would, report outputs that clash or none at all, or answer /history with garbage.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

OBJECT_INFO: dict[str, Any] = {
    "EmptyImage": {
        "input": {"required": {"width": ["INT", {"default": 64}], "height": ["INT", {"default": 64}]}},
        "input_order": {"required": ["width", "height"]},
        "output": ["IMAGE"],
        "output_node": False,
        "name": "EmptyImage",
    },
    "SaveImage": {
        "input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}},
        "input_order": {"required": ["images", "filename_prefix"]},
        "output": [],
        "output_node": True,
        "name": "SaveImage",
    },
}


def workflow(saves: int = 1) -> dict[str, Any]:
    """EmptyImage feeding ``saves`` SaveImage nodes."""
    graph: dict[str, Any] = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}}}
    for n in range(saves):
        graph[str(10 + n)] = {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": f"p{n}"}}
    return graph


@dataclass
class Output:
    node: str
    filename: str
    subfolder: str
    content: bytes
    type: str = "output"

    def ref(self) -> dict[str, str]:
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}


@dataclass
class Script:
    """How the fake behaves; a test sets fields before it submits."""

    outputs: list[Output] = field(default_factory=lambda: [Output("10", "img_00001_.png", "", b"\x89PNG-one")])
    #: Text frames sent (raw) between execution_start and the end, e.g. progress with Infinity.
    frames: list[str] = field(default_factory=list)
    #: Send ``executed`` messages naming the outputs (else only /history knows them).
    announce_outputs: bool = True
    #: Raw body of GET /history/{id} once the prompt ran (None = a well-formed entry).
    history_body: Callable[[str], Any] | None = None
    #: Queue the first POST /prompt, then cut the connection without answering (the answer is lost).
    lose_first_answer: bool = False
    #: Cut the first POST /prompt before queueing it (the request never arrived).
    drop_first_request: bool = False
    #: Accept the first POST /prompt but lose the prompt (as a restart right after would), and refuse it when it is
    #: sent again.
    forget_then_refuse: bool = False
    #: Seconds each prompt "runs".
    run_time: float = 0.05


class FakeComfy:
    def __init__(self) -> None:
        self.script = Script()
        self.prompt_posts: list[str] = []  # prompt ids of every POST /prompt that reached the handler
        self.runs: list[str] = []  # prompt ids executed
        self.view_gets: list[tuple[str, str]] = []  # (subfolder, filename) of each GET /view
        self.ws_connections = 0
        self.history: dict[str, Any] = {}
        self._queue: list[str] = []
        self._running: str | None = None
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- life cycle -------------------------------------------------------------------------------------------------
    def start(self) -> FakeComfy:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self._serve())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
            loop.close()

        self._thread = threading.Thread(target=run, name="comfyui-emulator-fake", daemon=True)
        self._thread.start()
        assert ready.wait(10), "the fake ComfyUI did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def drop_sockets(self) -> None:
        """Close every event socket from the server's side."""

        async def close() -> None:
            for ws in list(self._sockets.values()):
                await ws.close()

        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)

    def __enter__(self) -> FakeComfy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/system_stats", self._stats)
        app.router.add_get("/object_info", self._object_info)
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/prompt", self._post_prompt)
        app.router.add_get("/prompt", self._get_prompt)
        app.router.add_get("/queue", self._get_queue)
        app.router.add_post("/queue", self._ok)
        app.router.add_post("/interrupt", self._ok)
        app.router.add_get("/history/{pid}", self._get_history)
        app.router.add_get("/view", self._view)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    # --- routes -----------------------------------------------------------------------------------------------------
    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"system": {"comfyui_version": "0.3.75-fake"}, "devices": []})

    async def _object_info(self, request: web.Request) -> web.Response:
        return web.json_response(OBJECT_INFO)

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _get_prompt(self, request: web.Request) -> web.Response:
        return web.json_response({"exec_info": {"queue_remaining": len(self._queue)}})

    async def _get_queue(self, request: web.Request) -> web.Response:
        running = [[0, self._running, {}, {}, []]] if self._running else []
        pending = [[n + 1, pid, {}, {}, []] for n, pid in enumerate(self._queue)]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def _get_history(self, request: web.Request) -> web.Response:
        pid = request.match_info["pid"]
        if pid not in self.history:
            return web.json_response({})
        if self.script.history_body is not None:
            return web.json_response(self.script.history_body(pid))
        return web.json_response({pid: self.history[pid]})

    async def _view(self, request: web.Request) -> web.Response:
        sub, name = request.query.get("subfolder", ""), request.query.get("filename", "")
        if request.method == "GET":
            self.view_gets.append((sub, name))
        for out in self.script.outputs:
            if out.subfolder == sub and out.filename == name:
                return web.Response(body=out.content, content_type="image/png")
        return web.Response(status=404)

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId", "")
        self.ws_connections += 1
        self._sockets[sid] = ws
        await ws.send_str(json.dumps({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}}}))
        try:
            async for _ in ws:
                pass
        finally:
            if self._sockets.get(sid) is ws:
                del self._sockets[sid]
        return ws

    async def _post_prompt(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        pid, client_id = str(body["prompt_id"]), str(body.get("client_id", ""))
        self.prompt_posts.append(pid)
        first = len(self.prompt_posts) == 1
        if first and self.script.drop_first_request:
            _cut(request)
            return web.Response(status=500)
        if self.script.forget_then_refuse:
            if first:
                return web.json_response({"prompt_id": pid, "number": 1, "node_errors": {}})
            error = {"type": "invalid_prompt", "message": "Cannot execute: the server forgot the model", "details": ""}
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        self._queue.append(pid)
        asyncio.get_running_loop().create_task(self._execute(pid, client_id))
        if first and self.script.lose_first_answer:
            _cut(request)
            return web.Response(status=500)
        return web.json_response({"prompt_id": pid, "number": len(self.prompt_posts), "node_errors": {}})

    # --- a run ------------------------------------------------------------------------------------------------------
    async def _send(self, client_id: str, text: str) -> None:
        ws = self._sockets.get(client_id)
        if ws is not None and not ws.closed:
            try:
                await ws.send_str(text)
            except ConnectionError:
                pass

    async def _execute(self, pid: str, client_id: str) -> None:
        await asyncio.sleep(0.01)
        self._queue.remove(pid)
        self._running = pid
        self.runs.append(pid)
        script = self.script

        def msg(kind: str, **data: Any) -> str:
            return json.dumps({"type": kind, "data": {**data, "prompt_id": pid}})

        await self._send(client_id, msg("execution_start"))
        await self._send(client_id, msg("executing", node="1"))
        for frame in script.frames:
            await self._send(client_id, frame.replace("$PID", pid))
        await asyncio.sleep(script.run_time)
        outputs: dict[str, Any] = {}
        for out in script.outputs:
            outputs.setdefault(out.node, {"images": []})["images"].append(out.ref())
        if script.announce_outputs:
            for node, output in outputs.items():
                await self._send(client_id, msg("executed", node=node, output=output))
        self.history[pid] = {
            "prompt": [0, pid, {}, {}, []],
            "outputs": outputs,
            "status": {"status_str": "success", "completed": True, "messages": []},
            "meta": {},
        }
        self._running = None
        await self._send(client_id, msg("execution_success"))
        await self._send(client_id, msg("executing", node=None))


def _cut(request: web.Request) -> None:
    """Drop the connection without an answer, as a crash or a broken network does."""
    if request.transport is not None:
        request.transport.abort()
