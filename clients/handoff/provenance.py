"""What made a generated strip: the backend, model, seed and prompt of its pipeline stage, kept on the strip.

Plain Python: this module never imports bpy. The request shapes are the Director's (``clients/director.py``); a
field a backend does not have is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Request fields that name the model, per backend's request shape.
_MODEL_FIELDS = ("model", "model_type", "template", "voice")
_PROMPT_FIELDS = ("prompt", "text", "input")


def generation_settings(backend: str, kind: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """The settings worth keeping with the take.

    >>> generation_settings("comfyui", "image", {"template": "t", "params": {"prompt": "p", "seed": 3}})
    {'backend': 'comfyui', 'kind': 'image', 'model': 't', 'seed': 3, 'prompt': 'p'}
    """
    params = request.get("params") if isinstance(request.get("params"), Mapping) else {}
    merged = {**request, **params}  # type: ignore[dict-item]
    out: dict[str, Any] = {"backend": backend, "kind": kind}
    model = next((merged[f] for f in _MODEL_FIELDS if merged.get(f)), None)
    if model is not None:
        out["model"] = str(model)
    if isinstance(merged.get("seed"), int):
        out["seed"] = merged["seed"]
    prompt = next((merged[f] for f in _PROMPT_FIELDS if isinstance(merged.get(f), str) and merged[f]), None)
    if prompt is not None:
        out["prompt"] = prompt
    return out
