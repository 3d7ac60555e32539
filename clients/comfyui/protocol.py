"""The ComfyUI wire vocabulary, shared by our client and our emulator so that both speak exactly one dialect.

Plain Python, no bpy. Facts come from /work/shared/protocols/comfyui.md and transcripts of a real 0.3.75 server.
Models are tolerant (unknown fields are kept) because servers grow fields between releases; shapes that we
cannot use are reported as :class:`ProtocolError` and never as any other exception, so the client can log and skip
one bad frame without tearing down its event loop.

The frequent messages (``progress``, ``executing``, ``status``: dozens per second per prompt) are checked by hand into
frozen dataclasses, at a fraction of a validation's cost; the rare and complex ones keep pydantic models. Both
paths refuse the same shapes, and a non-finite number (``Infinity``, ``NaN``, ``1e400``) is a malformed frame.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...runtime.errors import ProtocolError

BACKEND = "comfyui"

#: What the server answers a client's ``feature_flags`` message with (0.3.75 defaults).
SERVER_FEATURE_FLAGS: dict[str, Any] = {"supports_preview_metadata": True, "max_upload_size": 104857600}
#: What our client announces: with it the server sends previews as event 4, which name their node and prompt.
CLIENT_FEATURE_FLAGS: dict[str, Any] = {"supports_preview_metadata": True}

_SNIPPET = 200


class MessageType(StrEnum):
    """Websocket JSON message types a 0.3.7x server sends (and ``feature_flags``, which both sides send)."""

    STATUS = "status"
    EXECUTION_START = "execution_start"
    EXECUTION_CACHED = "execution_cached"
    PROGRESS_STATE = "progress_state"
    EXECUTING = "executing"
    PROGRESS = "progress"
    EXECUTED = "executed"
    EXECUTION_SUCCESS = "execution_success"
    EXECUTION_ERROR = "execution_error"
    EXECUTION_INTERRUPTED = "execution_interrupted"
    FEATURE_FLAGS = "feature_flags"


class BinaryEventType(IntEnum):
    """First big-endian u32 of every binary websocket frame."""

    PREVIEW_IMAGE = 1
    UNENCODED_PREVIEW_IMAGE = 2  # server-internal; never on the wire
    TEXT = 3
    PREVIEW_IMAGE_WITH_METADATA = 4


class PreviewFormat(IntEnum):
    """The u32 after event type 1."""

    JPEG = 1
    PNG = 2


MEDIA_TYPES: dict[int, str] = {PreviewFormat.JPEG: "image/jpeg", PreviewFormat.PNG: "image/png"}


class WireModel(BaseModel):
    """Base of every wire model: tolerant of fields added by newer servers."""

    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------------------------------------------------
# HTTP bodies


class FileRef(WireModel):
    """A file the server wrote, as ``executed`` outputs and history name it; fetch it through GET /view."""

    filename: str
    subfolder: str = ""
    type: str = "output"


class PromptErrorInfo(WireModel):
    """One error of POST /prompt: the top-level ``error`` or one entry of a node's ``errors``."""

    type: str = ""
    message: str = ""
    details: str = ""
    extra_info: dict[str, Any] = Field(default_factory=dict)


class NodeErrors(WireModel):
    """Validation errors of one node in a 400 answer (or of a skipped output in a 200 answer)."""

    errors: list[PromptErrorInfo] = Field(default_factory=list)
    dependent_outputs: list[str] = Field(default_factory=list)
    class_type: str = ""


class PromptResponse(WireModel):
    """POST /prompt 200 body."""

    prompt_id: str
    number: float
    node_errors: dict[str, NodeErrors] = Field(default_factory=dict)


class PromptErrorResponse(WireModel):
    """POST /prompt 400 body."""

    error: PromptErrorInfo | str
    node_errors: dict[str, NodeErrors] = Field(default_factory=dict)

    def summary(self) -> str:
        """A one-line, human-readable reason, naming the first bad input when there is one."""
        head = self.error if isinstance(self.error, str) else self.error.message or self.error.type
        for node_id, node in self.node_errors.items():
            for err in node.errors:
                return f"{head}: node {node_id} ({node.class_type}): {err.message}: {err.details}".rstrip(": ")
        if not isinstance(self.error, str) and self.error.details:
            return f"{head}: {self.error.details}"
        return head


