"""What an RVC job may ask for, checked before anything is sent: a film-maker hears which setting is wrong and what
it may be, not a server's stack trace.

Plain Python: this module never imports bpy. Ranges follow rvc-python's ``set_params`` and Applio's sliders (pitch
-24..24 semitones, index rate 0..1, protect 0..0.5, filter radius 0..7). Unknown settings are refused by name, so a
typo such as ``pich=3`` never silently does nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...runtime.errors import InvalidRequestError

#: Pitch extractors either server kind knows (rvc-python: rmvpe, harvest, pm, crepe; Applio adds the rest).
F0_METHODS = ("rmvpe", "harvest", "pm", "crepe", "crepe-tiny", "dio", "fcpe")
#: Largest input we send (an hour of 48 kHz stereo 16-bit WAV is ~660 MB).
MAX_INPUT_BYTES = 1024 * 1024 * 1024
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus", ".aif", ".aiff")
_VOICE_NAME = re.compile(r"^[\w][\w\-. ]{0,63}$")

#: How each setting is named to a person, with its allowed values.
LABELS = {
    "input": "input file",
    "voice": "voice",
    "pitch": "pitch (semitones, -24 to 24)",
    "f0method": f"pitch method (one of {', '.join(F0_METHODS)})",
    "index_rate": "index rate (0 to 1)",
    "filter_radius": "filter radius (0 to 7)",
    "resample_sr": "resample rate (0 = keep, up to 48000 Hz)",
    "rms_mix_rate": "volume envelope mix (0 to 1)",
    "protect": "consonant protection (0 to 0.5)",
    "speaker_id": "speaker id (0 or more)",
    "name": "voice name (letters, digits, - _ . and spaces, up to 64)",
    "sample_rate": "sample rate (32000, 40000 or 48000)",
    "epochs": "epochs (1 to 10000)",
    "batch_size": "batch size (1 to 64)",
    "save_every_epoch": "save every N epochs (1 to 100)",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class ConvertRequest(_Strict):
    """One voice conversion: a local audio file, the voice to turn it into, and RVC's inference settings."""

    input: str = Field(validation_alias=AliasChoices("input", "input_path", "path"))
    voice: str = Field(min_length=1, max_length=200)
    pitch: int = Field(0, ge=-24, le=24, validation_alias=AliasChoices("pitch", "f0up_key", "transpose"))
    f0method: Literal["rmvpe", "harvest", "pm", "crepe", "crepe-tiny", "dio", "fcpe"] = Field(
        "rmvpe", validation_alias=AliasChoices("f0method", "f0_method")
    )
    index_rate: float = Field(0.5, ge=0.0, le=1.0)
    filter_radius: int = Field(3, ge=0, le=7)
    resample_sr: int = Field(0, ge=0, le=48000)
    rms_mix_rate: float = Field(1.0, ge=0.0, le=1.0, validation_alias=AliasChoices("rms_mix_rate", "volume_envelope"))
    protect: float = Field(0.33, ge=0.0, le=0.5)
    speaker_id: int = Field(0, ge=0, le=10_000, validation_alias=AliasChoices("speaker_id", "sid"))
    title: str = ""
    output_name: str = ""

    @field_validator("input")
    @classmethod
    def _input_is_a_readable_file(cls, value: str) -> str:
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"there is no audio file at {value}")
        size = path.stat().st_size
        if size == 0:
            raise ValueError(f"{path.name} is empty")
        if size > MAX_INPUT_BYTES:
            raise ValueError(f"{path.name} is larger than {MAX_INPUT_BYTES // 2**20} MB")
        if path.suffix.lower() not in AUDIO_SUFFIXES:
            raise ValueError(f"{path.name} is not an audio file this client sends ({', '.join(AUDIO_SUFFIXES)})")
        return str(path.resolve())

    @field_validator("resample_sr")
    @classmethod
    def _resample_is_off_or_audible(cls, value: int) -> int:
        if 0 < value < 16000:
            raise ValueError("use 0 to keep the voice's own rate, or 16000 Hz and above")
        return value

    def server_params(self) -> dict[str, Any]:
        """The settings as rvc-python's ``/params`` names them."""
        return {
            "f0up_key": self.pitch,
            "f0method": self.f0method,
            "index_rate": self.index_rate,
            "filter_radius": self.filter_radius,
            "resample_sr": self.resample_sr,
            "rms_mix_rate": self.rms_mix_rate,
            "protect": self.protect,
        }


class VoicesRequest(_Strict):
    refresh: bool = False


class TrainRequest(_Strict):
    """Train a new voice on an Applio-style server: preprocess -> extract -> train -> index, as one job.

    ``dataset`` is a local folder of recordings (or one file), uploaded first; ``dataset_path`` is a folder that is
    already on the server. Exactly one of them is given.
    """

    name: str
    dataset: str = ""
    dataset_path: str = ""
    sample_rate: Literal[32000, 40000, 48000] = 40000
    epochs: int = Field(200, ge=1, le=10_000, validation_alias=AliasChoices("epochs", "total_epoch"))
    batch_size: int = Field(8, ge=1, le=64)
    save_every_epoch: int = Field(10, ge=1, le=100)
    f0method: Literal["rmvpe", "harvest", "pm", "crepe", "crepe-tiny", "dio", "fcpe"] = Field(
        "rmvpe", validation_alias=AliasChoices("f0method", "f0_method")
    )
    rvc_version: Literal["v1", "v2"] = "v2"
    pitch_guidance: bool = True
    title: str = ""

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, value: str) -> str:
        if not _VOICE_NAME.match(value) or value.strip(" .") != value:
            raise ValueError("use letters, digits, '-', '_', '.' and spaces (no folders)")
        return value

    @model_validator(mode="after")
    def _one_dataset(self) -> TrainRequest:
        if bool(self.dataset) == bool(self.dataset_path):
            raise ValueError("give either a local dataset folder (dataset) or a folder on the server (dataset_path)")
        if self.dataset:
            files = dataset_files(self.dataset)
            if not files:
                raise ValueError(f"{self.dataset} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
        return self


def dataset_files(folder_or_file: str) -> list[Path]:
    """The recordings a local dataset consists of (sorted, so uploads happen in a stable order)."""
    path = Path(folder_or_file).expanduser()
    if path.is_file():
        return [path] if path.suffix.lower() in AUDIO_SUFFIXES else []
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def parse_request(model: type[_Strict], data: dict[str, Any], *, backend: str, what: str) -> Any:
    """Validate ``data`` as ``model``; a failure becomes one InvalidRequestError naming every bad setting."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        fields = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            fields.append(field)
            label = LABELS.get(field, field or "request")
            msg = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "is not a setting RVC knows"
                label = repr(field)
            elif err["type"] == "missing":
                msg = "is missing"
            elif "input" in err and err["type"] not in ("value_error",):
                msg = f"{msg} (got {err['input']!r})"
            problems.append(f"{label} {msg}" if err["type"] in ("extra_forbidden", "missing") else f"{label}: {msg}")
        raise InvalidRequestError(
            f"Bad {what}: " + "; ".join(problems),
            backend=backend,
            details={"fields": fields},
            hint="Fix the named setting and try again.",
        ) from None
