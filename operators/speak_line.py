"""Speak Line: text becomes speech (the Speech backend), optionally converted to an RVC cast voice, and lands as a
sound strip at the playhead on the first free channel. Also the TTS voice list the sidebar shows, and the console
functions ``speak_line`` and ``speech_voices``.

Touches bpy (main thread only). The whole chain is data, so it survives a restart: the speech job carries a "line"
placement whose ``extra`` names the RVC voice and pitch; the "line" placer, run when the speech is done, queues the
conversion with the same placement minus the voice (and the spoken file as input), and places the file of the last
job. A character of the scene's cast (see :mod:`.cast`) supplies the TTS voice, the RVC voice and the pitch.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime
from . import cast, sequencer
from .base import JobOperator
from .placement import placement_for, register_placer

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job
    from ..runtime.placement import Placement

BACKEND = "speech"
PLACER = "line"
#: The speech voice list's state for the sidebar (the names themselves are in the window manager).
VOICE_STATE: dict[str, Any] = {"updated": 0.0, "error": "", "busy": False}
#: The line the sidebar follows.
CURRENT: dict[str, Any] = {"line": None}
#: Speech job id -> the conversion the "line" placer queued for it; job id -> the strip it placed (main thread).
CONVERSIONS: dict[str, JobHandle] = {}
PLACED: dict[str, str] = {}


# --- placing ----------------------------------------------------------------------------------------------------------
def place_line(scene: Any, job: Job, placement: Placement) -> Any | None:
    """The "line" placer: a finished speech job with an RVC voice left to apply queues that conversion (placed by
    this placer in turn); otherwise the audio becomes a sound strip at the placement's frame on the first free
    channel, as long as the line."""
    rvc_voice = str(placement.extra.get("rvc_voice") or "")
    if job.backend == BACKEND and rvc_voice:
        extra = {**placement.extra, "rvc_voice": ""}
        request = {
            "input": job.outputs.files[0].path,
            "voice": rvc_voice,
            "pitch": int(placement.extra.get("pitch") or 0),
            "title": f"{placement.name} -> {rvc_voice}"[:60],
        }
        handle = addon_runtime.runtime().submit(
            "rvc", "convert", request, placement=placement.model_copy(update={"extra": extra})
        )
        CONVERSIONS[job.id] = handle
        addon_runtime.tag_redraw()
        return None
    sound = next((f for f in job.outputs.files if f.media_type.startswith("audio/")), None)
    if sound is None:
        raise LookupError("the finished line has no audio file")
    seconds = float(job.outputs.data.get("duration_s") or 1.0)
    length = max(1, sequencer.seconds_to_frames(scene, seconds))
    frame = placement.frame
    channel = placement.channel or sequencer.first_free_channel(scene, frame, frame + length)
    name = (placement.name or "line")[:48]
    strip = sequencer.place_sound(scene, sound.path, frame=frame, duration=length, name=name, channel=channel)
    strip["movie_director_line"] = str(placement.extra.get("text") or "")[:500]
    PLACED[job.id] = strip.name
    addon_runtime.tag_redraw()
    return strip


register_placer(PLACER, place_line)


class SpokenLine:
    """A line on its way, for scripts and the sidebar: the speech job, then (with an RVC voice) the conversion the
    placer queued; ``strip`` (its name) once placed, ``error`` when a step failed."""

    def __init__(self, speech: JobHandle) -> None:
        self.speech = speech

    @property
    def voice(self) -> JobHandle | None:
        return CONVERSIONS.get(self.speech.id)

    @property
    def current(self) -> JobHandle:
        return self.voice or self.speech

    @property
    def strip(self) -> str | None:
        return PLACED.get(self.current.id)

    @property
    def error(self) -> str:
        for handle, what in ((self.speech, "The line"), (self.voice, "The cast voice")):
            if handle is None:
                continue
            job = handle.status()
            if handle.done and job.state.value != "succeeded":
                return f"{what} {'was cancelled' if job.state.value == 'cancelled' else 'failed'}: " + (
                    job.error.message if job.error else job.state.value
                )
            if handle.placement_error:
                return f"{what}: {handle.placement_error}"
        return ""

    @property
    def done(self) -> bool:
        return bool(self.strip or self.error)

    def cancel(self) -> None:
        self.current.cancel()

    def wait(self, timeout: float = 60.0) -> SpokenLine:
        """Block (pumping on this thread) until the strip is placed or a step failed."""
        from ..runtime.errors import RequestTimeoutError

        end = time.monotonic() + timeout
        while not self.done and time.monotonic() < end:
            with contextlib.suppress(RequestTimeoutError):
                self.current.wait(max(0.01, min(0.2, end - time.monotonic())))
        return self


def line_placement(
    scene: Any, text: str, *, name: str, rvc_voice: str = "", pitch: int = 0, frame: int | None = None
) -> Placement:
    """Where a spoken line lands (the playhead by default) and the RVC step still to apply, as data."""
    extra = {"rvc_voice": rvc_voice, "pitch": int(pitch), "text": text.strip()[:500]}
    return placement_for(scene, PLACER, frame=frame, name=name, extra=extra)


def submit_line(
    text: str,
    placement: Placement | None,
    *,
    voice: str = "",
    speed: float = 1.0,
    model: str = "",
) -> SpokenLine:
    """Queue the speech job of a line (placed, and converted, per ``placement``)."""
    if not text.strip():
        raise ValueError("Write the line first: the text is empty")
    request: dict[str, Any] = {"text": text, "voice": voice, "speed": float(speed)}
    request["title"] = placement.name if placement is not None else text.strip()[:48]
    if model:
        request["model"] = model
    handle = addon_runtime.runtime().submit(BACKEND, "speak", request, placement=placement)
    handle.on_progress(lambda job: addon_runtime.tag_redraw())
    line = SpokenLine(handle)
    CURRENT["line"] = line
    return line


def resolve_voices(scene: Any, character: str, voice: str, rvc_voice: str, pitch: int) -> tuple[str, str, int]:
    """The voices a line is spoken with: a cast ``character``'s, where the call leaves them empty."""
    if not character:
        return voice, rvc_voice, pitch
    member = cast.member(scene, character)
    return voice or member.tts_voice, rvc_voice or member.rvc_voice, pitch or member.pitch