class HistoryStatus(WireModel):
    status_str: str = ""
    completed: bool = False
    messages: list[list[Any]] = Field(default_factory=list)


class HistoryEntry(WireModel):
    """One value of GET /history/{id}: the prompt tuple, the outputs per node and how the run ended."""

    prompt: list[Any] = Field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    status: HistoryStatus | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.status is not None and self.status.completed and self.status.status_str == "success"

    @property
    def finished(self) -> bool:
        """True once the server wrote the entry, whatever the outcome (history is written only at the end)."""
        return self.status is not None

    def files(self) -> list[FileRef]:
        """Every output file of every node, in node order."""
        refs: list[FileRef] = []
        for output in self.outputs.values():
            refs.extend(collect_file_refs(output))
        return refs

    def message(self, event: str) -> dict[str, Any] | None:
        """The data of the first status message named ``event`` (e.g. ``execution_error``), if any."""
        for item in self.status.messages if self.status else []:
            if len(item) >= 2 and item[0] == event and isinstance(item[1], dict):
                return item[1]
        return None


class QueueState(WireModel):
    """GET /queue: items are ``[number, prompt_id, prompt, extra_data, outputs_to_execute]``."""

    queue_running: list[list[Any]] = Field(default_factory=list)
    queue_pending: list[list[Any]] = Field(default_factory=list)

    def running_ids(self) -> list[str]:
        return [str(item[1]) for item in self.queue_running if len(item) > 1]

    def pending_ids(self) -> list[str]:
        return [str(item[1]) for item in self.queue_pending if len(item) > 1]

    def pending_ids_in_order(self) -> list[str]:
        """Pending prompt ids in the order the server will run them (by number; the server lists its heap as is)."""
        items = [item for item in self.queue_pending if len(item) > 1]
        items.sort(key=lambda item: item[0] if isinstance(item[0], (int, float)) else float("inf"))
        return [str(item[1]) for item in items]


class UploadResponse(WireModel):
    """POST /upload/image: the name the server stored the file under (it may differ after a clash)."""

    name: str
    subfolder: str = ""
    type: str = "input"


# --------------------------------------------------------------------------------------------------------------------
# Websocket message data


@dataclass(frozen=True, slots=True)
class StatusData:
    """``status`` (``{"status": {"exec_info": {"queue_remaining": N}}, "sid"}``): the queue length; the first frame on
    a socket also carries the ``sid`` the server routes by. A hot message: a plain dataclass, see ``parse_message``."""

    queue_remaining: int = 0
    sid: str | None = None


class ExecutionStartData(WireModel):
    prompt_id: str
    timestamp: int | None = None


class ExecutionCachedData(WireModel):
    nodes: list[str] = Field(default_factory=list)
    prompt_id: str
    timestamp: int | None = None


class NodeProgress(WireModel):
    value: float = 0.0
    max: float = 1.0
    state: str = "running"
    node_id: str | None = None
    prompt_id: str | None = None
    display_node_id: str | None = None
    parent_node_id: str | None = None
    real_node_id: str | None = None


class ProgressStateData(WireModel):
    """``progress_state``: every node the run has reached so far with its state (running/finished/...)."""

    prompt_id: str
    nodes: dict[str, NodeProgress] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExecutingData:
    """``executing``: ``node`` None means the prompt is done and its history is written. A hot message."""

    node: str | None
    display_node: str | None = None
    prompt_id: str | None = None


@dataclass(frozen=True, slots=True)
class ProgressData:
    """``progress``: a sampler (or any node with a progress bar) at step ``value`` of ``max``. A hot message."""

    value: float
    max: float
    prompt_id: str | None = None
    node: str | None = None


class ExecutedData(WireModel):
    """``executed``: the UI output of one output node (also sent for cached output nodes)."""

    node: str
    display_node: str | None = None
    output: dict[str, Any] | None = None
    prompt_id: str | None = None

    def files(self) -> list[FileRef]:
        return collect_file_refs(self.output or {})


class ExecutionSuccessData(WireModel):
    prompt_id: str
    timestamp: int | None = None


class ExecutionInterruptedData(WireModel):
    prompt_id: str
    node_id: str | None = None
    node_type: str | None = None
    executed: list[str] = Field(default_factory=list)
    timestamp: int | None = None


