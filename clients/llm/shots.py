"""The shot list a director gets from a scene description: the models the LLM must fill, and how it is asked.

Plain Python: this module never imports bpy. These pydantic models are the contract with the other backends (a
shot's description feeds an image or video prompt, its dialogue a voice, its sound cues AudioLDM), so they are
validated strictly: an answer that does not fit is repaired once or refused, never half-used.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_SPEAKER = re.compile(r"^\s*([^:\n]{1,80}?)\s*:\s*(.+)$", re.S)


class DialogueLine(BaseModel):
    """One spoken line and who speaks it: the cast maps ``character`` to its voices, so the name must be the same in
    every line a character speaks."""

    model_config = ConfigDict(extra="ignore")

    character: str = Field(min_length=1, max_length=80, description="Who speaks, e.g. MARA (the same name every time)")
    line: str = Field(min_length=1, max_length=2000, description="What they say")

    @model_validator(mode="before")
    @classmethod
    def _older_shapes(cls, value: Any) -> Any:
        """Shot lists written before the speaker was required: ``"MARA: line"`` strings, ``speaker``/``text`` keys,
        or a line with no speaker (then ``SOMEONE``)."""
        if isinstance(value, str):
            found = _SPEAKER.match(value)
            return (
                {"character": found.group(1), "line": found.group(2)}
                if found
                else {"character": "SOMEONE", "line": value}
            )
        if isinstance(value, dict):
            value = dict(value)
            value.setdefault("character", value.get("speaker") or value.get("name") or "SOMEONE")
            value.setdefault("line", value.get("text") or value.get("content"))
        return value


class Shot(BaseModel):
    model_config = ConfigDict(extra="ignore")

    description: str = Field(min_length=1, max_length=2000, description="What the camera sees, as an image prompt")
    duration_s: float = Field(ge=0.5, le=60, description="Length of the shot in seconds")
    camera: str = Field(max_length=200, description="Framing and movement, e.g. 'wide, slow push-in'")
    dialogue: list[DialogueLine] = Field(max_length=40, description="Lines spoken during the shot, in order")
    sound_cues: list[str] = Field(max_length=20, description="Sounds heard, e.g. 'rain on a tin roof'")


class ShotList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(min_length=1, max_length=200, description="A short title for the scene")
    shots: list[Shot] = Field(min_length=1, max_length=50, description="The shots, in screen order")

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.shots)


SHOT_LIST_SYSTEM = (
    "You are a film director's first assistant. Break the scene the user describes into a shot list: for each shot "
    "a visual description usable as an image prompt, its duration in seconds (0.5 to 60), the camera framing and "
    "movement, the dialogue lines spoken (each with the speaking character's name, written the same way every time, "
    "in capitals) and the sound cues. Keep the story order. Answer with "
    "JSON only, matching the given schema."
)

SCRIPT_SYSTEM = (
    "You are a screenwriter. Write in standard screenplay format (scene headings, action, character names in "
    "capitals above their lines). Write only the script, no commentary."
)
