"""Wan2GP generation settings: the common ones a film-maker sets by name (checked here, before anything is sent), plus
any other setting the chosen model declares (kept in ``extra`` and checked against the model's schema by the client:
:mod:`.schema`).

Plain Python: this module never imports bpy. Facts: ``docs/protocols/wan2gp.md``. Unset fields are left out of the
request, so the server applies the model's own defaults; no default here names a model or a value of our own.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...runtime.errors import InvalidRequestError
from .schema import DEFAULT_FPS

_RESOLUTION = re.compile(r"^(\d{2,5})x(\d{2,5})$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


class Lora(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    multiplier: float = Field(default=1.0, ge=-10.0, le=10.0)


class Wan2gpSettings(BaseModel):
    """What to generate. ``image_start``/``image_end`` are local file paths; transports upload them. ``extra`` holds
    the other settings of the request, by Wan2GP's names (``NAG_scale``, ``guidance2_scale``...)."""

    model_config = ConfigDict(extra="forbid")

    model_type: str = Field(default="", max_length=200)  # "": the server's first model (chosen by the client)
    prompt: str = Field(min_length=1)
    negative_prompt: str | None = None
    resolution: str | None = None
    video_length: int | str | None = Field(default=None, description='frames, or seconds such as "5s"')
    duration: str | None = Field(default=None, description='"5s": an alternative to video_length')
    num_inference_steps: int | None = Field(default=None, ge=1, le=1000)
    seed: int | None = Field(default=None, ge=-1, le=2**32 - 1)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=100.0)
    flow_shift: float | None = Field(default=None, ge=0.0, le=100.0)
    sample_solver: str | None = None
    image_start: str | None = None
    image_end: str | None = None
    force_fps: str | None = None
    loras: list[Lora] = Field(default_factory=list, max_length=50)
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, value: str | None) -> str | None:
        if value is None:
            return None
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
        return value.strip() if value is not None else None

    @field_validator("video_length")
    @classmethod
    def _length(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, str) and not _DURATION.match(value.strip()):
            raise ValueError(f'video_length must be a number of frames or seconds such as "5s", got {value!r}')
        if isinstance(value, int) and value < 1:
            raise ValueError(f"video_length must be at least 1 frame, got {value}")
        return value.strip() if isinstance(value, str) else value

    @field_validator("force_fps")
    @classmethod
    def _fps(cls, value: str | None) -> str | None:
        if value and value not in ("auto", "control", "source") and not (value.isdigit() and 1 <= int(value) <= 240):
            raise ValueError(f'force_fps must be "", "auto", "control", "source" or frames per second, got {value!r}')
        return value

    @model_validator(mode="after")
    def _one_length(self) -> Wan2gpSettings:
        if self.duration is not None:
            self.video_length = self.duration
            self.duration = None
        return self

    @property
    def size(self) -> tuple[int, int] | None:
        if self.resolution is None:
            return None
        width, height = self.resolution.split("x")
        return int(width), int(height)

    def with_model(self, model_type: str) -> Wan2gpSettings:
        return self.model_copy(update={"model_type": model_type})

    def to_wan2gp(self, *, image_start: str | None = None, image_end: str | None = None) -> dict[str, Any]:
        """The settings dict Wan2GP's ``wangp_generate(source=...)`` takes (only what was set; the model's defaults
        fill the rest); media are already-uploaded gallery ids."""
        data = self.wan2gp_settings()
        if self.model_type:  # empty: the app's own default model (the client names one for MCP servers)
            data = {"model_type": self.model_type, **data}
        for key, value in (("image_start", image_start), ("image_end", image_end)):
            data.pop(key, None)
            if value:
                data[key] = value
        return data

    def wan2gp_settings(self) -> dict[str, Any]:
        """Every setting the request sets, by Wan2GP's names (media still local paths), without ``model_type``."""
        data = dict(self.extra)
        for name in (
            "prompt",
            "negative_prompt",
            "resolution",
            "video_length",
            "num_inference_steps",
            "seed",
            "guidance_scale",
            "flow_shift",
            "sample_solver",
            "force_fps",
            "image_start",
            "image_end",
        ):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.loras:
            data["activated_loras"] = [lora.name for lora in self.loras]
            data["loras_multipliers"] = " ".join(f"{lora.multiplier:g}" for lora in self.loras)
        return data  # fmt: skip

    def frames(self, fps: int) -> int | None:
        """How many frames the request asks for at ``fps`` (None: the model's default length)."""
        if isinstance(self.video_length, str):
            return max(1, round(float(self.video_length[:-1]) * fps))
        return self.video_length

    def fps(self, model_fps: int | None) -> int:
        """The output frame rate: a numeric ``force_fps``, else the model's, else Wan2GP's fallback."""
        if self.force_fps and self.force_fps.isdigit():
            return int(self.force_fps)
        return model_fps or DEFAULT_FPS


def parse_settings(request: dict[str, Any], backend: str = "wan2gp") -> Wan2gpSettings:
    """Validate a job request; errors name each bad field and say what is allowed. Keys that are not common fields go
    to ``extra`` (the client checks them against the model's declared settings)."""
    fields = set(Wan2gpSettings.model_fields) - {"extra"}
    known = {k: v for k, v in request.items() if k in fields}
    extra = {str(k): v for k, v in request.items() if k not in fields}
    if isinstance(request.get("extra"), dict):
        extra = {**request["extra"], **{k: v for k, v in extra.items() if k != "extra"}}
    try:
        return Wan2gpSettings.model_validate({**known, "extra": extra})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            field = ".".join(str(p) for p in err.get("loc", ())) or "settings"
            message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(f"{field}: {message}")
        raise InvalidRequestError(
            "Bad video settings: " + "; ".join(problems), backend=backend, details={"problems": problems}
        ) from None