class ExecutionErrorData(WireModel):
    prompt_id: str
    node_id: str | None = None
    node_type: str | None = None
    executed: list[str] = Field(default_factory=list)
    exception_message: str = ""
    exception_type: str = ""
    traceback: list[str] = Field(default_factory=list)
    current_inputs: Any = None
    current_outputs: Any = None
    timestamp: int | None = None


class FeatureFlagsData(WireModel):
    supports_preview_metadata: bool = False
    max_upload_size: int | None = None


class GenericData(WireModel):
    """Data of a message type we do not know (custom nodes send their own); kept, never an error."""


MessageData = (
    StatusData
    | ExecutionStartData
    | ExecutionCachedData
    | ProgressStateData
    | ExecutingData
    | ProgressData
    | ExecutedData
    | ExecutionSuccessData
    | ExecutionErrorData
    | ExecutionInterruptedData
    | FeatureFlagsData
    | GenericData
)

#: The data type of each known message: pydantic models, except the hot messages' dataclasses.
DATA_MODELS: dict[str, type[Any]] = {
    MessageType.STATUS: StatusData,
    MessageType.EXECUTION_START: ExecutionStartData,
    MessageType.EXECUTION_CACHED: ExecutionCachedData,
    MessageType.PROGRESS_STATE: ProgressStateData,
    MessageType.EXECUTING: ExecutingData,
    MessageType.PROGRESS: ProgressData,
    MessageType.EXECUTED: ExecutedData,
    MessageType.EXECUTION_SUCCESS: ExecutionSuccessData,
    MessageType.EXECUTION_ERROR: ExecutionErrorData,
    MessageType.EXECUTION_INTERRUPTED: ExecutionInterruptedData,
    MessageType.FEATURE_FLAGS: FeatureFlagsData,
}

TERMINAL_TYPES = frozenset(
    {MessageType.EXECUTION_SUCCESS, MessageType.EXECUTION_ERROR, MessageType.EXECUTION_INTERRUPTED}
)


@dataclass(frozen=True, slots=True)
class WsMessage:
    """One websocket JSON message: ``type``, typed ``data``, and the whole frame as ``raw`` for anything else."""

    type: str
    data: MessageData
    #: The decoded frame; None when ``data`` was validated straight from ``text`` (``progress_state``).
    frame: Mapping[str, Any] | None = field(default=None, repr=False)
    text: str = field(default="", repr=False)

    @property
    def raw(self) -> Mapping[str, Any]:
        """The whole frame as decoded JSON (decoded on demand for a frame read in one pass)."""
        if self.frame is not None:
            return self.frame
        return _loads(self.text) if self.text else {}

    @property
    def known(self) -> bool:
        return self.type in DATA_MODELS

    @property
    def prompt_id(self) -> str | None:
        value = getattr(self.data, "prompt_id", None)
        return value if isinstance(value, str) else None

    @property
    def is_done(self) -> bool:
        """True for ``executing`` with node None: the prompt finished and /history has it."""
        return isinstance(self.data, ExecutingData) and self.data.node is None


# --------------------------------------------------------------------------------------------------------------------
# Binary frames


@dataclass(frozen=True, slots=True)
class PreviewMetadata:
    """The JSON of event 4; names the node and prompt a preview belongs to."""

    node_id: str | None = None
    prompt_id: str | None = None
    display_node_id: str | None = None
    parent_node_id: str | None = None
    real_node_id: str | None = None
    image_type: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class PreviewFrame:
    """A sampler preview (event 1 or 4). Event 1 says nothing about its prompt: attribute it to the running one."""

    event: int
    image: bytes = field(repr=False)
    media_type: str
    metadata: PreviewMetadata | None = None

    @property
    def node_id(self) -> str | None:
        return self.metadata.node_id if self.metadata else None

    @property
    def prompt_id(self) -> str | None:
        return self.metadata.prompt_id if self.metadata else None


@dataclass(frozen=True, slots=True)
class TextFrame:
    """Progress text a node sends (event 3)."""

    event: int
    node_id: str
    text: str


@dataclass(frozen=True, slots=True)
class UnknownFrame:
    """A binary event type we do not know: kept, never an error."""

    event: int
    payload: bytes = field(repr=False)


BinaryFrame = PreviewFrame | TextFrame | UnknownFrame


# --------------------------------------------------------------------------------------------------------------------
# Parsing


