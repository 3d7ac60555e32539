"""Generate Video: a prompt (and optionally the image strip under the playhead as the first frame, an end image and
LoRAs) becomes a Wan2GP video, placed as a movie strip at the playhead on the first free channel. Also the model list
and the chosen model's schema the sidebar shows, and the console functions ``generate_video``, ``video_models`` and
``video_schema``.

Touches bpy (main thread only). The operator queues the job and returns at once (the status bar and the Jobs panel
show "inference 12/30" and a cancel button) and leaves the handle in ``addon_runtime.last_handle``. A length in
seconds is sent as Wan2GP's ``"5s"``: the server counts it at the model's own frame rate, which the job reports back
(``outputs.data["fps"]``). The model list, the model's LoRAs and what it declares are caches in the window manager and
:data:`SCHEMAS` (never saved in a .blend), filled by the refresh operator, choosing a model, or the console
functions. The per-model settings (steps, guidance, flow shift) are sent only once set: by the user, or filled from
the model's defaults when its schema arrives (choosing another model clears them).
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime
from . import sequencer
from .base import JobOperator
from .generate_image import export_input_image
from .placement import placement_for, register_placer

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job
    from ..runtime.placement import Placement

log = logging.getLogger(__name__)

BACKEND = "wan2gp"
RESOLUTIONS = ("832x480", "480x832", "1280x720", "720x1280", "624x624", "960x960", "1024x576", "576x1024")
#: What the sidebar knows about the model list besides the names: when it was listed, the last failure.
MODEL_STATE: dict[str, Any] = {"updated": 0.0, "error": "", "busy": False}
#: The video job the sidebar follows (progress bar and the server's latest log line).
CURRENT: dict[str, Any] = {"handle": None}
#: What each model declares (``clients.wan2gp.schema.ModelSchema.summary``), by model type, as last asked.
SCHEMAS: dict[str, dict[str, Any]] = {}
#: Settings whose defaults differ per model: filled from the model's schema, cleared when the model changes.
MODEL_SETTINGS = {"steps": "num_inference_steps", "guidance_scale": "guidance_scale", "flow_shift": "flow_shift"}


# --- placing ----------------------------------------------------------------------------------------------------------
def place_movie(
    scene: Any, path: str, *, frame: int, name: str = "", channel: int = 0, frames: int = 0, fps: float = 0
) -> Any:
    """The whole clip at ``frame``, playing at its own speed, on ``channel`` or the first channel free for its length
    (``frames`` at ``fps``: the clip's expected length, as the job reports it; the strip takes the file's real one)."""
    from ..clients.wan2gp.schema import DEFAULT_FPS  # on the first clip placed: not when the add-on is enabled

    length = max(1, round(frames * sequencer.scene_fps(scene) / (fps or DEFAULT_FPS)))
    channel = channel or sequencer.first_free_channel(scene, frame, frame + length)
    return sequencer.place_movie(scene, path, frame=frame, name=name, channel=channel)


def place_job_video(scene: Any, job: Job, placement: Placement) -> list[Any]:
    """Every video a finished job produced, one after another from the placement's frame (the "video" placer)."""
    frame = placement.frame
    name = str(placement.name or job.request.get("title") or "video")[:48]
    placed = []
    for out in (f for f in job.outputs.files if f.media_type.startswith("video/")):
        data = job.outputs.data
        frames, fps = int(data.get("frames") or 0), float(data.get("fps") or 0)
        strip = place_movie(scene, out.path, frame=frame, name=name, channel=placement.channel, frames=frames, fps=fps)
        placed.append(strip)
        frame = strip.frame_final_end
    return placed


register_placer("video", place_job_video)


