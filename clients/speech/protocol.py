"""The wire shapes of OpenAI's speech API as local servers serve it, read tolerantly.

Plain Python: this module never imports bpy. Facts (verified against the servers' source, see
``docs/protocols/speech.md``): the request is ``{"model", "input", "voice", "response_format", "speed"}``; the answer
is the audio itself. Voice lists are not part of OpenAI's API; where a server has one (``GET /v1/audio/voices``) it
comes in several shapes, all read here. Errors come as OpenAI's ``{"error": {"message"}}`` (LiteLLM, LocalAI,
openedai-speech) , FastAPI's ``{"detail": {...} | "..." | [...]}`` (Kokoro-FastAPI) or
``{"message", "code", "type", "param"}`` (openedai-speech's ``OpenAIStub``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: OpenAI's limit on the text of one request.
MAX_INPUT = 4096
MIN_SPEED, MAX_SPEED = 0.25, 4.0
#: OpenAI's own model name, accepted by Kokoro-FastAPI and openedai-speech; sent only when the server lists no models.
OPENAI_MODEL = "tts-1"
#: Words in a model id that mark it as a speech model (a LiteLLM proxy lists chat models beside TTS ones).
_TTS_WORDS = ("tts", "speech", "kokoro", "piper", "voice", "espeak", "xtts", "bark", "orpheus")
#: Kokoro-FastAPI accepts blends ("af_bella+af_sky", "af_bella(2)+af_sky(1)"): such names are not checked against lists.
_BLEND = re.compile(r"[+()]")
MEDIA_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "flac": "audio/flac", "opus": "audio/ogg", "aac": "audio/aac"}


class SpeakRequest(BaseModel):
    """One line to speak; empty ``voice`` / ``model`` = the server's first (from its own lists)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_INPUT)
    voice: str = Field(default="", max_length=200)
    model: str = Field(default="", max_length=200)
    speed: float = Field(default=1.0, ge=MIN_SPEED, le=MAX_SPEED)
    response_format: str = Field(default="wav", pattern="^(wav|mp3|flac)$")
    title: str = Field(default="", max_length=200)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the line is empty: write what the character says")
        return value.strip()

    @field_validator("voice", "model")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    def body(self, model: str, voice: str) -> dict[str, Any]:
        return {
            "model": model,
            "input": self.text,
            "voice": voice,
            "response_format": self.response_format,
            "speed": self.speed,
        }


def parse_voices(payload: Any) -> list[str]:
    """Voice ids from any known shape; ValueError when the payload is none of them.

    >>> parse_voices({"voices": [{"id": "af_heart", "name": "af_heart"}]})
    ['af_heart']
    >>> parse_voices({"voices": ["af_heart", "am_adam"]})
    ['af_heart', 'am_adam']
    >>> parse_voices({"data": [{"id": "alloy"}]})
    ['alloy']
    >>> parse_voices([{"voice_id": "x", "name": "X"}, "y"])
    ['x', 'y']
    """
    items: Any = payload
    if isinstance(payload, dict):
        for key in ("voices", "data", "items"):
            if isinstance(payload.get(key), list):
                items = payload[key]
                break
        else:
            raise ValueError("the voice list has no 'voices' or 'data' list")
    if not isinstance(items, list):
        raise ValueError("the voice list is not a list")
    out: list[str] = []
    for item in items[:2000]:
        name: Any = item
        if isinstance(item, dict):
            name = item.get("id") or item.get("voice_id") or item.get("name")
        if isinstance(name, str) and name.strip() and len(name) <= 200 and name.strip() not in out:
            out.append(name.strip())
    return out


def is_blend(voice: str) -> bool:
    """A voice mix (Kokoro's ``a+b`` or ``a(2)+b``): the server checks it, not our list."""
    return bool(_BLEND.search(voice))


def pick_model(models: list[str]) -> str:
    """The server's first speech model: the first id that names speech, else the first id, else OpenAI's ``tts-1``.

    >>> pick_model(["llama-3.1-8b", "kokoro"])
    'kokoro'
    >>> pick_model([])
    'tts-1'
    """
    for model in models:
        if any(word in model.lower() for word in _TTS_WORDS):
            return model
    return models[0] if models else OPENAI_MODEL


def error_message(status: int, body: bytes) -> str:
    """The server's own words from an error answer, in whichever shape it uses."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        err = parsed.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:500]
        if isinstance(parsed.get("message"), str):  # openedai-speech: {"message", "code", "type", "param"}
            return parsed["message"][:500]
        detail = parsed.get("detail", err)
        if isinstance(detail, dict):
            text = detail.get("message") or detail.get("error")
            if isinstance(text, str):
                return text[:500]
        if isinstance(detail, str):
            return detail[:500]
        if isinstance(detail, list):
            parts = []
            for item in detail[:5]:
                if isinstance(item, dict):
                    where = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    parts.append(f"{where}: {item.get('msg', '')}".strip(": "))
            if parts:
                return "; ".join(parts)[:500]
    text = body[:200].decode("utf-8", "replace").strip()
    return text or f"the server answered {status}"
