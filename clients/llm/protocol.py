"""The OpenAI chat-completions wire format as LiteLLM speaks it: request bodies, answers, stream chunks, errors.

Plain Python: this module never imports bpy. Wire facts: ``shared/protocols/litellm.md``. Stream chunks are read with
plain ``json.loads`` and dict look-ups rather than pydantic (one per token: this is the hot path); anything that is
not the documented shape is a :class:`ProtocolError`, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...runtime.errors import (
    AuthenticationError,
    InvalidRequestError,
    MovieDirectorError,
    ProtocolError,
    RateLimitedError,
    ServerError,
    error_for_status,
    excerpt,
    parse_retry_after,
    redact_data,
)

DONE = "[DONE]"


@dataclass(slots=True)
class StreamDelta:
    """What one stream chunk carries for the first choice."""

    content: str = ""
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


@dataclass
class Completion:
    """A whole (non-streamed) answer, or the sum of a stream."""

    text: str
    model: str = ""
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        return {"model": self.model, "finish_reason": self.finish_reason, "usage": dict(self.usage)}


def parse_chunk(data: str, backend: str) -> StreamDelta:
    """One ``data:`` payload of a stream (not ``[DONE]``); a ``{"error": ...}`` payload raises the mapped error."""
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise ProtocolError(
            f"The stream carried text that is not JSON: {excerpt(data, 80)!r}", backend=backend
        ) from exc
    except RecursionError:  # JSON nested deeper than Python's parser goes
        raise ProtocolError("The stream carried JSON nested too deeply to read", backend=backend) from None
    if not isinstance(obj, dict):
        raise ProtocolError("A stream chunk is not a JSON object", backend=backend)
    if "error" in obj:
        raise error_from_payload(obj, status=None, headers={}, backend=backend, mid_stream=True)
    choices = obj.get("choices")
    usage = obj.get("usage")
    usage = redact_data(usage) if isinstance(usage, dict) else None  # bounded: it is stored
    if not choices:
        if choices is None or isinstance(choices, list):
            return StreamDelta(usage=usage)  # a usage-only chunk
        raise ProtocolError("A stream chunk has malformed choices", backend=backend)
    first = choices[0] if isinstance(choices, list) else None
    if not isinstance(first, dict):
        raise ProtocolError("A stream chunk has malformed choices", backend=backend)
    delta = first.get("delta") or {}
    if not isinstance(delta, dict):
        raise ProtocolError("A stream chunk has a malformed delta", backend=backend)
    content = delta.get("content")
    if content is not None and not isinstance(content, str):
        raise ProtocolError("A stream chunk's content is not text", backend=backend)
    finish = first.get("finish_reason")
    return StreamDelta(content or "", finish if isinstance(finish, str) else None, usage)


def parse_completion(body: Any, backend: str) -> Completion:
    """A non-streamed ``chat.completion`` answer."""
    if not isinstance(body, dict):
        raise ProtocolError("The chat answer is not a JSON object", backend=backend)
    if "error" in body:
        raise error_from_payload(body, status=None, headers={}, backend=backend)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ProtocolError("The chat answer has no choices", backend=backend)
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ProtocolError("The chat answer has no message", backend=backend)
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise ProtocolError("The chat answer's content is not text", backend=backend)
    raw_usage = body.get("usage")
    usage: dict[str, Any] = redact_data(raw_usage) if isinstance(raw_usage, dict) else {}
    finish = choices[0].get("finish_reason")
    return Completion(
        text=content or "",
        model=str(body.get("model") or ""),
        finish_reason=finish if isinstance(finish, str) else None,
        usage=usage,
    )


def parse_models(body: Any, backend: str) -> list[str]:
    """Model ids from ``GET /v1/models``."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ProtocolError("/v1/models did not answer with a list of models", backend=backend)
    return [str(m["id"]) for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


def _status_from_code(code: Any) -> int | None:
    """LiteLLM puts the HTTP status in ``error.code`` as a string ("429")."""
    try:
        value = int(str(code))
    except (TypeError, ValueError):
        return None
    return value if 100 <= value <= 599 else None


def error_from_payload(
    payload: Any,
    *,
    status: int | None,
    headers: Mapping[str, str],
    backend: str,
    mid_stream: bool = False,
    has_key: bool = True,
) -> MovieDirectorError:
    """Map an error answer (``{"error": {"message", "type", "param", "code"}}``) onto the shared hierarchy."""
    err = payload.get("error") if isinstance(payload, dict) else None
    message, kind, param = "", "", None
    if isinstance(err, dict):
        message = str(err.get("message") or "")
        kind = str(err.get("type") or "")
        param = err.get("param")
        status = status or _status_from_code(err.get("code"))
    elif isinstance(err, str):
        message = err
    details: dict[str, Any] = {"error": err} if isinstance(err, dict) else {}
    if param not in (None, "None", ""):
        details["param"] = param
    message = message or f"the server answered {status}"
    where = "The model failed in the middle of its answer: " if mid_stream else ""
    kwargs: dict[str, Any] = {"backend": backend, "status": status, "details": details}
    if kind == "no_db_connection" or "no connected db" in message.lower():
        # LiteLLM without a key database looks any key but its master key up in a database it does not have.
        return AuthenticationError(
            f"The server refused the API key ({message})",
            hint="LiteLLM has no key database here, so only its master key works: put it in the Movie Director "
            "preferences (or MOVIE_DIRECTOR_LLM_API_KEY).",
            **kwargs,
        )
    if not has_key and status == 500 and message.lower() == "internal server error":
        # A LiteLLM proxy with a master key answers a request without any key with a bare 500.
        return AuthenticationError(
            "The server refused a request without an API key",
            hint="Set the API key in the Movie Director preferences (or MOVIE_DIRECTOR_LLM_API_KEY).",
            **kwargs,
        )
    if status == 429:
        return RateLimitedError(where + message, retry_after=parse_retry_after(headers), **kwargs)
    if status in (400, 404):
        hint = None
        if param:
            hint = f"The server objected to the request's {param!r}."
        elif "model" in message.lower():
            hint = "Check the model name: Test Connection lists the server's models."
        return InvalidRequestError(where + message, hint=hint, **kwargs)
    if status is None:
        return ServerError(where + message, **kwargs)
    return error_for_status(status, where + message, backend=backend, headers=headers, details=details)