# --- submitting -----------------------------------------------------------------------------------------------------
def video_request(
    prompt: str,
    *,
    seconds: float | None = None,
    frames: int | None = None,
    start_image: str | None = None,
    end_image: str | None = None,
    loras: list[tuple[str, float]] | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """A Wan2GP "video" job request from plain values; ``settings`` are any the model declares, by Wan2GP's names
    (model_type, resolution, num_inference_steps, seed, negative_prompt, guidance_scale, flow_shift, NAG_scale...);
    ``loras`` are (name, multiplier) pairs. A length that is not above 0 is refused, naming its range."""
    from ..runtime.errors import positive_number

    if seconds is not None:
        seconds = positive_number("seconds", seconds, backend=BACKEND)
    if frames is not None:
        frames = int(positive_number("frames", frames, backend=BACKEND))
    request: dict[str, Any] = {"prompt": prompt, **settings, "title": prompt[:60]}
    if frames is not None:
        request["video_length"] = int(frames)
    elif seconds is not None:
        request["video_length"] = f"{max(0.1, round(float(seconds), 2)):g}s"  # at the model's own frame rate
    if start_image:
        request["image_start"] = str(start_image)
    if end_image:
        request["image_end"] = str(end_image)
    if loras:
        request["loras"] = [{"name": name, "multiplier": float(mult)} for name, mult in loras]
    return request


def submit_video(request: dict[str, Any], placement: Placement | None = None) -> JobHandle:
    """Queue one video job (placed when done if ``placement``); the sidebar follows it."""
    handle = addon_runtime.runtime().submit(BACKEND, "video", request, placement=placement)
    CURRENT["handle"] = handle
    handle.on_progress(_redraw).on_log(lambda job, line: _redraw(job))
    return handle


def _redraw(job: Job) -> None:
    addon_runtime.tag_redraw()


def generate_video(
    prompt: str,
    *,
    seconds: float | None = None,
    frames: int | None = None,
    start_image: str | None = None,
    end_image: str | None = None,
    loras: list[tuple[str, float]] | None = None,
    frame: int | None = None,
    scene: Any = None,
    **settings: Any,
) -> JobHandle:
    """Generate a video with Wan2GP; when it is done it lands as a movie strip at ``frame`` (the playhead by default)
    on the first free channel. Give the length as ``frames`` or ``seconds`` (at the model's frame rate);
    ``start_image``/``end_image`` are files used as the first/last frame; ``loras`` are (name, multiplier) pairs;
    ``settings`` are any the model declares (model_type, resolution, num_inference_steps, seed, guidance_scale...;
    ``video_schema(model).result(10).data["settings"]`` lists them). No model_type: the server's first model."""
    placement = placement_for(scene or bpy.context.scene, "video", frame=frame, name=prompt[:48])
    request = video_request(
        prompt, seconds=seconds, frames=frames, start_image=start_image, end_image=end_image, loras=loras, **settings
    )
    return submit_video(request, placement)


def video_models(refresh: bool = False) -> JobHandle:
    """Ask Wan2GP for its models (from the client's cache unless ``refresh``); the sidebar's list is updated when the
    answer comes. ``video_models().result(10).data["models"]`` is the list itself."""
    handle = addon_runtime.runtime().submit(BACKEND, "models", {"refresh": refresh})
    MODEL_STATE["busy"] = True
    handle.on_complete(_store_models)
    handle.on_error(_models_failed)
    return handle


def _store_models(job: Job) -> None:
    names = [str(n) for n in job.outputs.data.get("models") or []]
    for wm in bpy.data.window_managers:
        items = wm.movie_director_video_models
        items.clear()
        for name in names:
            items.add().name = name
    MODEL_STATE.update(updated=time.time(), error="", busy=False)
    addon_runtime.tag_redraw()


def _models_failed(job: Job) -> None:
    MODEL_STATE.update(error=job.error.message if job.error else "the model list could not be read", busy=False)
    addon_runtime.tag_redraw()


def video_schema(model: str = "", refresh: bool = False) -> JobHandle:
    """Ask Wan2GP what ``model`` declares (empty: the server's first model): its frame rate, frame limits, whether
    it takes a start/end image, its LoRAs, and every setting with its default. The sidebar's LoRA list and the
    scene's per-model settings are filled from the answer."""
    handle = addon_runtime.runtime().submit(BACKEND, "schema", {"model_type": model, "refresh": refresh})
    handle.on_complete(_store_schema)
    return handle


def _store_schema(job: Job) -> None:
    data = dict(job.outputs.data)
    model = str(data.get("model_type") or "")
    SCHEMAS[model] = data
    defaults = data.get("defaults") or {}
    for wm in bpy.data.window_managers:
        items = wm.movie_director_video_loras
        items.clear()
        for name in data.get("loras") or []:
            items.add().name = str(name)
    for scene in bpy.data.scenes:
        settings = scene.movie_director_video
        if settings.model.strip() not in (model, ""):
            continue
        for prop, key in MODEL_SETTINGS.items():
            if not settings.is_property_set(prop) and isinstance(defaults.get(key), (int, float)):
                setattr(settings, prop, defaults[key])
    addon_runtime.tag_redraw()


def schema_of(settings: Any) -> dict[str, Any]:
    """The cached schema of the scene's chosen model ({} until it was asked for)."""
    return SCHEMAS.get(settings.model.strip(), {})


def _model_changed(settings: Any, context: Any) -> None:
    """Another model: its own defaults apply, and its schema (LoRAs, end image) is asked for."""
    for prop in MODEL_SETTINGS:
        settings.property_unset(prop)
    if addon_runtime.current() is not None and settings.model.strip():
        video_schema(settings.model.strip())


# --- Blender types ----------------------------------------------------------------------------------------------------
def _resolutions(self: Any, context: Any, edit_text: str) -> list[str]:
    return [r for r in RESOLUTIONS if edit_text in r] or list(RESOLUTIONS)


class MOVIEDIR_PG_video_model(bpy.types.PropertyGroup):
    """One model the server offers (its ``name`` is the model type), or one LoRA the chosen model can load."""


class MOVIEDIR_PG_video_lora(bpy.types.PropertyGroup):
    name: bpy.props.StringProperty(name="LoRA", description="A LoRA the model can load")  # type: ignore[valid-type]
    multiplier: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Strength", description="How strongly the LoRA applies", default=1.0, soft_min=0.0, soft_max=2.0,
        min=-10.0, max=10.0,
    )  # fmt: skip


