"""Wan2GP generation settings: the fields a film-maker sets, with Wan2GP's own defaults and clear validation.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/wan2gp.md`` ("Settings for text/image-to-video").
Unset fields are left out of the request so the server applies the model's factory defaults.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...runtime.errors import InvalidRequestError

_RESOLUTION = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


class Lora(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1)
    multiplier: float = Field(default=1.0, ge=-10.0, le=10.0)


class Wan2gpSettings(BaseModel):
    """What to generate. ``image_start``/``image_end`` are local file paths; transports upload them."""

    model_config = ConfigDict(extra="forbid")

    model_type: str = Field(default="t2v_1.3B", min_length=1)
    prompt: str = Field(min_length=1)
    negative_prompt: str = ""
    resolution: str = "832x480"
    video_length: int | None = Field(default=81, ge=1, le=1025, description="frames")
    duration: str | None = Field(default=None, description='"5s": an alternative to video_length')
    num_inference_steps: int = Field(default=30, ge=1, le=200)
    seed: int = Field(default=-1, ge=-1, le=2**32 - 1)
    guidance_scale: float = Field(default=5.0, ge=0.0, le=50.0)
    flow_shift: float | None = Field(default=None, ge=0.0, le=100.0)
    sample_solver: str | None = None
    image_start: str | None = None
    image_end: str | None = None
    force_fps: str = ""
    loras: list[Lora] = Field(default_factory=list)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str) -> str:
        match = _RESOLUTION.match(value.strip())
        if not match:
            raise ValueError(f"resolution must look like 832x480, got {value!r}")
        width, height = int(match[1]), int(match[2])
        if not (64 <= width <= 4096 and 64 <= height <= 4096):
            raise ValueError(f"resolution must be between 64x64 and 4096x4096, got {value}")
        return f"{width}x{height}"

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not _DURATION.match(value.strip()):
            raise ValueError(f'duration must look like "5s", got {value!r}')
        return value

    @field_validator("force_fps")
    @classmethod
    def _fps(cls, value: str) -> str:
        if value and not (value.isdigit() and 1 <= int(value) <= 120):
            raise ValueError(f"force_fps must be empty or a whole number of frames per second (1-120), got {value!r}")
        return value

    @model_validator(mode="after")
    def _one_length(self) -> Wan2gpSettings:
        if self.duration is not None:
            self.video_length = None
        return self

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.resolution.split("x")
        return int(width), int(height)

    def to_wan2gp(self, *, image_start: str | None = None, image_end: str | None = None) -> dict[str, Any]:
        """The settings dict Wan2GP's ``wangp_generate(source=...)`` takes; media are already-uploaded gallery ids."""
        data: dict[str, Any] = {
            "model_type": self.model_type,
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "resolution": self.resolution,
            "video_length": self.duration if self.duration is not None else self.video_length,
            "num_inference_steps": self.num_inference_steps,
            "seed": self.seed,
            "guidance_scale": self.guidance_scale,
            "force_fps": self.force_fps,
        }
        if self.flow_shift is not None:
            data["flow_shift"] = self.flow_shift
        if self.sample_solver:
            data["sample_solver"] = self.sample_solver
        if image_start:
            data["image_start"] = image_start
        if image_end:
            data["image_end"] = image_end
        if self.loras:
            data["activated_loras"] = [lora.name for lora in self.loras]
            data["loras_multipliers"] = " ".join(f"{lora.multiplier:g}" for lora in self.loras)
        return data


def parse_settings(request: dict[str, Any], backend: str = "wan2gp") -> Wan2gpSettings:
    """Validate a job request; errors name each bad field and say what is allowed."""
    try:
        return Wan2gpSettings.model_validate(request)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(p) for p in err.get("loc", ())) or "settings"
            problems.append(f"{field}: {err.get('msg', 'invalid')}")
        raise InvalidRequestError(
            "Bad video settings: " + "; ".join(problems), backend=backend, details={"problems": problems}
        ) from None
