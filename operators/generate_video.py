"""Generate Video: a prompt (and optionally the image strip under the playhead as the first frame) becomes a Wan2GP
video, placed as a movie strip at the playhead on the first free channel. Also the model list the sidebar shows and
the console functions ``generate_video`` and ``video_models``.

Touches bpy (main thread only). The operator queues the job and returns at once (the status bar and the Jobs panel
show "inference 12/30" and a cancel button) and leaves the handle in ``addon_runtime.last_handle``. Wan2GP's
Wan models make 16 frames a second: a length in seconds becomes ``round(seconds * 16)`` frames, and the strip is as
many frames long as the video (a scene at another frame rate plays it at the scene's rate). The model list is a cache
in the window manager (never saved in a .blend), filled by the refresh operator or ``video_models()``.
"""

from __future__ import annotations

import logging
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
#: Frames per second of Wan2GP's Wan models (``clients.wan2gp.client.FPS``; not imported, to keep start-up light).
FPS = 16
RESOLUTIONS = ("832x480", "480x832", "1280x720", "720x1280", "624x624", "960x960", "1024x576", "576x1024")
#: What the sidebar knows about the model list besides the names: when it was listed, the last failure.
MODEL_STATE: dict[str, Any] = {"updated": 0.0, "error": "", "busy": False}
#: The video job the sidebar follows (progress bar and the server's latest log line).
CURRENT: dict[str, Any] = {"handle": None}


# --- placing ----------------------------------------------------------------------------------------------------------
def place_movie(scene: Any, path: str, *, frame: int, name: str = "", channel: int = 0, frames: int = 0) -> Any:
    """The whole clip at ``frame``, playing at its own speed, on ``channel`` or the first channel free for its length
    (``frames``: the clip's expected frame count at Wan's 16 fps; the strip takes the file's real length)."""
    length = max(1, round(frames * sequencer.scene_fps(scene) / FPS))
    channel = channel or sequencer.first_free_channel(scene, frame, frame + length)
    return sequencer.place_movie(scene, path, frame=frame, name=name, channel=channel)


def place_job_video(scene: Any, job: Job, placement: Placement) -> list[Any]:
    """Every video a finished job produced, one after another from the placement's frame (the "video" placer)."""
    frame = placement.frame
    name = str(placement.name or job.request.get("title") or "video")[:48]
    placed = []
    for out in (f for f in job.outputs.files if f.media_type.startswith("video/")):
        frames = int(job.outputs.data.get("frames") or 0)
        strip = place_movie(scene, out.path, frame=frame, name=name, channel=placement.channel, frames=frames)
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
    **settings: Any,
) -> dict[str, Any]:
    """A Wan2GP "video" job request from plain values; ``settings`` are Wan2GP's (model_type, resolution,
    num_inference_steps, seed, negative_prompt, guidance_scale, ...)."""
    if frames is None and seconds is not None:
        frames = max(1, round(float(seconds) * FPS))
    request: dict[str, Any] = {"prompt": prompt, **settings, "title": prompt[:60]}
    if frames is not None:
        request["video_length"] = int(frames)
    if start_image:
        request["image_start"] = str(start_image)
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
    frame: int | None = None,
    scene: Any = None,
    **settings: Any,
) -> JobHandle:
    """Generate a video with Wan2GP; when it is done it lands as a movie strip at ``frame`` (the playhead by default)
    on the first free channel. Give the length as ``frames`` or ``seconds`` (16 frames a second); ``start_image`` is
    a file used as the first frame; ``settings`` are Wan2GP's (model_type, resolution, num_inference_steps, seed...)."""
    placement = placement_for(scene or bpy.context.scene, "video", frame=frame, name=prompt[:48])
    request = video_request(prompt, seconds=seconds, frames=frames, start_image=start_image, **settings)
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


# --- Blender types ----------------------------------------------------------------------------------------------------
def _resolutions(self: Any, context: Any, edit_text: str) -> list[str]:
    return [r for r in RESOLUTIONS if edit_text in r] or list(RESOLUTIONS)


class MOVIEDIR_PG_video_model(bpy.types.PropertyGroup):
    """One model the server offers (its ``name`` is the model type)."""


class MOVIEDIR_PG_video_settings(bpy.types.PropertyGroup):
    model: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Model", description="Wan2GP model type (refresh to list the server's)", default="t2v_1.3B"
    )
    prompt: bpy.props.StringProperty(name="Prompt", default="")  # type: ignore[valid-type]
    negative_prompt: bpy.props.StringProperty(name="Negative", default="")  # type: ignore[valid-type]
    resolution: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Resolution", description="Width x height, e.g. 832x480", default="832x480", search=_resolutions
    )
    seconds: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Length", description="Seconds of video (16 frames a second)", default=5.0, min=0.1, max=60.0,
        unit="TIME_ABSOLUTE",
    )  # fmt: skip
    steps: bpy.props.IntProperty(name="Steps", default=30, min=1, max=200)  # type: ignore[valid-type]
    seed: bpy.props.IntProperty(name="Seed", description="-1 = random", default=-1, min=-1)  # type: ignore[valid-type]
    use_start_image: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Start From Strip",
        description="Use the image strip under the playhead as the video's first frame (needs an image-to-video model)",
        default=False,
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
        settings = context.scene.movie_director_video
        if not settings.prompt.strip():
            raise ValueError("Write a prompt first")
        start = export_input_image(context.scene, "STRIP") if settings.use_start_image else None
        request = video_request(
            settings.prompt,
            seconds=settings.seconds,
            start_image=start,
            model_type=settings.model.strip() or "t2v_1.3B",
            negative_prompt=settings.negative_prompt,
            resolution=settings.resolution.strip(),
            num_inference_steps=settings.steps,
            seed=settings.seed,
        )
        return submit_video(request, placement)

    def placement(self, context: Any) -> Placement:
        return placement_for(context.scene, "video", name=context.scene.movie_director_video.prompt[:48])


class MOVIEDIR_OT_refresh_video_models(bpy.types.Operator):
    bl_idname = "moviedir.refresh_video_models"
    bl_label = "Refresh Models"
    bl_description = "Ask Wan2GP which models it has"
    bl_options = {"INTERNAL"}

    def execute(self, context: Any) -> set[str]:
        video_models(refresh=True)
        return {"FINISHED"}


classes = (MOVIEDIR_PG_video_model, MOVIEDIR_PG_video_settings, MOVIEDIR_OT_generate_video,
           MOVIEDIR_OT_refresh_video_models)  # fmt: skip
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_video = bpy.props.PointerProperty(type=MOVIEDIR_PG_video_settings)
    bpy.types.WindowManager.movie_director_video_models = bpy.props.CollectionProperty(type=MOVIEDIR_PG_video_model)


def unregister() -> None:
    del bpy.types.WindowManager.movie_director_video_models
    del bpy.types.Scene.movie_director_video
    _unregister()
    CURRENT["handle"] = None