def _error(message: str, sample: str | bytes | None = None, **details: Any) -> ProtocolError:
    if sample is not None:
        details["sample"] = sample[:_SNIPPET] if isinstance(sample, str) else sample[:_SNIPPET].hex()
    return ProtocolError(message, backend=BACKEND, details=details)


def _first_error(exc: ValidationError) -> str:
    try:
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err.get("loc", ()))
        return f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid"))
    except Exception:  # pragma: no cover - pydantic always fills errors()
        return "invalid"


def _loads(text: str | bytes) -> Any:
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8")
    return json.loads(text)


class _ProgressStateFrame(BaseModel):
    """A whole ``progress_state`` frame, validated from its JSON text in one pass: the most frequent message (one per
    node and state change) costs a third of decoding it first and validating the result."""

    type: Literal["progress_state"]
    data: ProgressStateData


#: How the server's ``json.dumps({"type": event, "data": data})`` begins a ``progress_state`` frame.
_PROGRESS_STATE_PREFIX = '{"type": "progress_state"'


def parse_message(text: str | bytes) -> WsMessage:
    """Parse one websocket text frame; unknown types come back generic, anything unusable raises ProtocolError."""
    if type(text) is str and text.startswith(_PROGRESS_STATE_PREFIX):
        try:
            frame = _ProgressStateFrame.model_validate_json(text)
        except ValidationError:
            pass  # the general path below says what is wrong with it
        else:
            return WsMessage(type=MessageType.PROGRESS_STATE, data=frame.data, text=text)
    try:
        try:
            obj = _loads(text)
        except (ValueError, RecursionError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueError
            raise _error(f"websocket message is not JSON ({type(exc).__name__})", _sample(text)) from None
        if not isinstance(obj, dict):
            raise _error("websocket message is not a JSON object", _sample(text))
        msg_type = obj.get("type")
        if not isinstance(msg_type, str):
            raise _error("websocket message has no string 'type'", _sample(text))
        data = obj.get("data")
        fast = _FAST_PARSERS.get(msg_type)
        if fast is not None and isinstance(data, dict):
            return WsMessage(type=msg_type, data=fast(msg_type, data, text), frame=obj)
        model = DATA_MODELS.get(msg_type)
        if model is None:
            generic = GenericData.model_validate(data) if isinstance(data, dict) else GenericData()
            return WsMessage(type=msg_type, data=generic, frame=obj)
        if not isinstance(data, dict):
            raise _error(f"'{msg_type}' message has no data object", _sample(text))
        try:
            parsed = model.model_validate(data)
        except ValidationError as exc:
            raise _error(f"'{msg_type}' message is malformed: {_first_error(exc)}", _sample(text)) from None
        return WsMessage(type=msg_type, data=parsed, frame=obj)  # type: ignore[arg-type]
    except ProtocolError:
        raise
    except Exception as exc:  # a last guard: a parser bug must not look like a network failure
        raise _error(f"websocket message could not be read ({type(exc).__name__})") from None


_NUMBER_TYPES = (int, float)


def _opt_text(data: Mapping[str, Any], key: str, msg_type: str, text: str | bytes) -> str | None:
    value = data.get(key)
    if value is None or type(value) is str:
        return value
    raise _error(f"'{msg_type}' message is malformed: {key}: not a string", _sample(text))


def _fast_progress(msg_type: str, data: Mapping[str, Any], text: str | bytes) -> ProgressData:
    value: Any = data.get("value")
    maximum: Any = data.get("max")
    if (
        type(value) not in _NUMBER_TYPES
        or type(maximum) not in _NUMBER_TYPES
        or not (math.isfinite(value) and math.isfinite(maximum))
    ):
        raise _error(f"'{msg_type}' message is malformed: value and max must be finite numbers", _sample(text))
    return ProgressData(
        float(value),
        float(maximum),
        _opt_text(data, "prompt_id", msg_type, text),
        _opt_text(data, "node", msg_type, text),
    )


def _fast_executing(msg_type: str, data: Mapping[str, Any], text: str | bytes) -> ExecutingData:
    if "node" not in data:
        raise _error(f"'{msg_type}' message is malformed: node: field required", _sample(text))
    return ExecutingData(
        node=_opt_text(data, "node", msg_type, text),
        display_node=_opt_text(data, "display_node", msg_type, text),
        prompt_id=_opt_text(data, "prompt_id", msg_type, text),
    )


def _fast_status(msg_type: str, data: Mapping[str, Any], text: str | bytes) -> StatusData:
    status = data.get("status", {})
    info = status.get("exec_info", {}) if isinstance(status, dict) else None
    remaining = info.get("queue_remaining", 0) if isinstance(info, dict) else None
    if type(remaining) is float and math.isfinite(remaining) and remaining.is_integer():
        remaining = int(remaining)
    if type(remaining) is not int:
        raise _error(f"'{msg_type}' message is malformed: status.exec_info.queue_remaining", _sample(text))
    return StatusData(queue_remaining=remaining, sid=_opt_text(data, "sid", msg_type, text))


#: Hand-written parsers of the hot messages (see the module docstring).
_FAST_PARSERS: dict[str, Any] = {
    MessageType.PROGRESS: _fast_progress,
    MessageType.EXECUTING: _fast_executing,
    MessageType.STATUS: _fast_status,
}


def _sample(text: str | bytes) -> str | bytes:
    return text if isinstance(text, (str, bytes)) else bytes(text)


def _u32(data: bytes, offset: int, what: str) -> int:
    if len(data) < offset + 4:
        raise _error(f"binary frame truncated before its {what}", data, length=len(data))
    return struct.unpack_from(">I", data, offset)[0]


def _sniff_media_type(image: bytes) -> str | None:
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if image.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if image[:4] == b"RIFF" and image[8:12] == b"WEBP":
        return "image/webp"
    return None


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else (str(value) if isinstance(value, int) else None)


def parse_binary_frame(data: bytes) -> BinaryFrame:
    """Parse one websocket binary frame (events 1, 3, 4; others generic); anything inconsistent raises ProtocolError."""
    try:
        data = bytes(data)
        event = _u32(data, 0, "event type")
        if event == BinaryEventType.PREVIEW_IMAGE:
            fmt = _u32(data, 4, "image format")
            media_type = MEDIA_TYPES.get(fmt)
            if media_type is None:
                raise _error(f"preview frame has unknown image format {fmt}", data)
            image = data[8:]
            if not image:
                raise _error("preview frame has no image bytes", data)
            return PreviewFrame(event=event, image=image, media_type=media_type)
        if event == BinaryEventType.PREVIEW_IMAGE_WITH_METADATA:
            size = _u32(data, 4, "metadata length")
            end = 8 + size
            if end > len(data):
                raise _error("preview metadata runs past the end of the frame", data, length=len(data), size=size)
            try:
                meta = json.loads(data[8:end].decode("utf-8"))
            except (ValueError, RecursionError) as exc:
                raise _error(f"preview metadata is not JSON ({type(exc).__name__})", data) from None
            if not isinstance(meta, dict):
                raise _error("preview metadata is not a JSON object", data)
            image = data[end:]
            if not image:
                raise _error("preview frame has no image bytes", data)
            declared = meta.get("image_type")
            media_type = declared if isinstance(declared, str) and declared.startswith("image/") else None
            media_type = media_type or _sniff_media_type(image)
            if media_type is None:
                raise _error("preview frame has an unknown image type", data)
            metadata = PreviewMetadata(
                node_id=_opt_str(meta.get("node_id")),
                prompt_id=_opt_str(meta.get("prompt_id")),
                display_node_id=_opt_str(meta.get("display_node_id")),
                parent_node_id=_opt_str(meta.get("parent_node_id")),
                real_node_id=_opt_str(meta.get("real_node_id")),
                image_type=declared if isinstance(declared, str) else None,
                raw=meta,
            )
            return PreviewFrame(event=event, image=image, media_type=media_type, metadata=metadata)
        if event == BinaryEventType.TEXT:
            size = _u32(data, 4, "node id length")
            end = 8 + size
            if end > len(data):
                raise _error("text frame's node id runs past the end of the frame", data, length=len(data), size=size)
            try:
                node_id = data[8:end].decode("utf-8")
            except UnicodeDecodeError:
                raise _error("text frame's node id is not UTF-8", data) from None
            return TextFrame(event=event, node_id=node_id, text=data[end:].decode("utf-8", errors="replace"))
        return UnknownFrame(event=event, payload=data[4:])
    except ProtocolError:
        raise
    except Exception as exc:  # a last guard, as in parse_message
        raise _error(f"binary frame could not be read ({type(exc).__name__})") from None


T = TypeVar("T", bound=BaseModel)


def parse_body(model: type[T], body: Any, what: str = "response") -> T:
    """Validate a decoded HTTP JSON body against ``model``; a wrong shape raises ProtocolError."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _error(f"{what} is malformed: {_first_error(exc)}") from None
    except Exception as exc:
        raise _error(f"{what} could not be read ({type(exc).__name__})") from None


def parse_history(body: Any) -> dict[str, HistoryEntry]:
    """GET /history or /history/{id} body → entries by prompt id (``{}`` for an unknown id)."""
    if not isinstance(body, dict):
        raise _error("history is not a JSON object")
    return {str(k): parse_body(HistoryEntry, v, f"history entry {k}") for k, v in body.items()}


def collect_file_refs(output: Mapping[str, Any]) -> list[FileRef]:
    """Every ``{filename, subfolder, type}`` in a node's UI output, whatever the key (images, gifs, audio, ...)."""
    refs: list[FileRef] = []
    if not isinstance(output, Mapping):
        return refs
    for value in output.values():
        if not isinstance(value, list):
            continue
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("filename"), str):
                try:
                    refs.append(FileRef.model_validate(item))
                except ValidationError:
                    continue
    return refs


