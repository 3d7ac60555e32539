"""One ComfyUI server: its websocket (kept open, reconnected as a loop), the prompts in flight on it, and
reconciliation after every reconnect.

Plain Python: this module never imports bpy. Facts from ``shared/protocols/comfyui.md``: one socket per clientId and
the same clientId after a reconnect keeps events routed to us; messages missed while disconnected are recovered from
/history (finished?) and /queue (still there?); a prompt in neither was lost by a server restart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from ...runtime.errors import MovieDirectorError, ProtocolError
from .protocol import (
    ExecutingData,
    ExecutionStartData,
    FeatureFlagsData,
    PreviewFrame,
    QueueState,
    StatusData,
    TextFrame,
    WsMessage,
    encode_message,
    parse_binary_frame,
    parse_body,
    parse_history,
    parse_message,
)
from .tracking import Outcome, PromptTracker

if TYPE_CHECKING:
    from .client import ComfyClient

log = logging.getLogger(__name__)

#: Preview frames can be large: the 4 MiB default of websocket clients is too small (protocol notes).
MAX_WS_MESSAGE = 64 * 1024 * 1024
#: Reconnect backoff: first retry within 0.5 s, capped at 10 s, with jitter.
RECONNECT_FIRST = 0.25
RECONNECT_CAP = 10.0
#: With prompts in flight and no message for this long, ask /history and /queue directly.
SILENCE_CHECK = 15.0


def reconnect_delay(attempt: int) -> float:
    """min(0.25 * 2**attempt, 10) s times a jitter in [0.5, 1]: the first retry comes within 0.25 s."""
    return min(RECONNECT_FIRST * 2**attempt, RECONNECT_CAP) * random.uniform(0.5, 1.0)


class ServerConnection:
    def __init__(self, client: ComfyClient, url: str) -> None:
        self.client = client
        self.url = url
        self.trackers: dict[str, PromptTracker] = {}
        self.connected = asyncio.Event()
        self.queue_remaining = 0
        self.running_prompt: str | None = None
        self.object_info: dict[str, Any] | None = None
        self.system_stats: dict[str, Any] | None = None
        self.uploaded: dict[str, str] = {}  # sha256 -> server file name
        self.uploading: dict[str, asyncio.Future[str]] = {}  # sha256 -> the upload under way
        self.down_until = 0.0
        self.last_error = ""
        self.reconnects = 0
        self.protocol_errors = 0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_message = time.monotonic()

    # --- life cycle -----------------------------------------------------------------------------------------------
    def ensure_listening(self) -> None:
        if self._task is None or self._task.done():
            self._closing = False
            self._task = asyncio.get_running_loop().create_task(self._listen(), name=f"comfyui-ws {self.url}")

    async def wait_connected(self, timeout: float) -> None:
        self.ensure_listening()
        try:
            async with asyncio.timeout(timeout):
                await self.connected.wait()
        except TimeoutError:
            from ...runtime.errors import BackendUnavailableError

            detail = f": {self.last_error}" if self.last_error else ""
            raise BackendUnavailableError(
                f"Cannot open the event socket of {self.url}{detail}", backend=self.client.name
            ) from None

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for tracker in self.trackers.values():
            if tracker.outcome is not None and not tracker.outcome.done():
                tracker.outcome.cancel()

    # --- the socket -------------------------------------------------------------------------------------------------
    async def _listen(self) -> None:
        attempt = 0
        first = True
        while not self._closing:
            try:
                session = self.client.session(self.url)
                async with session.ws_connect(
                    "ws", params={"clientId": self.client.client_id}, max_msg_size=MAX_WS_MESSAGE, heartbeat=30.0
                ) as ws:
                    await ws.send_str(encode_message("feature_flags", {"supports_preview_metadata": True}))
                    self.connected.set()
                    self.last_error = ""
                    self.client.report_state("connected", self.url)
                    if not first:
                        self.reconnects += 1
                        asyncio.get_running_loop().create_task(self.reconcile())
                    first = False
                    attempt = 0
                    await self._read(ws)
            except asyncio.CancelledError:
                raise
            except MovieDirectorError as exc:  # e.g. online access refused: nothing to retry quickly
                self.last_error = exc.message
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            except Exception as exc:  # never let a bug kill the listener silently
                log.exception("comfyui listener for %s failed", self.url)
                self.last_error = f"{type(exc).__name__}: {exc}"
            self.connected.clear()
            if self._closing:
                break
            self.client.report_state("reconnecting", f"{self.url}: {self.last_error or 'connection closed'}")
            await asyncio.sleep(reconnect_delay(attempt))
            attempt += 1

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            try:
                msg = await ws.receive(timeout=SILENCE_CHECK)
            except TimeoutError:
                if self.trackers:
                    await self.reconcile()
                continue
            self._last_message = time.monotonic()
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._on_text(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self._on_binary(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                self.last_error = "the server closed the event socket"
                return
            elif msg.type == aiohttp.WSMsgType.ERROR:
                self.last_error = f"socket error: {ws.exception()}"
                return

    def _malformed(self, exc: ProtocolError) -> None:
        """A malformed message is reported and skipped: one bad frame never kills the listener or a job."""
        self.protocol_errors += 1
        log.warning("comfyui %s: %s", self.url, exc)
        tracker = self.trackers.get(self.running_prompt or "")
        if tracker is not None:
            self.client.tracker_text(tracker, f"ignored a malformed message from the server ({exc.message})")

    def _on_text(self, text: str) -> None:
        try:
            msg = parse_message(text)
        except ProtocolError as exc:
            self._malformed(exc)
            return
        self.dispatch(msg)

    def dispatch(self, msg: WsMessage) -> None:
        data = msg.data
        if isinstance(data, StatusData):
            self.queue_remaining = data.queue_remaining
            return
        if isinstance(data, FeatureFlagsData):
            return
        prompt_id = msg.prompt_id
        if isinstance(data, ExecutionStartData):
            self.running_prompt = prompt_id
        if isinstance(data, ExecutingData) and data.node is None and prompt_id == self.running_prompt:
            self.running_prompt = None
        tracker = self.trackers.get(prompt_id or "")
        if tracker is None:
            return
        if tracker.apply(msg):
            self.client.tracker_update(tracker)

    def _on_binary(self, data: bytes) -> None:
        try:
            frame = parse_binary_frame(data)
        except ProtocolError as exc:
            self._malformed(exc)
            return
        if isinstance(frame, PreviewFrame):
            tracker = self.trackers.get(frame.prompt_id or self.running_prompt or "")
            if tracker is not None:
                self.client.tracker_preview(tracker, frame.image, frame.media_type)
        elif isinstance(frame, TextFrame):
            tracker = self.trackers.get(self.running_prompt or "")
            if tracker is not None:
                self.client.tracker_text(tracker, frame.text)

    # --- reconciliation ---------------------------------------------------------------------------------------------
    async def reconcile(self) -> None:
        """Ask the server about every prompt in flight: finished -> resolve; queued/running -> keep listening;
        unknown (the server restarted) -> resubmit once, then fail."""
        for tracker in list(self.trackers.values()):
            if tracker.done:
                continue
            try:
                await self.reconcile_one(tracker)
            except MovieDirectorError as exc:
                log.info("comfyui %s: reconciling %s failed: %s", self.url, tracker.prompt_id, exc)

    async def reconcile_one(self, tracker: PromptTracker) -> None:
        history = parse_history(await self.client.request("GET", self.url, f"history/{tracker.prompt_id}"))
        entry = history.get(tracker.prompt_id)
        if entry is not None and entry.finished:
            tracker.resolve(self.client.outcome_from_history(entry))
            return
        queue = parse_body(QueueState, await self.client.request("GET", self.url, "queue"), "queue")
        if tracker.prompt_id in queue.running_ids() or tracker.prompt_id in queue.pending_ids():
            return
        # Unknown to the server. History is written before the final message, so one more look closes the race
        # where the prompt finished between our two requests.
        history = parse_history(await self.client.request("GET", self.url, f"history/{tracker.prompt_id}"))
        entry = history.get(tracker.prompt_id)
        if entry is not None and entry.finished:
            tracker.resolve(self.client.outcome_from_history(entry))
            return
        if tracker.resubmitted:
            tracker.lost = True
            tracker.resolve(Outcome(ok=False))
            return
        tracker.resubmitted = True
        await self.client.resubmit(self, tracker)
