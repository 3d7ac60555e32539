"""*Use these settings*: a job's request copied back into the sidebar panel it came from.

Touches bpy (main thread only). One table says, per kind of job, which scene settings hold which request value, so a
panel that gains a setting gains it here by one entry, and nothing is guessed: a value the panel cannot hold (an enum
choice the panel no longer offers, a type that does not fit) is left as it is and named in the answer.
"""

from __future__ import annotations

from typing import Any

#: (backend, kind) -> (the scene's settings attribute, {setting: request key, "params.x" = a template parameter}).
SETTINGS_MAP: dict[tuple[str, str], tuple[str, dict[str, str]]] = {
    ("comfyui", "image"): (
        "movie_director_image",
        {
            "template": "template",
            "prompt": "params.prompt",
            "negative_prompt": "params.negative_prompt",
            "width": "params.width",
            "height": "params.height",
            "steps": "params.steps",
            "cfg": "params.cfg",
            "seed": "params.seed",
            "checkpoint": "params.checkpoint",
        },
    ),
    ("wan2gp", "video"): (
        "movie_director_video",
        {
            "prompt": "prompt",
            "negative_prompt": "negative_prompt",
            "model": "model_type",
            "resolution": "resolution",
            "steps": "num_inference_steps",
            "seed": "seed",
        },
    ),
    ("audioldm", "sound"): (
        "movie_director_sound",
        {
            "prompt": "text",
            "seconds": "duration",
            "guidance_scale": "guidance_scale",
            "seed": "seed",
            "candidates": "n_candidates",
            "steps": "steps",
        },
    ),
    ("rvc", "convert"): (
        "movie_director_voice",
        {"voice": "voice", "pitch": "pitch", "f0method": "f0method", "index_rate": "index_rate", "protect": "protect"},
    ),
    ("llm", "chat_stream"): ("movie_director_llm", {"prompt": "prompt", "model": "model"}),
    ("llm", "shot_list"): ("movie_director_llm", {"scene_description": "scene", "model": "model"}),
}


def _lookup(request: dict[str, Any], path: str) -> tuple[bool, Any]:
    value: Any = request
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def can_copy(backend: str, kind: str) -> bool:
    return (backend, kind) in SETTINGS_MAP


def copy_settings(scene: Any, backend: str, kind: str, request: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Set the panel's settings from ``request``; returns (settings copied, settings that could not hold the value)."""
    if (backend, kind) not in SETTINGS_MAP:
        raise ValueError(f"A {backend} {kind} job has no panel to copy its settings to")
    attr, fields = SETTINGS_MAP[(backend, kind)]
    settings = getattr(scene, attr, None)
    if settings is None:
        raise ValueError(f"The scene has no {attr} settings (is the add-on enabled?)")
    copied, refused = [], []
    for prop, path in fields.items():
        found, value = _lookup(request, path)
        if not found or value is None or prop not in settings.bl_rna.properties:
            continue
        try:
            setattr(settings, prop, value)
        except (TypeError, ValueError):
            refused.append(prop)
        else:
            copied.append(prop)
    if (backend, kind) == ("wan2gp", "video") and isinstance(request.get("video_length"), int):
        from ..clients.wan2gp.schema import DEFAULT_FPS
        from .generate_video import SCHEMAS

        # frames, at the model's own rate as its schema declared it (Wan2GP's fallback when it was never asked)
        fps = SCHEMAS.get(str(request.get("model_type", "")), {}).get("fps") or DEFAULT_FPS
        settings.seconds = request["video_length"] / fps
        copied.append("seconds")
    return copied, refused