def speak_line(
    text: str,
    *,
    voice: str = "",
    character: str = "",
    rvc_voice: str = "",
    pitch: int = 0,
    speed: float = 1.0,
    model: str = "",
    frame: int | None = None,
    scene: Any = None,
) -> SpokenLine:
    """Speak ``text`` with the TTS ``voice`` (empty = the server's first) or the cast ``character``'s voices, convert
    it to ``rvc_voice`` if one is given, and put it at ``frame`` (the playhead by default). Scripts ``.wait()``."""
    scene = scene or bpy.context.scene
    if not text.strip():
        raise ValueError("Write the line first: the text is empty")
    voice, rvc_voice, pitch = resolve_voices(scene, character, voice, rvc_voice, pitch)
    name = f"{character or voice or 'line'}: {text.strip()}"[:48]
    placement = line_placement(scene, text, name=name, rvc_voice=rvc_voice, pitch=pitch, frame=frame)
    return submit_line(text, placement, voice=voice, speed=speed, model=model)


def speech_voices(refresh: bool = False) -> JobHandle:
    """Ask the speech server for its voices and models (cached unless ``refresh``); fills the sidebar's list."""
    handle = addon_runtime.runtime().submit(BACKEND, "voices", {"refresh": refresh})
    VOICE_STATE["busy"] = True
    handle.on_complete(_store_voices)
    handle.on_error(_voices_failed)
    return handle


