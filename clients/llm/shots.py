"""The shot list a director gets from a scene description: the models the LLM must fill, and how it is asked.

Plain Python: this module never imports bpy. These pydantic models are the contract with the other backends (a
shot's description feeds an image or video prompt, its dialogue a voice, its sound cues AudioLDM), so they are
validated strictly: an answer that does not fit is repaired once or refused, never half-used.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DialogueLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    character: str = Field(min_length=1, max_length=80, description="Who speaks, e.g. MARA")
    line: str = Field(min_length=1, max_length=2000, description="What they say")


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
    "movement, the dialogue lines spoken (character and line) and the sound cues. Keep the story order. Answer with "
    "JSON only, matching the given schema."
)

SCRIPT_SYSTEM = (
    "You are a screenwriter. Write in standard screenplay format (scene headings, action, character names in "
    "capitals above their lines). Write only the script, no commentary."
)
