"""Convert Voice: the active sound strip, turned into another voice by an RVC server, lands on the channel below it,
aligned with it (same start frame, same trim, same length). Also the voice list the sidebar shows, and the console
functions ``convert_voice`` and ``voices``.

Touches bpy (main thread only). Where the new strip goes: the channel directly below the original (channel - 1)
when nothing there overlaps the original's frames; otherwise the nearest free channel, looking below before above at
each distance (so a strip on channel 1 gets channel 2 when that is free). The voice list is a cache in the window
manager (never saved in a .blend) filled by the "refresh voices" operator or ``voices()``: draw code only reads it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
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

log = logging.getLogger(__name__)

BACKEND = "rvc"
#: What the sidebar knows about the voice list besides the names: when it was listed, and the last failure.
VOICE_STATE: dict[str, Any] = {"updated": 0.0, "error": "", "busy": False}
F0_METHODS = [
    ("rmvpe", "RMVPE", "Robust and fast; the usual choice"),
    ("crepe", "Crepe", "Smooth pitch, slower"),
    ("harvest", "Harvest", "Good for low voices (rvc-python servers)"),
    ("pm", "PM", "Fastest, roughest (rvc-python servers)"),
    ("fcpe", "FCPE", "Fast and accurate (Applio servers)"),
]


# --- strips ---------------------------------------------------------------------------------------------------------
def active_sound_strip(scene: Any) -> Any | None:
    editor = scene.sequence_editor if scene else None
    strip = editor.active_strip if editor else None
    return strip if strip is not None and strip.type == "SOUND" else None


def sound_strip(scene: Any, name: str) -> Any:
    """The sound strip called ``name`` (nested ones too); ValueError saying what is wrong otherwise."""
    strip = next((s for s in sequencer.all_strips(scene) if s.name == name), None)
    if strip is None:
        raise ValueError(f"There is no strip named {name!r}")
    if strip.type != "SOUND":
        raise ValueError(f"{name!r} is a {strip.type.lower()} strip, not a sound strip")
    return strip


def sound_file(strip: Any) -> str:
    """A file with the strip's audio: its sound's file, or the packed data written to a temporary file."""
    sound = strip.sound
    if sound is None:
        raise ValueError(f"The strip {strip.name!r} has no sound")
    if sound.packed_file is not None:
        suffix = Path(sound.filepath).suffix or ".wav"
        fd, path = tempfile.mkstemp(prefix="md-voice-", suffix=suffix)
        with os.fdopen(fd, "wb") as fh:
            fh.write(sound.packed_file.data)
        return path
    path = bpy.path.abspath(sound.filepath, library=sound.library)
    if not os.path.isfile(path):
        raise ValueError(f"The sound file of {strip.name!r} is missing: {path}")
    return path


def alignment(strip: Any) -> dict[str, Any]:
    """Plain data the converted strip is placed from (the original may change or vanish before the job ends)."""
    return {
        "name": strip.name,
        "channel": strip.channel,
        "frame_start": strip.frame_start,
        "frame_offset_start": strip.frame_offset_start,
        "frame_final_start": strip.frame_final_start,
        "frame_final_end": strip.frame_final_end,
        "frame_final_duration": strip.frame_final_duration,
        "volume": strip.volume,
    }


def channel_is_free(scene: Any, channel: int, start: int, end: int) -> bool:
    return not any(
        s.channel == channel and s.frame_final_start < end and start < s.frame_final_end
        for s in sequencer.strips(scene)
    )


def target_channel(scene: Any, channel: int, start: int, end: int) -> int:
    """The channel below ``channel`` if free over [start, end), else the nearest free one (below first)."""
    for distance in range(1, sequencer.MAX_CHANNEL):
        for candidate in (channel - distance, channel + distance):
            if 1 <= candidate <= sequencer.MAX_CHANNEL and channel_is_free(scene, candidate, start, end):
                return candidate
    raise RuntimeError("Every Sequencer channel is taken at these frames")


def voice_placement(scene: Any, strip: Any) -> Placement:
    """Where a conversion of ``strip`` lands: aligned with it (the "voice" placer; the alignment is in ``extra``)."""
    align = alignment(strip)
    return placement_for(scene, "voice", frame=int(align["frame_start"]), name=strip.name, extra=align)


def place_converted(scene: Any, job: Job, placement: Placement) -> Any | None:
    """The converted audio as a sound strip next to the original, with the original's start, trim and length."""
    out = next((f for f in job.outputs.files if f.media_type.startswith("audio/")), None)
    if out is None:
        raise ValueError("the voice job finished without audio")
    align = placement.extra
    return place_aligned(
        scene, out.path, str(job.outputs.data.get("voice") or job.request.get("voice", "voice")), align
    )


def place_aligned(scene: Any, path: str, voice: str, placement: dict[str, Any]) -> Any:
    """A sound strip of ``path`` next to the original strip described by ``placement`` (see :func:`alignment`)."""
    start, end = int(placement["frame_final_start"]), int(placement["frame_final_end"])
    channel = target_channel(scene, int(placement["channel"]), start, end)
    name = f"{placement['name']} ({voice})"[:63]
    strip = sequencer.editable_strips(scene).new_sound(
        name=name, filepath=path, channel=channel, frame_start=int(placement["frame_start"])
    )
    strip.frame_start = placement["frame_start"]
    strip.frame_offset_start = placement["frame_offset_start"]
    strip.frame_final_duration = int(placement["frame_final_duration"])
    strip.volume = placement.get("volume", 1.0)
    return strip


