"""What Wan2GP's MCP server says, read defensively: tool flavours, job snapshots, tool errors, progress events.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/wan2gp.md``. Shared by the MCP transport and
(for the snapshot shape) the stand-in's tests. Nothing here trusts the server: snapshots are validated models (bad
shapes are :class:`ProtocolError`), log lines and previews are bounded, repeated events are recognised and dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...runtime.errors import (
    InvalidRequestError,
    MovieDirectorError,
    NotFoundError,
    ProtocolError,
    ServerError,
)

if TYPE_CHECKING:
    from ...runtime.context import JobContext

#: The operations the transport needs, by their Wan2GP action name (tool ``wangp_<action>``).
ACTIONS = ("generate", "get_job", "cancel_job", "create_gallery_upload", "create_gallery_download", "list_models")
REQUIRED = ("generate", "get_job")
SESSION_TOOL = "wangp_session"
MAX_LOG_LINE = 300
MAX_PREVIEW_BYTES = 4 * 1024 * 1024
_TOOL_ERROR = re.compile(r"^Error executing tool [\w.-]+:\s*", re.IGNORECASE)


# --- tool flavours --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Toolset:
    """The server's tools and how to call each operation on them (its "flavour")."""

    params: dict[str, frozenset[str]]  # tool name -> argument names
    session_tool: str | None = None
    actions: frozenset[str] = frozenset()  # for the session flavour: the actions it declares (empty = unknown)
    media_key: str = "gallery_id"

    @classmethod
    def from_tools(cls, tools: list[Any], url: str, backend: str) -> Toolset:
        params: dict[str, frozenset[str]] = {}
        for tool in tools[:500]:
            name = getattr(tool, "name", None)
            if not isinstance(name, str):
                continue
            schema = getattr(tool, "inputSchema", None) or getattr(tool, "input_schema", None) or {}
            props = schema.get("properties") if isinstance(schema, dict) else None
            params[name] = frozenset(props) if isinstance(props, dict) else frozenset()
        session_tool = SESSION_TOOL if SESSION_TOOL in params else None
        actions: frozenset[str] = frozenset()
        if session_tool:
            schema = next((getattr(t, "inputSchema", None) or getattr(t, "input_schema", None) for t in tools
                           if getattr(t, "name", None) == SESSION_TOOL), None) or {}  # fmt: skip
            action = (schema.get("properties") or {}).get("action") or {}
            if isinstance(action, dict) and isinstance(action.get("enum"), list):
                actions = frozenset(str(a) for a in action["enum"])
        download = params.get("wangp_create_gallery_download", params.get(session_tool or "", frozenset()))
        media_key = "media_id" if "media_id" in download and "gallery_id" not in download else "gallery_id"
        toolset = cls(params=params, session_tool=session_tool, actions=actions, media_key=media_key)
        missing = [a for a in REQUIRED if not toolset.has(a)]
        if missing:
            offered = ", ".join(sorted(params)[:12]) or "none"
            raise ProtocolError(
                f"The MCP server at {url} is not a Wan2GP this version can drive: it lacks "
                f"{', '.join('wangp_' + a for a in missing)} (it offers: {offered})",
                backend=backend,
                hint="Update Wan2GP and start it with --mcp, or check the URL.",
            )
        return toolset

    def has(self, action: str) -> bool:
        if f"wangp_{action}" in self.params:
            return True
        return self.session_tool is not None and (not self.actions or action in self.actions)

    def route(self, action: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(tool name, arguments) for one operation in this server's flavour."""
        if f"wangp_{action}" in self.params:
            return f"wangp_{action}", arguments
        return SESSION_TOOL, {"action": action, **arguments}

    def arg_names(self, action: str) -> frozenset[str]:
        return self.params.get(f"wangp_{action}", self.params.get(self.session_tool or "", frozenset()))


def tool_payload(result: Any) -> tuple[bool, Any, str]:
    """(is_error, structured value or parsed text, text) of a ``CallToolResult`` from either SDK generation."""
    is_error = bool(getattr(result, "isError", None) or getattr(result, "is_error", None))
    texts = [str(getattr(c, "text", "")) for c in (getattr(result, "content", None) or []) if hasattr(c, "text")]
    text = "\n".join(texts)
    structured = getattr(result, "structuredContent", None)
    if structured is None:
        structured = getattr(result, "structured_content", None)
    if is_error:
        return True, None, text
    if isinstance(structured, dict):
        if set(structured) == {"result"}:  # FastMCP wraps lists and scalars as {"result": ...}
            return False, structured["result"], text
        return False, structured, text
    if not text.strip():
        return False, None, text
    try:
        if len(texts) == 1:
            return False, json.loads(texts[0]), text
        return False, [json.loads(t) for t in texts], text  # an unstructured list: one text item per element
    except ValueError:
        return False, text, text


def tool_error(tool: str, text: str, *, url: str, backend: str, model: str = "") -> MovieDirectorError:
    """A tool's failure ("Error executing tool NAME: message") in words a film-maker can act on."""
    message = _TOOL_ERROR.sub("", text.strip()).strip()
    if len(message) >= 2 and message[0] == message[-1] and message[0] in "'\"":
        message = message[1:-1]  # KeyError's repr
    message = message[:500] or "no reason given"
    low = message.lower()
    if "generation in progress" in low or "busy" in low:
        return ServerError(
            f"Wan2GP at {url} is busy with another generation (its own window, or another user)",
            backend=backend,
            retryable=True,
            details={"server_message": message},
            hint="Wait until it has finished, then generate again.",
        )
    if "job" in low and ("unknown" in low or "not found" in low):
        return NotFoundError(f"Wan2GP at {url} does not know this job ({message}); did it restart?", backend=backend)
    if model and "model" in low and any(w in low for w in ("unknown", "not found", "invalid", "unsupported")):
        return InvalidRequestError(
            f"Wan2GP does not know the model {model!r}: {message}",
            backend=backend,
            details={"model_type": model},
            hint="Pick one of the server's models (refresh the model list).",
        )
    if tool.endswith(("generate", "upload", "session")):
        return InvalidRequestError(f"Wan2GP refused the request ({tool}): {message}", backend=backend)
    if ("gallery" in low or "media" in low) and ("unknown" in low or "not found" in low):
        return NotFoundError(f"Wan2GP at {url} no longer has that file: {message}", backend=backend)
    return ServerError(f"Wan2GP's {tool} failed: {message}", backend=backend, retryable=False)


# --- job snapshots --------------------------------------------------------------------------------------------------
class WanEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: str = ""
    timestamp: float | None = None
    data: Any = None


class WanError(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message: str = ""
    stage: str | None = None
    task_index: int | None = None
    task_id: Any = None


class WanGalleryItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    gallery_id: str | None = None
    media_id: str | None = None
    path: str = ""
    media_type: str = ""
    filename: str = ""

    @property
    def ident(self) -> str | None:
        return self.gallery_id or self.media_id


class WanResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    success: bool = False
    cancelled: bool = False
    generated_files: list[str] = Field(default_factory=list, max_length=256)
    errors: list[WanError] = Field(default_factory=list, max_length=256)
    gallery_items: list[WanGalleryItem] = Field(default_factory=list, max_length=256)


class JobSnapshot(BaseModel):
    """``wangp_generate``/``wangp_get_job``/``wangp_cancel_job``: running = not done; the state is in ``result``."""

    model_config = ConfigDict(extra="ignore")

    job_id: str = Field(min_length=1, max_length=200)
    done: bool = False
    cancel_requested: bool = False
    events: list[WanEvent] = Field(default_factory=list, max_length=5000)
    result: WanResult | None = None

    @classmethod
    def parse(cls, value: Any, *, url: str, backend: str) -> JobSnapshot:
        try:
            return cls.model_validate(value)
        except ValidationError as exc:
            where = ".".join(str(p) for p in exc.errors()[0].get("loc", ())) or "the answer"
            raise ProtocolError(
                f"Wan2GP at {url} sent a job snapshot that cannot be read ({where}: {exc.errors()[0].get('msg')})",
                backend=backend,
            ) from None


# --- events -> progress, log lines and previews -----------------------------------------------------------------------
#: Where each phase sits on the job's progress bar (inference gets most of it: it is most of the time).
BANDS: dict[str, tuple[float, float]] = {
    "loading_model": (0.0, 0.08),
    "downloading_model": (0.0, 0.08),
    "encoding_text": (0.08, 0.12),
    "inference": (0.12, 0.92),
    "decoding": (0.92, 0.97),
    "downloading_output": (0.97, 0.99),
}


def _band(phase: str) -> tuple[float, float] | None:
    return BANDS["inference"] if phase.startswith("inference") else BANDS.get(phase)


def _num(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**7 else None


def _line(value: Any) -> str:
    """A one-line log text from an event's data (str, or a dict with a text-like field)."""
    if isinstance(value, dict):
        for key in ("text", "message", "status", "info", "path"):
            if isinstance(value.get(key), str):
                value = value[key]
                break
        else:
            return ""
    if not isinstance(value, str):
        return ""
    text = " ".join(value.replace("\r", "\n").split("\n")[-1].split()) or " ".join(value.split())
    return text[:MAX_LOG_LINE]


def preview_image(data: Any) -> tuple[bytes, str] | None:
    """(bytes, media type) of an image a preview event carries (base64, optionally a data URL), if any."""
    if not isinstance(data, dict):
        return None
    raw = data.get("image") or data.get("image_base64") or data.get("preview")
    media = data.get("media")
    if raw is None and isinstance(media, dict):
        raw = media.get("data") or media.get("base64")
    if not isinstance(raw, str) or len(raw) > MAX_PREVIEW_BYTES * 4 // 3 + 64:
        return None
    if raw.startswith("data:"):
        raw = raw.partition(",")[2]
    try:
        blob = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None
    if blob.startswith(b"\xff\xd8\xff"):
        return blob, "image/jpeg"
    if blob.startswith(b"\x89PNG\r\n\x1a\n"):
        return blob, "image/png"
    if blob[:4] == b"RIFF" and blob[8:12] == b"WEBP":
        return blob, "image/webp"
    return None


@dataclass
class EventFollower:
    """Turns each poll's last-N events into progress, log lines and previews, each event once.

    Wan2GP returns only the last ``event_limit`` events and they carry no sequence number, so an event is known by
    its kind, timestamp and data; the ones already seen in an earlier poll are skipped.
    """

    ctx: JobContext
    fraction: float = 0.0
    started: bool = False
    _seen: set[str] = field(default_factory=set)
    _order: deque[str] = field(default_factory=deque)
    _last_line: str = ""

    def feed(self, events: list[WanEvent]) -> bool:
        """Handle the new events; True when there was anything new."""
        new = False
        for event in events:
            key = f"{event.kind}|{event.timestamp!r}|{json.dumps(event.data, sort_keys=True, default=str)[:2000]}"
            if key in self._seen:
                continue
            self._remember(key)
            new = True
            self._handle(event)
        return new

    def _remember(self, key: str) -> None:
        self._seen.add(key)
        self._order.append(key)
        if len(self._order) > 20_000:
            self._seen.discard(self._order.popleft())

    def _handle(self, event: WanEvent) -> None:
        kind, data = event.kind, event.data
        if kind in ("progress", "preview"):
            self._progress(data)
            image = preview_image(data) if kind == "preview" else None
            if image is not None:
                self.ctx.report_progress(preview=image[0], preview_media_type=image[1])
        elif kind in ("stream", "status", "info"):
            self.log(_line(data))
        elif kind == "error":
            self.log("Error: " + (_line(data) or "see the Wan2GP console"))
        elif kind == "output":
            text = _line(data)
            self.log("Output: " + text.rsplit("/", 1)[-1] if text else "Output written")
        elif kind == "started":
            self.started = True

    def _progress(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        self.started = True
        phase = str(data.get("phase") or "")[:40]
        step, total = _num(data.get("current_step")), _num(data.get("total_steps"))
        percent = data.get("progress")
        band = _band(phase)
        if band is not None:
            low, high = band
            if step is not None and total:
                inner = min(step / total, 1.0)
            elif isinstance(percent, (int, float)) and not isinstance(percent, bool):
                inner = min(max(float(percent) / 100.0, 0.0), 1.0)
            else:
                inner = 0.0
            self.fraction = max(self.fraction, low + (high - low) * inner)  # a bar never runs backwards
        status = _line(data.get("status")) if isinstance(data.get("status"), str) else None
        self.ctx.report_progress(
            self.fraction,
            stage=phase.replace("_", " ") if phase else None,
            message=status,
            step=step if step is not None and total else 0,  # 0/0: a phase without steps hides the old count
            total=total if step is not None and total else 0,
        )

    def log(self, line: str) -> None:
        if line and line != self._last_line:
            self._last_line = line
            self.ctx.log(line)