def _store_voices(job: Job) -> None:
    names = [str(n) for n in job.outputs.data.get("voices") or []]
    for wm in bpy.data.window_managers:
        items = wm.movie_director_speech_voices
        items.clear()
        for name in names:
            items.add().name = name
    listed = bool(job.outputs.data.get("listed"))
    VOICE_STATE.update(updated=time.time(), error="" if listed else "This server lists no voices: type one", busy=False)
    addon_runtime.tag_redraw()


def _voices_failed(job: Job) -> None:
    VOICE_STATE.update(error=job.error.message if job.error else "the voice list failed", busy=False)
    addon_runtime.tag_redraw()


# --- Blender types --------------------------------------------------------------------------------------------------
class MOVIEDIR_PG_speech_voice(bpy.types.PropertyGroup):
    """One voice the speech server offers (its ``name`` is the voice)."""


class MOVIEDIR_PG_speech_settings(bpy.types.PropertyGroup):
    text: bpy.props.StringProperty(name="Line", description="What is said", default="")  # type: ignore[valid-type]
    character: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Character", description="A character of the cast: its voices are used (empty = the voices below)"
    )
    voice: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Voice", description="The speech server's voice (empty = its first)"
    )
    rvc_voice: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Cast Voice", description="Convert the line to this RVC voice (empty = keep the spoken voice)"
    )
    pitch: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Pitch", description="Semitones for the RVC conversion", default=0, min=-24, max=24
    )
    speed: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Speed", description="Speaking rate (1 = normal)", default=1.0, min=0.25, max=4.0
    )
    model: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Model", description="The server's TTS model (empty = its first speech model, e.g. tts-1 or kokoro)"
    )


class MOVIEDIR_OT_speak_line(JobOperator):
    bl_idname = "moviedir.speak_line"
    bl_label = "Speak Line"
    bl_description = "Speak the line with the speech server (and convert it to the cast voice) at the playhead"
    bl_options = {"REGISTER"}  # the strip is added later by the placer, outside this operator's undo step

    what = "The spoken line"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def placement(self, context: Any) -> Placement | None:
        s = context.scene.movie_director_speech
        voice, rvc_voice, pitch = resolve_voices(context.scene, s.character, s.voice, s.rvc_voice, s.pitch)
        name = f"{s.character or voice or 'line'}: {s.text.strip()}"[:48]
        return line_placement(context.scene, s.text, name=name, rvc_voice=rvc_voice, pitch=pitch)

    def start_job(self, context: Any, placement: Placement | None) -> JobHandle:
        s = context.scene.movie_director_speech
        voice, _, _ = resolve_voices(context.scene, s.character, s.voice, s.rvc_voice, s.pitch)
        return submit_line(s.text, placement, voice=voice, speed=s.speed, model=s.model).speech


class MOVIEDIR_OT_refresh_speech_voices(bpy.types.Operator):
    bl_idname = "moviedir.refresh_speech_voices"
    bl_label = "Refresh Speech Voices"
    bl_description = "Ask the speech server which voices it has"
    bl_options = {"REGISTER"}  # changes no data a user would undo

    def execute(self, context: Any) -> set[str]:
        addon_runtime.last_handle = speech_voices(refresh=True)
        self.report({"INFO"}, "Asking the speech server for its voices")
        return {"FINISHED"}


classes = (
    MOVIEDIR_PG_speech_voice,
    MOVIEDIR_PG_speech_settings,
    MOVIEDIR_OT_speak_line,
    MOVIEDIR_OT_refresh_speech_voices,
)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_speech = bpy.props.PointerProperty(type=MOVIEDIR_PG_speech_settings)
    bpy.types.WindowManager.movie_director_speech_voices = bpy.props.CollectionProperty(type=MOVIEDIR_PG_speech_voice)


def unregister() -> None:
    del bpy.types.WindowManager.movie_director_speech_voices
    del bpy.types.Scene.movie_director_speech
    CURRENT["line"] = None
    CONVERSIONS.clear()
    PLACED.clear()
    _unregister()