register_placer("voice", place_converted)


# --- jobs -----------------------------------------------------------------------------------------------------------
def submit_conversion(
    strip: Any,
    voice: str,
    *,
    pitch: int = 0,
    params: dict[str, Any] | None = None,
    placement: Placement | None = None,
) -> JobHandle:
    """Queue one conversion of a sound strip's audio (shared by the operator and the console)."""
    if not voice:
        raise ValueError("Pick a voice first (refresh the voice list if it is empty)")
    request = {**(params or {}), "input": sound_file(strip), "voice": voice, "pitch": pitch}
    request.setdefault("title", f"{strip.name} -> {voice}")
    return addon_runtime.runtime().submit(BACKEND, "convert", request, placement=placement)


def voices(refresh: bool = False) -> JobHandle:
    """Ask the RVC server(s) for their voices (from the client's cache unless ``refresh``); the sidebar's list is
    updated when the answer comes. ``voices().result(10).data["voices"]`` is the list itself."""
    handle = addon_runtime.runtime().submit(BACKEND, "voices", {"refresh": refresh})
    VOICE_STATE["busy"] = True
    handle.on_complete(_store_voices)
    handle.on_error(_voices_failed)
    return handle


def convert_voice(strip_name: str, voice: str, *, pitch: int = 0, scene: Any = None, **params: Any) -> JobHandle:
    """Convert the sound strip ``strip_name`` to ``voice``; the result lands on the channel below it, aligned with
    it. ``params`` are RVC's settings (f0method, index_rate, protect, filter_radius, rms_mix_rate, ...)."""
    scene = scene or bpy.context.scene
    strip = sound_strip(scene, strip_name)
    return submit_conversion(strip, voice, pitch=pitch, params=params, placement=voice_placement(scene, strip))


def _store_voices(job: Job) -> None:
    names = list(job.outputs.data.get("voices") or [])
    for wm in bpy.data.window_managers:
        items = wm.movie_director_voices
        items.clear()
        for name in names:
            items.add().name = str(name)
    VOICE_STATE.update(updated=time.time(), error="", busy=False)
    addon_runtime.tag_redraw()


def _voices_failed(job: Job) -> None:
    VOICE_STATE.update(error=job.error.message if job.error else "the voice list failed", busy=False)
    addon_runtime.tag_redraw()


def settings_params(settings: Any) -> dict[str, Any]:
    return {"f0method": settings.f0method, "index_rate": settings.index_rate, "protect": settings.protect}


# --- Blender types --------------------------------------------------------------------------------------------------
class MOVIEDIR_PG_voice_item(bpy.types.PropertyGroup):
    """One voice the server offers (its ``name`` is the voice)."""


class MOVIEDIR_PG_voice_settings(bpy.types.PropertyGroup):
    voice: bpy.props.StringProperty(name="Voice", description="The RVC voice to convert to")  # type: ignore[valid-type]
    pitch: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Pitch", description="Semitones up (+) or down (-)", default=0, min=-24, max=24
    )
    f0method: bpy.props.EnumProperty(name="Pitch Method", items=F0_METHODS, default="rmvpe")  # type: ignore[valid-type]
    index_rate: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Index Rate", description="How strongly the voice's index shapes the accent", default=0.5, min=0, max=1
    )
    protect: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Protect", description="Keeps consonants and breaths natural", default=0.33, min=0.0, max=0.5
    )


class MOVIEDIR_OT_convert_voice(JobOperator):
    bl_idname = "moviedir.convert_voice"
    bl_label = "Convert Voice"
    bl_description = "Convert the active sound strip to the chosen RVC voice and put it on the channel below"
    bl_options = {"REGISTER"}  # the strip is added later by its placer, outside this operator's undo step

    what = "The converted voice"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return active_sound_strip(context.scene) is not None

    def start_job(self, context: Any, placement: Placement | None) -> JobHandle:
        settings = context.scene.movie_director_voice
        strip = active_sound_strip(context.scene)
        if strip is None:
            raise ValueError("Select a sound strip first")
        params = settings_params(settings)
        return submit_conversion(strip, settings.voice, pitch=settings.pitch, params=params, placement=placement)

    def placement(self, context: Any) -> Placement | None:
        strip = active_sound_strip(context.scene)
        return voice_placement(context.scene, strip) if strip is not None else None


class MOVIEDIR_OT_refresh_voices(bpy.types.Operator):
    bl_idname = "moviedir.refresh_voices"
    bl_label = "Refresh Voices"
    bl_description = "Ask the RVC server which voices it has"
    bl_options = {"REGISTER"}  # changes no data a user would undo

    def execute(self, context: Any) -> set[str]:
        addon_runtime.last_handle = voices(refresh=True)
        self.report({"INFO"}, "Asking the RVC server for its voices")
        return {"FINISHED"}


classes = (MOVIEDIR_PG_voice_item, MOVIEDIR_PG_voice_settings, MOVIEDIR_OT_convert_voice, MOVIEDIR_OT_refresh_voices)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_voice = bpy.props.PointerProperty(type=MOVIEDIR_PG_voice_settings)
    bpy.types.WindowManager.movie_director_voices = bpy.props.CollectionProperty(type=MOVIEDIR_PG_voice_item)


def unregister() -> None:
    del bpy.types.WindowManager.movie_director_voices
    del bpy.types.Scene.movie_director_voice
    _unregister()
