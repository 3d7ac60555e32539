"""The Wan2GP MCP stand-in's models, described as Wan2GP describes its own: ``wangp_get_model_schema``'s
``{"metadata": {...}}``, ``wangp_get_default_settings``'s relevant settings with their defaults, ``wangp_list_loras``.

Plain Python: this module never imports bpy. Facts: ``docs/protocols/wan2gp.md`` ("Model schemas"), from Wan2GP's
``shared/api.py`` (``get_model_schema``), ``models/model_metadata.py``, ``models/_settings.json``, the Wan/LTX
handlers (fps 16 for Wan 2.1/2.2 14B, 24 for Wan 2.2 5B and LTX-2, 30 for LTX Video; frames 5 + 4n for Wan, 17 + 8n
for LTX-2). The settings lists are a relevant subset of a real export (Wan2GP filters its export per model too).
"""

from __future__ import annotations

from typing import Any

from .schema import DEFAULT_FPS

#: Settings every stand-in model exports (``models/_settings.json`` values), before the model's own.
COMMON: dict[str, Any] = {
    "prompt": "",
    "negative_prompt": "",
    "resolution": "832x480",
    "video_length": 81,
    "force_fps": "",
    "num_inference_steps": 30,
    "seed": -1,
    "repeat_generation": 1,
    "guidance_scale": 5,
    "flow_shift": 3,
    "sample_solver": "",
    "NAG_scale": 1,
    "NAG_tau": 3.5,
    "NAG_alpha": 0.5,
    "skip_steps_cache_type": "",
    "skip_steps_multiplier": 1.75,
    "temporal_upsampling": "",
    "spatial_upsampling": "",
    "film_grain_intensity": 0,
    "film_grain_saturation": 0.5,
    "image_prompt_type": "",
    "multi_prompts_gen_type": "PG",
    "activated_loras": [],
    "loras_multipliers": "",
}
_WAN = {"flow_shift": 5.0, "sample_solver": "unipc"}
_I2V = {**_WAN, "flow_shift": 7.0, "image_prompt_type": "S"}
_PHASES = {"guidance_phases": 2, "guidance2_scale": 5, "switch_threshold": 875, "model_switch_phase": 1}
_LTX2 = {"num_inference_steps": 8, "guidance_scale": 1, "video_length": 121, "resolution": "1280x704",
         "sample_solver": "", "flow_shift": 0}  # fmt: skip

#: (model_type, name, family, fps, frames minimum, frames step, images (start, end), own defaults, LoRAs)
MODELS: tuple[tuple[str, str, str, int, int, int, str, dict[str, Any], tuple[str, ...]], ...] = (
    ("t2v_1.3B", "Wan2.1 Text2video 1.3B", "wan", 16, 5, 4, "", _WAN, ("film_grain_1.3B.safetensors",)),
    ("t2v", "Wan2.1 Text2video 14B", "wan", 16, 5, 4, "", _WAN, ()),
    ("t2v_2_2", "Wan2.2 Text2video 14B", "wan", 16, 5, 4, "", {**_WAN, **_PHASES}, ()),
    ("i2v", "Wan2.1 Image2video 480p 14B", "wan", 16, 5, 4, "SE", _I2V, ()),
    ("i2v_720p", "Wan2.1 Image2video 720p 14B", "wan", 16, 5, 4, "SE", {**_I2V, "resolution": "1280x720"}, ()),
    ("i2v_2_2", "Wan2.2 Image2video 14B", "wan", 16, 5, 4, "SE", {**_I2V, **_PHASES}, ("lightx2v_4step.safetensors",
                                                                                     "orbit_shot.safetensors")),
    ("ti2v_2_2", "Wan2.2 TextImage2video 5B", "wan", 24, 5, 4, "S", {**_WAN, "resolution": "1280x704",
                                                                    "video_length": 121}, ()),
    ("vace_1.3B", "Vace ControlNet 1.3B", "wan", 16, 17, 4, "", {**_WAN, "video_prompt_type": ""}, ()),
    ("fantasy", "Fantasy Talking 720p", "wan", 23, 5, 4, "S", {**_I2V, "audio_guidance_scale": 5.0}, ()),
    ("hunyuan", "Hunyuan Video 720p 13B", "hunyuan", 24, 5, 4, "", {"embedded_guidance_scale": 6.0}, ()),
    ("ltxv_13B", "LTX Video 0.9.8 13B", "ltx", 30, 17, 8, "S", {"video_length": 129}, ()),
    ("ltx2_22B_distilled", "LTX-2 22B Distilled", "ltx2", 24, 17, 8, "SE", _LTX2, ()),
)  # fmt: skip
BY_TYPE = {m[0]: m for m in MODELS}


def _maximum(minimum: int, step: int) -> int:
    """Wan2GP's ``normalize_output_frame_count(97, minimum, step, 1)`` for models without a sliding window."""
    return minimum + max(0, (97 - minimum) // step) * step


def compact(model_type: str) -> dict[str, Any]:
    """A ``wangp_list_models`` record."""
    m = BY_TYPE[model_type]
    inputs = "text" + "".join(",image_" + k for k, f in (("start", "S"), ("end", "E")) if f in m[6])
    return {"model_type": m[0], "name": m[1], "family": m[2], "main_output": "video", "inputs": inputs}


def schema(model_type: str) -> dict[str, Any] | None:
    """``wangp_get_model_schema``: None for a model the server does not have, as Wan2GP answers."""
    m = BY_TYPE.get(model_type)
    if m is None:
        return None
    _type, name, family, fps, minimum, step, images, _defaults, _loras = m
    return {
        "metadata": {
            "model_type": model_type,
            "family": family,
            "base_model_type": model_type,
            "finetune": False,
            "main_output": ["video"],
            "outputs": ["video"],
            "inputs": ["text", *(["image"] if images else [])],
            "media_inputs": {
                "image": {"start": "S" in images, "end": "E" in images, "reference": False, "control": False},
                "video": {"continue": False, "last": False, "control": family == "wan" and "vace" in model_type},
                "audio": {"prompt": False, "output": False},
            },
            "capabilities": {"text_to_video": True, "image_to_video": "S" in images, "lora": True},
            "name": name,
            "description": f"{name} (stand-in)",
            "fps": fps,
            "frames_minimum": minimum,
            "frames_steps": step,
            "infos": "",
            "prompt_infos": "",
            "sliding_window": False,
            "frames_maximum": _maximum(minimum, step),
        }
    }


def default_settings(model_type: str) -> dict[str, Any]:
    """``wangp_get_default_settings``: the model's relevant settings and defaults (no ``model_type``, no media)."""
    m = BY_TYPE[model_type]
    return {**COMMON, **m[7]}


def loras(model_type: str) -> dict[str, Any]:
    """``wangp_list_loras``."""
    names = list(BY_TYPE[model_type][8])
    return {"model_type": model_type, "supported": True, "loras": names, "count": len(names)}


def fps(model_type: str) -> int:
    return BY_TYPE[model_type][3] if model_type in BY_TYPE else DEFAULT_FPS