class MOVIEDIR_PG_video_settings(bpy.types.PropertyGroup):
    model: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Model", description="Wan2GP model type (refresh to list the server's; empty = the server's first)",
        default="", update=_model_changed,
    )  # fmt: skip
    prompt: bpy.props.StringProperty(name="Prompt", default="")  # type: ignore[valid-type]
    negative_prompt: bpy.props.StringProperty(name="Negative", default="")  # type: ignore[valid-type]
    resolution: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Resolution", description="Width x height, e.g. 832x480 (empty = the model's default)", default="",
        search=_resolutions,
    )  # fmt: skip
    seconds: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Length", description="Seconds of video (counted at the model's own frame rate)", default=5.0, min=0.1,
        max=60.0, unit="TIME_ABSOLUTE",
    )  # fmt: skip
    steps: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Steps", description="Denoising steps (filled with the model's default)", default=30, min=1, max=1000
    )
    guidance_scale: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Guidance", description="How closely to follow the prompt (filled with the model's default)",
        default=5.0, min=0.0, max=100.0,
    )  # fmt: skip
    flow_shift: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Flow Shift", description="Flow matching shift (filled with the model's default)", default=5.0,
        min=0.0, max=100.0,
    )  # fmt: skip
    seed: bpy.props.IntProperty(name="Seed", description="-1 = random", default=-1, min=-1)  # type: ignore[valid-type]
    use_start_image: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Start From Strip",
        description="Use the image strip under the playhead as the video's first frame (needs an image-to-video model)",
        default=False,
    )
    end_image: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="End Image", description="An image the video ends on (models that take an end frame)", default="",
        subtype="FILE_PATH",
    )  # fmt: skip
    loras: bpy.props.CollectionProperty(type=MOVIEDIR_PG_video_lora)  # type: ignore[valid-type]


