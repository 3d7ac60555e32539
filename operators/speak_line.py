"""Speak Line: text becomes speech (the Speech backend), optionally converted to an RVC cast voice, and lands as a
sound strip at the playhead on the first free channel. Also the TTS voice list the sidebar shows, and the console
functions ``speak_line`` and ``speech_voices``.

Touches bpy (main thread only). The two jobs are chained by callbacks on the main thread: when the speech is done and
an RVC voice is chosen, the conversion is queued with the spoken file as its input; the last file is placed. A
character of the scene's cast (see :mod:`.cast`) supplies the TTS voice, the RVC voice and the pitch.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime
from . import cast, sequencer
from .base import JobOperator, describe_end

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job

BACKEND = "speech"
#: The speech voice list's state for the sidebar (the names themselves are in the window manager).
VOICE_STATE: dict[str, Any] = {"updated": 0.0, "error": "", "busy": False}
#: The line the sidebar follows.
CURRENT: dict[str, Any] = {"line": None}


class SpokenLine:
    """One line on its way: the speech job, then (with an RVC voice) the conversion; ``strip`` once placed."""

    def __init__(self, speech: JobHandle, *, rvc_voice: str, pitch: int, placement: dict[str, Any]) -> None:
        self.speech = speech
        self.voice: JobHandle | None = None
        self.rvc_voice = rvc_voice
        self.pitch = pitch
        self.placement = placement
        self.strip: str | None = None
        self.error: str = ""
        speech.on_complete(self._spoken)
        speech.on_error(lambda job: self._failed(job, "The line"))

    @property
    def current(self) -> JobHandle:
        return self.voice or self.speech

    @property
    def done(self) -> bool:
        return bool(self.strip or self.error or (self.speech.done and self.speech.status().state.value != "succeeded"))

    def cancel(self) -> None:
        self.current.cancel()

    def wait(self, timeout: float = 60.0) -> SpokenLine:
        """Block (pumping on this thread) until the strip is placed or a job failed."""
        from ..runtime.errors import RequestTimeoutError

        end = time.monotonic() + timeout
        while not self.done and time.monotonic() < end:
            with contextlib.suppress(RequestTimeoutError):
                self.current.wait(max(0.01, min(0.2, end - time.monotonic())))
        return self

    def _spoken(self, job: Job) -> None:
        if not self.rvc_voice:
            self._place(job)
            return
        request = {
            "input": job.outputs.files[0].path,
            "voice": self.rvc_voice,
            "pitch": self.pitch,
            "title": f"{self.placement.get('name', 'line')} -> {self.rvc_voice}",
        }
        try:
            self.voice = addon_runtime.runtime().submit("rvc", "convert", request)
        except Exception as exc:  # a line that cannot go on says why, never waits forever
            self.error = f"The cast voice could not start: {exc}"
            addon_runtime.tag_redraw()
            return
        self.voice.on_complete(self._place).on_error(lambda job: self._failed(job, "The cast voice"))
        addon_runtime.tag_redraw()

    def _place(self, job: Job) -> None:
        scene = bpy.data.scenes.get(self.placement.get("scene", "")) or bpy.context.scene
        strip = place_line(scene, job, self.placement)
        self.strip = strip.name if strip is not None else None
        if strip is None:
            self.error = "the finished line had no audio file"
        addon_runtime.tag_redraw()

    def _failed(self, job: Job, what: str) -> None:
        self.error = describe_end(job, what)[1]
        addon_runtime.tag_redraw()


def place_line(scene: Any, job: Job, placement: dict[str, Any]) -> Any | None:
    """The spoken (or converted) line as a sound strip at the placement's frame, on the first channel free for it."""
    sound = next((f for f in job.outputs.files if f.media_type.startswith("audio/")), None)
    if sound is None:
        return None
    frame = int(placement.get("frame", scene.frame_current))
    seconds = float(job.outputs.data.get("duration_s") or 1.0)
    length = max(1, sequencer.seconds_to_frames(scene, seconds))
    channel = sequencer.first_free_channel(scene, frame, frame + length)
    name = str(placement.get("name") or "line")[:48]
    strip = sequencer.place_sound(scene, sound.path, frame=frame, duration=length, name=name, channel=channel)
    strip["movie_director_line"] = str(job.outputs.data.get("text") or placement.get("text") or "")[:500]
    return strip


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
    if character:
        member = cast.member(scene, character)
        voice = voice or member.tts_voice
        rvc_voice = rvc_voice or member.rvc_voice
        pitch = pitch or member.pitch
    name = f"{character or voice or 'line'}: {text.strip()}"[:48]
    request = {"text": text, "voice": voice, "speed": float(speed), "title": name}
    if model:
        request["model"] = model
    handle = addon_runtime.runtime().submit(BACKEND, "speak", request)
    placement = {"frame": scene.frame_current if frame is None else int(frame), "name": name, "scene": scene.name}
    line = SpokenLine(handle, rvc_voice=rvc_voice, pitch=int(pitch), placement=placement)
    CURRENT["line"] = line
    handle.on_progress(lambda job: addon_runtime.tag_redraw())
    return line


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
    bl_options = {"REGISTER"}  # the strip is added later by a callback, outside this operator's undo step

    what = "The spoken line"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def start_job(self, context: Any) -> JobHandle:
        s = context.scene.movie_director_speech
        line = speak_line(
            s.text, voice=s.voice, character=s.character, rvc_voice=s.rvc_voice, pitch=s.pitch, speed=s.speed,
            model=s.model, scene=context.scene,
        )  # fmt: skip
        return line.speech


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
    _unregister()
