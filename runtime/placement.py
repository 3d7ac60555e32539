"""Where a job's result lands in Blender, as data: part of the job's spec and stored with it in the journal.

Plain Python: this module never imports bpy. A :class:`Placement` names a *placer* (a function registered on the
Blender side, in ``operators/placement.py``) and everything that placer needs, as plain JSON values. Because it is
data and not a closure, a job finished after a restart (or in another session) still lands where it was asked.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Placement(BaseModel):
    """Where and how a finished job is placed.

    ``placer``: the name of a Blender-side placer. ``blend_file``: absolute path of the .blend the job was asked from
    ("" when unsaved). ``scene`` / ``scene_id``: the scene's name at submit and the stable id stamped on it (a renamed
    scene is still found). ``frame``; ``channel`` (0 = the first free one); ``name`` of the strip; ``extra``:
    placer-specific plain data (JSON values only).
    """

    model_config = ConfigDict(frozen=True)

    placer: str
    blend_file: str = ""
    scene: str = ""
    scene_id: str = ""
    frame: int = 1
    channel: int = Field(default=0, ge=0)
    name: str = ""
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("extra")
    @classmethod
    def _plain(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            return json.loads(json.dumps(value, allow_nan=False))  # type: ignore[no-any-return]
        except (TypeError, ValueError) as exc:
            raise ValueError(f"placement extras must be plain JSON values: {exc}") from None