def settings_request(scene: Any) -> dict[str, Any]:
    """The sidebar's settings as a video request (per-model settings only when set; see the module docstring)."""
    settings = scene.movie_director_video
    if not settings.prompt.strip():
        raise ValueError("Write a prompt first")
    extra: dict[str, Any] = {}
    if settings.model.strip():
        extra["model_type"] = settings.model.strip()
    if settings.resolution.strip():
        extra["resolution"] = settings.resolution.strip()
    for prop, key in MODEL_SETTINGS.items():
        if settings.is_property_set(prop):
            extra[key] = getattr(settings, prop)
    end = bpy.path.abspath(settings.end_image) if settings.end_image.strip() else None
    if end and not os.path.isfile(end):
        raise ValueError(f"The end image {end} does not exist")
    loras = [(lora.name.strip(), lora.multiplier) for lora in settings.loras if lora.name.strip()]
    return video_request(
        settings.prompt,
        seconds=settings.seconds,
        start_image=export_input_image(scene, "STRIP") if settings.use_start_image else None,
        end_image=end,
        loras=loras,
        negative_prompt=settings.negative_prompt,
        seed=settings.seed,
        **extra,
    )


class MOVIEDIR_OT_generate_video(JobOperator):
    bl_idname = "moviedir.generate_video"
    bl_label = "Generate Video"
    bl_description = "Generate a video with Wan2GP and put it on the Sequencer at the playhead"
    bl_options = {"REGISTER"}  # the strip is added later by its placer, outside this operator's undo step

    what = "The video"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def start_job(self, context: Any, placement: Placement | None) -> JobHandle:
        return submit_video(settings_request(context.scene), placement)

    def placement(self, context: Any) -> Placement:
        return placement_for(context.scene, "video", name=context.scene.movie_director_video.prompt[:48])


class MOVIEDIR_OT_refresh_video_models(bpy.types.Operator):
    bl_idname = "moviedir.refresh_video_models"
    bl_label = "Refresh Models"
    bl_description = "Ask Wan2GP which models it has, and what the chosen one takes (LoRAs, end image, defaults)"
    bl_options = {"INTERNAL"}

    def execute(self, context: Any) -> set[str]:
        video_models(refresh=True)
        model = context.scene.movie_director_video.model.strip() if context.scene else ""
        addon_runtime.last_handle = video_schema(model, refresh=True)
        return {"FINISHED"}


class MOVIEDIR_OT_add_video_lora(bpy.types.Operator):
    bl_idname = "moviedir.add_video_lora"
    bl_label = "Add LoRA"
    bl_description = "Add a LoRA to the video settings (pick it from the model's list)"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: Any) -> set[str]:
        lora = context.scene.movie_director_video.loras.add()
        available = context.window_manager.movie_director_video_loras
        used = {item.name for item in context.scene.movie_director_video.loras}
        lora.name = next((item.name for item in available if item.name not in used), "")
        return {"FINISHED"}


class MOVIEDIR_OT_remove_video_lora(bpy.types.Operator):
    bl_idname = "moviedir.remove_video_lora"
    bl_label = "Remove LoRA"
    bl_description = "Remove this LoRA from the video settings"
    bl_options = {"REGISTER", "UNDO"}

    index: bpy.props.IntProperty(default=0, options={"HIDDEN"})  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        loras = context.scene.movie_director_video.loras
        if 0 <= self.index < len(loras):
            loras.remove(self.index)
        return {"FINISHED"}


classes = (MOVIEDIR_PG_video_model, MOVIEDIR_PG_video_lora, MOVIEDIR_PG_video_settings, MOVIEDIR_OT_generate_video,
           MOVIEDIR_OT_refresh_video_models, MOVIEDIR_OT_add_video_lora, MOVIEDIR_OT_remove_video_lora)  # fmt: skip
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_video = bpy.props.PointerProperty(type=MOVIEDIR_PG_video_settings)
    bpy.types.WindowManager.movie_director_video_models = bpy.props.CollectionProperty(type=MOVIEDIR_PG_video_model)
    bpy.types.WindowManager.movie_director_video_loras = bpy.props.CollectionProperty(type=MOVIEDIR_PG_video_model)


def unregister() -> None:
    del bpy.types.WindowManager.movie_director_video_loras
    del bpy.types.WindowManager.movie_director_video_models
    del bpy.types.Scene.movie_director_video
    _unregister()
    CURRENT["handle"] = None
    SCHEMAS.clear()
