"""One ComfyUI server: its websocket (kept open, reconnected as a loop), the prompts in flight on it, and
reconciliation after every reconnect.

Plain Python: this module never imports bpy, nor the client that owns it: what it needs of its owner is the small
:class:`ConnectionOwner` interface, and what it learns about a prompt goes to that prompt's tracker, which reports to
its job. Facts (``docs/protocols/comfyui.md``): the server keeps one socket per client id, and the handler of a
closing socket removes the id's registration unconditionally, so a reconnect under the same id can be silenced by the
old socket's late clean-up (a half-open drop). Every connection therefore takes a fresh client id; prompts sent under
an earlier id are followed through /history (finished?) and /queue (still there?); a prompt in neither was lost by a
server restart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp

from ...runtime.errors import BackendUnavailableError, MovieDirectorError, ProtocolError
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
from .tracking import Outcome, PromptTracker, outcome_from_history

log = logging.getLogger(__name__)

#: Preview frames can be large: the 4 MiB default of websocket clients is too small (protocol notes).
MAX_WS_MESSAGE = 64 * 1024 * 1024
#: Reconnect backoff: first retry within 0.5 s, capped at 10 s, with jitter.
RECONNECT_FIRST = 0.25
RECONNECT_CAP = 10.0
#: With prompts in flight and no message for this long, ask /history and /queue directly.
SILENCE_CHECK = 15.0
#: Prompts whose events go to an earlier connection's client id are looked up this often (growing to the cap).
WATCH_FIRST = 0.5
WATCH_CAP = 5.0
#: At most one GET /queue (it carries every queued prompt's graph) per this many seconds for queue positions.
QUEUE_LOOK_INTERVAL = 0.5


def reconnect_delay(attempt: int) -> float:
    """min(0.25 * 2**attempt, 10) s times a jitter in [0.5, 1]: the first retry comes within 0.25 s."""
    return min(RECONNECT_FIRST * 2**attempt, RECONNECT_CAP) * random.uniform(0.5, 1.0)


class ConnectionOwner(Protocol):
    """What a connection needs of the client that owns it."""

    name: str
    #: ``report_state(state, message)``: connected / reconnecting, for the runtime's backend status.
    report_state: Callable[[str, str], None]

    def session(self, base_url: str) -> aiohttp.ClientSession: ...

    async def request(
        self, method: str, base_url: str, path: str, *, json_body: Any = None, deadline: float | None = None
    ) -> Any: ...

    async def resubmit(self, conn: ServerConnection, tracker: PromptTracker) -> None: ...


class ServerConnection:
    """One server: its socket under a fresh client id per connection, the prompts in flight, their reconciliation."""

    def __init__(self, owner: ConnectionOwner, url: str, id_prefix: str = "") -> None:
        self.owner = owner
        self.url = url
        self._id_prefix = id_prefix
        #: The id of the current (or next) socket; prompts are sent with it so that their events come to us.
        self.client_id = self._new_client_id()
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
        #: When the socket last delivered a frame (the loop's clock).
        self.last_heard = 0.0
        self.reconnects = 0
        self.protocol_errors = 0
        self._task: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._queue_check: asyncio.Task[None] | None = None
        self._queue_changed = False
        self._closing = False

    def _new_client_id(self) -> str:
        return f"{self._id_prefix}-{uuid.uuid4().hex[:12]}" if self._id_prefix else uuid.uuid4().hex

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
            detail = f": {self.last_error}" if self.last_error else ""
            raise BackendUnavailableError(
                f"Cannot open the event socket of {self.url}{detail}", backend=self.owner.name
            ) from None

    async def close(self) -> None:
        self._closing = True
        tasks = [t for t in (self._task, self._watcher, self._queue_check) if t is not None]
        self._task = self._watcher = self._queue_check = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for tracker in self.trackers.values():
            if tracker.outcome is not None and not tracker.outcome.done():
                tracker.outcome.cancel()

    def track(self, tracker: PromptTracker) -> None:
        """Follow a prompt on this server; register it *before* its POST: events may arrive before the answer."""
        self.trackers[tracker.prompt_id] = tracker
        if tracker.client_id != self.client_id:
            self.watch_orphans()

    # --- the socket -------------------------------------------------------------------------------------------------
    async def _listen(self) -> None:
        attempt = 0
        first = True
        while not self._closing:
            try:
                session = self.owner.session(self.url)
                async with session.ws_connect(
                    "ws", params={"clientId": self.client_id}, max_msg_size=MAX_WS_MESSAGE, heartbeat=30.0
                ) as ws:
                    await ws.send_str(encode_message("feature_flags", {"supports_preview_metadata": True}))
                    self.connected.set()
                    self.last_error = ""
                    self.owner.report_state("connected", self.url)
                    if not first:
                        self.reconnects += 1
                        asyncio.get_running_loop().create_task(self.reconcile())
                        self.watch_orphans()
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
            # A fresh id before the wait: prompts sent while we are away carry the next socket's id, and the old
            # socket's late clean-up on the server can never unregister the new one.
            self.client_id = self._new_client_id()
            if self._closing:
                break
            self.owner.report_state("reconnecting", f"{self.url}: {self.last_error or 'connection closed'}")
            await asyncio.sleep(reconnect_delay(attempt))
            attempt += 1

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Dispatch every frame until the socket ends. Silence is watched beside it (:meth:`_watch_silence`): a
        receive timeout would arm and cancel a timer for every frame, a tenth of the client's CPU per job."""
        loop = asyncio.get_running_loop()
        self.last_heard = loop.time()
        watchdog = loop.create_task(self._watch_silence())
        try:
            while True:
                msg = await ws.receive()
                self.last_heard = loop.time()
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
        finally:
            watchdog.cancel()

    async def _watch_silence(self) -> None:
        """With prompts in flight and no frame for :data:`SILENCE_CHECK` seconds, ask /history and /queue directly
        (a server that lost our socket's registration goes on running our prompts without telling us)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(self.last_heard + SILENCE_CHECK - loop.time(), 0.0))
            if loop.time() - self.last_heard < SILENCE_CHECK:
                continue  # a frame came meanwhile
            self.last_heard = loop.time()  # the next look, one period later if the silence goes on
            if self.trackers:
                await self.reconcile()

    def _malformed(self, exc: ProtocolError) -> None:
        """A malformed message is reported and skipped: one bad frame never kills the listener or a job."""
        self.protocol_errors += 1
        log.warning("comfyui %s: %s", self.url, exc)
        tracker = self.trackers.get(self.running_prompt or "")
        if tracker is not None:
            tracker.text(f"ignored a malformed message from the server ({exc.message})")

    def _on_text(self, text: str) -> None:
        try:
            msg = parse_message(text)
        except ProtocolError as exc:
            self._malformed(exc)
            return
        try:
            self.dispatch(msg)
        except Exception as exc:  # a last guard: one message must never end the listener
            log.exception("comfyui %s: handling a %s message failed", self.url, msg.type)
            self._malformed(ProtocolError(f"a {msg.type} message could not be used ({type(exc).__name__})"))

    def dispatch(self, msg: WsMessage) -> None:
        data = msg.data
        if isinstance(data, StatusData):
            self.queue_remaining = data.queue_remaining
            self._check_queue_positions()
            return
        if isinstance(data, FeatureFlagsData):
            return
        prompt_id = msg.prompt_id
        if isinstance(data, ExecutionStartData):
            self.running_prompt = prompt_id
        if isinstance(data, ExecutingData) and data.node is None and prompt_id == self.running_prompt:
            self.running_prompt = None
        tracker = self.trackers.get(prompt_id or "")
        if tracker is not None:
            tracker.handle(msg)

    def _on_binary(self, data: bytes) -> None:
        try:
            frame = parse_binary_frame(data)
        except ProtocolError as exc:
            self._malformed(exc)
            return
        if isinstance(frame, PreviewFrame):
            tracker = self.trackers.get(frame.prompt_id or self.running_prompt or "")
            if tracker is not None:
                tracker.preview(frame.image, frame.media_type)
        elif isinstance(frame, TextFrame):
            tracker = self.trackers.get(self.running_prompt or "")
            if tracker is not None:
                tracker.text(frame.text)

    # --- queue positions --------------------------------------------------------------------------------------------
    def _waiting(self) -> list[PromptTracker]:
        return [t for t in self.trackers.values() if not t.started and not t.done]

    def _check_queue_positions(self) -> None:
        """The queue changed: when prompts of ours wait in it, learn their places (throttled, one look at a time)."""
        if not self._waiting():
            return
        self._queue_changed = True
        if self._queue_check is None or self._queue_check.done():
            self._queue_check = asyncio.get_running_loop().create_task(self._queue_positions())

    async def _queue_positions(self) -> None:
        while self._queue_changed and self._waiting():
            self._queue_changed = False
            try:
                queue = parse_body(QueueState, await self.owner.request("GET", self.url, "queue"), "queue")
            except MovieDirectorError as exc:
                log.info("comfyui %s: reading the queue failed: %s", self.url, exc)
                return
            places = {prompt_id: n for n, prompt_id in enumerate(queue.pending_ids_in_order(), start=1)}
            for tracker in self._waiting():
                tracker.queued_at(places.get(tracker.prompt_id))
            await asyncio.sleep(QUEUE_LOOK_INTERVAL)

    # --- reconciliation ---------------------------------------------------------------------------------------------
    def watch_orphans(self) -> None:
        """Follow, through /history and /queue, the prompts whose events go to an earlier connection's id."""
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch_orphans())

    def _orphans(self) -> list[PromptTracker]:
        return [t for t in self.trackers.values() if not t.done and t.client_id != self.client_id]

    async def _watch_orphans(self) -> None:
        delay = WATCH_FIRST
        while orphans := self._orphans():
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, WATCH_CAP)
            for tracker in orphans:
                if tracker.done:
                    continue
                try:
                    await self.reconcile_one(tracker)
                except MovieDirectorError as exc:
                    log.info("comfyui %s: checking %s failed: %s", self.url, tracker.prompt_id, exc)

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

    async def finished_entry(self, prompt_id: str) -> Outcome | None:
        """The outcome /history records for a prompt, or None while it has none; a malformed answer raises."""
        history = parse_history(await self.owner.request("GET", self.url, f"history/{prompt_id}"))
        entry = history.get(prompt_id)
        return outcome_from_history(entry) if entry is not None and entry.finished else None

    async def known(self, prompt_id: str) -> bool:
        """Whether the server has the prompt: queued, running, or finished."""
        queue = parse_body(QueueState, await self.owner.request("GET", self.url, "queue"), "queue")
        if prompt_id in queue.running_ids() or prompt_id in queue.pending_ids():
            return True
        return await self.finished_entry(prompt_id) is not None

    async def reconcile_one(self, tracker: PromptTracker) -> None:
        outcome = await self.finished_entry(tracker.prompt_id)
        if outcome is not None:
            tracker.resolve(outcome)
            return
        queue = parse_body(QueueState, await self.owner.request("GET", self.url, "queue"), "queue")
        if tracker.prompt_id in queue.running_ids() or tracker.prompt_id in queue.pending_ids():
            if tracker.prompt_id in queue.running_ids() and not tracker.started:
                tracker.started = True
                tracker.queue_position = None
                tracker.report()
            return
        # Unknown to the server. History is written before the final message, so one more look closes the race
        # where the prompt finished between our two requests.
        outcome = await self.finished_entry(tracker.prompt_id)
        if outcome is not None:
            tracker.resolve(outcome)
            return
        if tracker.resubmitted:
            tracker.lost = True
            tracker.resolve(Outcome(ok=False))
            return
        tracker.resubmitted = True
        await self.owner.resubmit(self, tracker)
