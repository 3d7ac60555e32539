"""Sound Effect: a text prompt becomes an AudioLDM sound, placed as a sound strip of the requested length at the
playhead on the first free channel. Also the console function ``sound_effect``.

Touches bpy (main thread only). The operator queues the job and returns at once and leaves the handle in
``addon_runtime.last_handle``. AudioLDM's demo app answers with a waveform *video*
whose audio track is the sound: the sound strip is made straight from that file (Blender reads a video's audio
track). A sound longer than asked for (AudioLDM2 always makes 10 s) is trimmed to the requested length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime
from . import sequencer
from .base import JobOperator
from .placement import placement_for, register_placer

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job
    from ..runtime.placement import Placement

BACKEND = "audioldm"
MIN_SECONDS, MAX_SECONDS = 2.5, 10.0
#: The sound job the sidebar follows (its progress bar and the server's latest log line).
CURRENT: dict[str, Any] = {"handle": None}


# --- placing ----------------------------------------------------------------------------------------------------------
def place_job_sound(scene: Any, job: Job, placement: Placement) -> Any | None:
    """The job's sound as a sound strip at the placement's frame, on its channel or the first one free for its
    length (the "sound" placer)."""
    sound = next((f for f in job.outputs.files if f.media_type.startswith(("audio/", "video/"))), None)
    if sound is None:
        return None
    frame = placement.frame
    seconds = float(placement.extra.get("seconds") or job.outputs.data.get("duration_s") or MIN_SECONDS)
    length = sequencer.seconds_to_frames(scene, seconds)
    channel = placement.channel or sequencer.first_free_channel(scene, frame, frame + length)
    name = str(placement.name or job.request.get("title") or "sound")[:48]
    return sequencer.place_sound(scene, sound.path, frame=frame, duration=length, name=name, channel=channel)


register_placer("sound", place_job_sound)


# --- submitting -------------------------------------------------------------------------------------------------------
def sound_request(prompt: str, *, seconds: float = 5.0, **params: Any) -> dict[str, Any]:
    """An AudioLDM "sound" job request; ``params`` are guidance_scale, seed (-1 = random), n_candidates, steps,
    negative_prompt (the app's defaults where left out)."""
    return {"text": prompt, "duration": float(seconds), **params, "title": prompt[:60]}


def submit_sound(request: dict[str, Any], placement: Placement | None = None) -> JobHandle:
    """Queue one sound job (placed when done if ``placement``); the sidebar follows it."""
    handle = addon_runtime.runtime().submit(BACKEND, "sound", request, placement=placement)
    CURRENT["handle"] = handle
    handle.on_progress(_redraw).on_log(lambda job, line: _redraw(job))
    return handle


def _redraw(job: Job) -> None:
    addon_runtime.tag_redraw()


def sound_effect(
    prompt: str, *, seconds: float = 5.0, frame: int | None = None, scene: Any = None, **params: Any
) -> JobHandle:
    """Make a sound effect with AudioLDM; when it is done it lands as a sound strip of ``seconds`` at ``frame`` (the
    playhead by default) on the first free channel. ``params``: guidance_scale, seed, n_candidates, steps."""
    placement = placement_for(
        scene or bpy.context.scene, "sound", frame=frame, name=prompt[:48], extra={"seconds": seconds}
    )
    return submit_sound(sound_request(prompt, seconds=seconds, **params), placement)


def settings_params(settings: Any) -> dict[str, Any]:
    """The sidebar's settings as request parameters (0 steps = the app's own)."""
    params: dict[str, Any] = {
        "guidance_scale": settings.guidance_scale,
        "seed": settings.seed,
        "n_candidates": settings.candidates,
    }
    if settings.steps > 0:
        params["steps"] = settings.steps
    return params


# --- Blender types ----------------------------------------------------------------------------------------------------
class MOVIEDIR_PG_sound_settings(bpy.types.PropertyGroup):
    prompt: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Sound", description="Describe the sound, e.g. 'a heavy door slams in a stone hall'", default=""
    )
    seconds: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Length", description="Seconds of sound (AudioLDM: 2.5 to 10; AudioLDM2 always makes 10)",
        default=5.0, min=MIN_SECONDS, max=MAX_SECONDS, step=50, unit="TIME_ABSOLUTE",
    )  # fmt: skip
    guidance_scale: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Guidance", description="Higher follows the text more closely; lower varies more", default=2.5,
        min=0.0, max=10.0,
    )  # fmt: skip
    seed: bpy.props.IntProperty(name="Seed", description="-1 = random", default=-1, min=-1)  # type: ignore[valid-type]
    candidates: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Candidates", description="Sounds made to pick the best from (slower, better)", default=1, min=1, max=5
    )
    steps: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Steps", description="Sampler steps, where the app has the setting (0 = the app's own)", default=0,
        min=0, max=500,
    )  # fmt: skip


class MOVIEDIR_OT_sound_effect(JobOperator):
    bl_idname = "moviedir.sound_effect"
    bl_label = "Sound Effect"
    bl_description = "Make a sound effect from text with AudioLDM and put it on the Sequencer at the playhead"
    bl_options = {"REGISTER"}  # the strip is added later by its placer, outside this operator's undo step

    what = "The sound"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def start_job(self, context: Any, placement: Placement | None) -> JobHandle:
        settings = context.scene.movie_director_sound
        if not settings.prompt.strip():
            raise ValueError("Describe the sound first")
        request = sound_request(settings.prompt.strip(), seconds=settings.seconds, **settings_params(settings))
        return submit_sound(request, placement)

    def placement(self, context: Any) -> Placement:
        settings = context.scene.movie_director_sound
        return placement_for(
            context.scene, "sound", name=settings.prompt.strip()[:48], extra={"seconds": settings.seconds}
        )


classes = (MOVIEDIR_PG_sound_settings, MOVIEDIR_OT_sound_effect)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_sound = bpy.props.PointerProperty(type=MOVIEDIR_PG_sound_settings)


def unregister() -> None:
    del bpy.types.Scene.movie_director_sound
    _unregister()
