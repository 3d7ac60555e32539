"""The peer the ComfyUI figures are measured against: a minimal client in the style of krita-ai-diffusion's
``ai_diffusion/comfy_client.py`` (read at commit 0173461): one websocket from the ``websockets`` package (aiohttp's
websocket when that package is missing), ``json.loads`` of every text frame, progress counted as krita's ``Progress``
does, binary preview frames sliced with a memoryview, and on ``executing`` with no node: ``GET /history/{id}`` and
``GET /view`` for every image, written to a file. Krita receives its images through a custom websocket node instead;
``/history`` + ``/view`` is what a client of a stock ComfyUI must do, as ours does. No journal, retries, validation
or limits: the least a client must do per job.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

try:
    from websockets.asyncio.client import connect as ws_connect
except ImportError:  # pragma: no cover - the bench runs with aiohttp's websocket then
    ws_connect = None


class PeerClient:
    def __init__(self, url: str, out: Path) -> None:
        self.url = url
        self.out = out
        self.client_id = str(uuid.uuid4())
        self.waiters: dict[str, asyncio.Future[None]] = {}
        self.progress: dict[str, int] = {}
        self.previews = 0

    async def _frames(self, session: aiohttp.ClientSession) -> AsyncIterator[str | bytes]:
        ws_url = self.url.replace("http", "ws", 1) + f"/ws?clientId={self.client_id}"
        if ws_connect is not None:
            async with ws_connect(ws_url, max_size=2**30) as ws:
                self._ready.set()
                async for frame in ws:
                    yield frame
        else:
            async with session.ws_connect(ws_url, max_msg_size=0) as ws:
                self._ready.set()
                async for msg in ws:
                    yield msg.data

    async def _listen(self, session: aiohttp.ClientSession) -> None:
        async for frame in self._frames(session):
            if isinstance(frame, bytes):
                if len(frame) > 8:
                    _ = memoryview(frame)[8:]  # the preview image, as krita's _extract_message_png_image slices it
                    self.previews += 1
                continue
            msg = json.loads(frame)
            kind, data = msg["type"], msg["data"]
            if kind == "progress":
                pid = data.get("prompt_id")
                self.progress[pid] = self.progress.get(pid, 0) + 1
            elif kind == "executing" and data["node"] is None:
                fut = self.waiters.get(data["prompt_id"])
                if fut is not None and not fut.done():
                    fut.set_result(None)
            elif kind == "execution_error":
                fut = self.waiters.get(data["prompt_id"])
                if fut is not None and not fut.done():
                    fut.set_exception(RuntimeError(data.get("exception_message", "execution_error")))

    async def run_one(self, session: aiohttp.ClientSession, workflow: dict[str, Any]) -> list[Path]:
        # The id is chosen here and the waiter set before the POST: a fast server may finish first.
        pid = str(uuid.uuid4())
        fut = self.waiters[pid] = asyncio.get_running_loop().create_future()
        try:
            body = {"prompt": workflow, "client_id": self.client_id, "prompt_id": pid}
            async with session.post(f"{self.url}/prompt", json=body) as r:
                r.raise_for_status()
                await r.read()
            await fut
        finally:
            del self.waiters[pid]
            self.progress.pop(pid, None)
        async with session.get(f"{self.url}/history/{pid}") as r:
            history = await r.json()
        files = []
        for output in history[pid]["outputs"].values():
            for image in output.get("images", []):
                async with session.get(f"{self.url}/view", params=image) as r:
                    r.raise_for_status()
                    path = self.out / f"{pid}_{image['filename']}"
                    path.write_bytes(await r.read())
                    files.append(path)
        return files

    async def open(self) -> aiohttp.ClientSession:
        """The HTTP session and the one websocket (listening until :meth:`close`)."""
        self._ready = asyncio.Event()
        self.session = aiohttp.ClientSession()
        self._listener = asyncio.create_task(self._listen(self.session))
        await asyncio.wait_for(self._ready.wait(), 10)
        return self.session

    async def close(self) -> None:
        self._listener.cancel()
        try:
            await self._listener
        except asyncio.CancelledError:
            pass
        await self.session.close()

    async def run_batch(self, workflows: Iterable[dict[str, Any]], in_flight: int) -> None:
        """Every workflow, with at most ``in_flight`` queued at the server."""
        sem = asyncio.Semaphore(in_flight)

        async def limited(workflow: dict[str, Any]) -> None:
            async with sem:
                if not await self.run_one(self.session, workflow):
                    raise RuntimeError("a job produced no image")

        await asyncio.gather(*(limited(w) for w in workflows))

    async def run(self, workflows: Sequence[dict[str, Any]], in_flight: int) -> tuple[float, float]:
        """Run the first workflow (warm-up), then the others with at most ``in_flight`` queued at the server; returns
        the seconds they took and the CPU seconds this process spent meanwhile."""
        await self.open()
        try:
            await self.run_batch(workflows[:1], 1)
            start, cpu = time.perf_counter(), time.process_time()
            await self.run_batch(workflows[1:], in_flight)
            return time.perf_counter() - start, time.process_time() - cpu
        finally:
            await self.close()


def run_peer(url: str, out: Path, workflows: Sequence[dict[str, Any]], in_flight: int) -> tuple[float, float]:
    return asyncio.run(PeerClient(url, out).run(workflows, in_flight))
