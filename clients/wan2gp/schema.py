"""What one Wan2GP model declares, read from its MCP server, and the checks a request gets against it.

Plain Python: this module never imports bpy, and nothing heavier than the shared errors (the Blender side imports
:data:`DEFAULT_FPS` from here when it places a clip, never when the add-on is enabled). Facts:
``docs/protocols/wan2gp.md`` ("Model schemas"). Three tools describe a model: ``wangp_get_model_schema`` (name, fps,
frame limits, which media it takes), ``wangp_get_default_settings`` (every setting the model uses, with its default:
the settings it declares) and ``wangp_list_loras`` (the LoRAs it can load). A request may set any declared setting,
with a value of the default's type; anything else is refused by name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...runtime.errors import InvalidRequestError, ProtocolError

#: Wan2GP's own fallback when a model declares no frame rate (``wgp.get_model_fps``: ``model_def.get("fps", 16)``).
#: The one home of this fact: everything else asks the model (``ModelSchema.fps``) and falls back to this.
DEFAULT_FPS = 16
#: Settings that are files, uploaded by the client (Wan2GP's ``ATTACHMENT_KEYS`` this client sends), and the
#: ``media_inputs.image`` capability each needs.
MEDIA_SETTINGS = {"image_start": "start", "image_end": "end"}
#: Settings the client fills itself or that would redirect the server's work (never taken from a request).
RESERVED = frozenset({"model_type", "client_id", "settings_version", "type", "base_model_type", "output_filename"})
_FORCE_FPS = re.compile(r"^(|auto|control|source|\d{1,3})$")
MAX_SETTINGS = 2000


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@dataclass(frozen=True)
class ModelSchema:
    """One model as its server describes it."""

    model_type: str
    name: str = ""
    description: str = ""
    fps: int | None = None  # None: the model does not say (Wan2GP then uses DEFAULT_FPS)
    frames_minimum: int | None = None
    frames_maximum: int | None = None
    frames_steps: int | None = None
    outputs: tuple[str, ...] = ()
    media: frozenset[str] = frozenset()  # "start", "end": which images it takes
    defaults: Mapping[str, Any] = field(default_factory=dict)
    lora_support: bool = True
    loras: tuple[str, ...] | None = None  # None: the server does not list them (any name is sent as given)

    @property
    def frame_rate(self) -> int:
        return self.fps or DEFAULT_FPS

    @property
    def declared(self) -> frozenset[str]:
        """Every setting a request may give for this model."""
        media = {key for key, need in MEDIA_SETTINGS.items() if need in self.media}
        return frozenset(set(self.defaults) - RESERVED | media)

    @classmethod
    def parse(cls, model_type: str, schema: Any, defaults: Any, loras: Any, *, url: str, backend: str) -> ModelSchema:
        """From the three tools' answers (``loras`` None without a LoRA tool); a malformed one → ProtocolError."""
        meta = schema.get("metadata") if isinstance(schema, Mapping) else None
        if not isinstance(meta, Mapping) or not isinstance(defaults, Mapping) or len(defaults) > MAX_SETTINGS:
            message = f"Wan2GP at {url} describes the model {model_type!r} in an unknown shape"
            raise ProtocolError(message, backend=backend)
        media_inputs: Any = meta.get("media_inputs")
        images: Any = media_inputs.get("image") if isinstance(media_inputs, Mapping) else None
        images = images if isinstance(images, Mapping) else {}
        fps = _int(meta.get("fps"))  # "control" and the like: not a number
        lora_names: tuple[str, ...] | None = None
        lora_support = True
        if isinstance(loras, Mapping):
            lora_support = bool(loras.get("supported", True))
            listed: Any = loras.get("loras")
            listed = listed if isinstance(listed, list) else []
            lora_names = tuple(str(n)[:300] for n in listed[:5000] if isinstance(n, str) and n.strip())
        outputs: Any = meta.get("outputs")
        outputs = outputs if isinstance(outputs, list) else []
        return cls(
            model_type=model_type,
            name=str(meta.get("name") or model_type)[:200],
            description=str(meta.get("description") or "")[:2000],
            fps=fps if fps and fps <= 240 else None,
            frames_minimum=_int(meta.get("frames_minimum")),
            frames_maximum=_int(meta.get("frames_maximum")),
            frames_steps=_int(meta.get("frames_steps")),
            outputs=tuple(str(o) for o in outputs[:10]),
            media=frozenset(k for k in ("start", "end") if images.get(k) is True),
            defaults={str(k)[:100]: v for k, v in defaults.items()},
            lora_support=lora_support,
            loras=lora_names,
        )

    def summary(self) -> dict[str, Any]:
        """Plain data for a job's outputs (the panel's LoRA list and end-image switch, the console)."""
        return {
            "model_type": self.model_type,
            "name": self.name,
            "description": self.description,
            "fps": self.frame_rate,
            "frames_minimum": self.frames_minimum,
            "frames_maximum": self.frames_maximum,
            "frames_steps": self.frames_steps,
            "start_image": "start" in self.media,
            "end_image": "end" in self.media,
            "loras": list(self.loras or ()) if self.lora_support else [],
            "lora_support": self.lora_support,
            "settings": sorted(self.declared),
            "defaults": {k: v for k, v in self.defaults.items() if k in self.declared},
        }

    # --- checks -------------------------------------------------------------------------------------------------------
    def check(self, settings: Mapping[str, Any], *, backend: str) -> None:
        """Refuse, naming the parameter, what this model does not declare or a value of the wrong type or range."""
        problems: list[str] = []
        declared = self.declared
        for key, value in settings.items():
            if key not in declared:
                problems.append(self._unknown(key))
                continue
            problem = self._value_problem(key, value)
            if problem:
                problems.append(f"{key}: {problem}")
        if problems:
            raise InvalidRequestError(
                f"Bad video settings for {self.model_type}: " + "; ".join(problems[:8]),
                backend=backend,
                details={"problems": problems, "model_type": self.model_type},
                hint="Fix the named setting and try again.",
            )

    def _unknown(self, key: str) -> str:
        if key in MEDIA_SETTINGS:
            return f"{key}: the model {self.model_type} takes no {MEDIA_SETTINGS[key]} image"
        close = difflib.get_close_matches(key, sorted(self.declared), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return f"{key!r} is not a setting of {self.model_type}{hint}"

    def _value_problem(self, key: str, value: Any) -> str:
        if key == "video_length":
            return self._length_problem(value)
        if key == "force_fps":
            ok = isinstance(value, str) and _FORCE_FPS.match(value) and (not value.isdigit() or 1 <= int(value) <= 240)
            return (
                ""
                if ok
                else f'use "", "auto", "control", "source" or a whole number of frames per second, got {value!r}'
            )
        if key == "activated_loras":
            return self._loras_problem(value)
        default = self.defaults.get(key)
        if key in MEDIA_SETTINGS or default is None or value is None:
            return ""
        if isinstance(default, bool):
            return "" if isinstance(value, bool) else f"must be true or false, got {value!r}"
        if isinstance(default, (int, float)):  # Wan2GP's JSON writes 1 for 1.0: any number will do
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"must be a number, got {value!r}"
            return ""
        if isinstance(default, str):
            return "" if isinstance(value, str) else f"must be text, got {value!r}"
        if isinstance(default, list):
            return "" if isinstance(value, list) else f"must be a list, got {value!r}"
        if isinstance(default, Mapping):
            return "" if isinstance(value, Mapping) else f"must be an object, got {value!r}"
        return ""

    def _length_problem(self, value: Any) -> str:
        if isinstance(value, str) and re.fullmatch(r"\d+(?:\.\d+)?s", value.strip()):
            seconds = float(value.strip()[:-1])
            return "" if 0 < seconds <= 3600 else f"must be a positive number of seconds, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int):
            return f'must be a number of frames or seconds such as "5s", got {value!r}'
        low, high = self.frames_minimum or 1, self.frames_maximum or 100_000
        if not low <= value <= high:
            return f"{self.model_type} makes {low} to {high} frames, got {value}"
        return ""

    def _loras_problem(self, value: Any) -> str:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"must be a list of LoRA names, got {value!r}"
        if value and not self.lora_support:
            return f"the model {self.model_type} takes no LoRAs"
        unknown = [v for v in value if self.loras is not None and v not in self.loras]
        if unknown:
            listed = ", ".join((self.loras or ())[:20]) or "none"
            return f"the server has no LoRA {unknown[0]!r} for {self.model_type} (it has: {listed})"
        return ""