# --------------------------------------------------------------------------------------------------------------------
# Encoding (the emulator's side)


def encode_message(type: str, data: Mapping[str, Any] | BaseModel) -> str:
    """One websocket text frame ``{"type", "data"}``."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return json.dumps({"type": str(type), "data": data})


def _format_code(fmt: int | str) -> int:
    if isinstance(fmt, int):
        code = fmt
    else:
        code = {"JPEG": 1, "JPG": 1, "IMAGE/JPEG": 1, "PNG": 2, "IMAGE/PNG": 2}.get(fmt.upper(), 0)
    if code not in MEDIA_TYPES:
        raise ValueError(f"unsupported preview format {fmt!r}")
    return code


def encode_preview_frame(image_bytes: bytes, fmt: int | str = PreviewFormat.JPEG) -> bytes:
    """Event 1: u32 event, u32 format (1 JPEG, 2 PNG), image bytes."""
    return struct.pack(">II", BinaryEventType.PREVIEW_IMAGE, _format_code(fmt)) + bytes(image_bytes)


def encode_preview_frame_with_metadata(image_bytes: bytes, metadata: Mapping[str, Any]) -> bytes:
    """Event 4: u32 event, u32 JSON length, JSON metadata, image bytes."""
    meta = json.dumps(dict(metadata)).encode("utf-8")
    return struct.pack(">II", BinaryEventType.PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + bytes(image_bytes)


def encode_text_frame(node_id: str, text: str | bytes) -> bytes:
    """Event 3: u32 event, u32 node-id length, node id, text."""
    node = str(node_id).encode("utf-8")
    body = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return struct.pack(">II", BinaryEventType.TEXT, len(node)) + node + body


__all__ = [
    "BACKEND",
    "CLIENT_FEATURE_FLAGS",
    "DATA_MODELS",
    "MEDIA_TYPES",
    "SERVER_FEATURE_FLAGS",
    "TERMINAL_TYPES",
    "BinaryEventType",
    "BinaryFrame",
    "ExecutedData",
    "ExecutingData",
    "ExecutionCachedData",
    "ExecutionErrorData",
    "ExecutionInterruptedData",
    "ExecutionStartData",
    "ExecutionSuccessData",
    "FeatureFlagsData",
    "FileRef",
    "GenericData",
    "HistoryEntry",
    "HistoryStatus",
    "MessageData",
    "MessageType",
    "NodeErrors",
    "NodeProgress",
    "PreviewFormat",
    "PreviewFrame",
    "PreviewMetadata",
    "ProgressData",
    "ProgressStateData",
    "PromptErrorInfo",
    "PromptErrorResponse",
    "PromptResponse",
    "QueueState",
    "StatusData",
    "TextFrame",
    "UnknownFrame",
    "UploadResponse",
    "WireModel",
    "WsMessage",
    "collect_file_refs",
    "encode_message",
    "encode_preview_frame",
    "encode_preview_frame_with_metadata",
    "encode_text_frame",
    "parse_binary_frame",
    "parse_body",
    "parse_history",
    "parse_message",
]
