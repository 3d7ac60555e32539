"""Direct a scene: a written scene becomes a shot list, then per shot an image, a clip animated from it, a sound
effect and its dialogue lines spoken in the cast's voices, laid out in order on the Sequencer as a rough cut with a
marker per shot. A shot's lines share its length: line j of n starts at the j-th n-th of the shot and is trimmed to
its share, so the lines never overlap and land where they are said whatever order they finish in.

Touches bpy (main thread only). Strips carry their stage, earlier takes and generation settings (for the
hand-off); the shots and their dialogue are kept on the scene and the dialogue becomes subtitles (subtitles.py).
The pipeline itself lives in ``runtime/pipeline.py`` and ``clients/director.py``;
this module lays out results as stages finish (a pipeline callback, on the main thread) and offers per-stage cancel,
retry and regenerate. A regenerated stage's new file is swapped into the same strip (same channel, frames and
effects); every file the strip has shown stays listed as a take (custom property ``takes``, see
``sequencer.takes``), and the Takes panel swaps any of them back.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import BoolProperty, EnumProperty, PointerProperty, StringProperty

from .. import addon_runtime
from . import cast, cut_reader, sequencer, subtitles

if TYPE_CHECKING:
    from ..runtime.pipeline import PipelineHandle, PipelineSpec

log = logging.getLogger(__name__)

#: Channels of the rough cut: storyboard stills, clips, sound effects, voices (counted from the first free band).
CHANNELS = {"image": 1, "video": 2, "sound": 3, "voice": 4}
LAYOUT_KEY = "movie_director_layout"


def direct(
    scene_text: str,
    *,
    voice: str = "",
    scene: Any = None,
    frame: int | None = None,
    with_video: bool = True,
    with_sound: bool = True,
    with_voices: bool = True,
    cast_voices: dict[str, Any] | None = None,
    **options: Any,
) -> PipelineHandle:
    """Direct ``scene_text``: returns the pipeline's handle at once; strips appear as stages finish. Dialogue is
    spoken with the scene's cast (or ``cast_voices``: character -> {tts_voice, rvc_voice, pitch}); ``voice`` is the
    RVC voice for characters the cast does not name. The LLM model is the Script panel's (empty = the server's
    first) unless ``llm_model`` is given."""
    from ..clients.director import CastVoices, DirectOptions, plan_scene

    scene = scene or bpy.context.scene
    voices = cast.as_dict(scene) if cast_voices is None else cast_voices
    options.setdefault("llm_model", scene.movie_director_llm.model if hasattr(scene, "movie_director_llm") else "")
    opts = DirectOptions(
        voice=voice,
        with_video=with_video,
        with_sound=with_sound,
        with_voices=with_voices,
        cast={name: CastVoices.model_validate(v) for name, v in voices.items()},
        **options,
    )
    spec = plan_scene(scene_text, opts)
    first = scene.frame_current if frame is None else frame
    spec.data["blender"] = {"scene": scene.name, "frame": first, "channel": free_band(scene, first)}
    handle = addon_runtime.runtime().run_pipeline(spec)
    attach_layout(handle)
    _active[0] = handle
    return handle


_active: list[Any] = [None]


def free_band(scene: Any, frame: int) -> int:
    """The lowest channel from which the rough cut's channels hold no strip at or after ``frame``: a directed scene
    is laid out above what is already on the Sequencer there, never on top of it."""
    width = max(CHANNELS.values()) + 1
    busy = {s.channel for s in sequencer.strips(scene) if s.frame_final_end > frame}
    base = 1
    while any(c in busy for c in range(base, base + width)):
        base += 1
    return base


def active_pipeline() -> PipelineHandle | None:
    """The pipeline the sidebar shows: the last one directed, or one brought back after a restart."""
    if _active[0] is not None:
        return _active[0]  # type: ignore[no-any-return]
    rt = addon_runtime.current()
    pipelines = rt.pipelines() if rt else []
    return pipelines[-1] if pipelines else None


def attach_layout(handle: PipelineHandle) -> None:
    """Lay out the pipeline's results on its scene each time a stage changes (main thread)."""
    handle.on_update(lambda spec: layout(spec))


def _shot_frames(spec: PipelineSpec, scene: Any, start: int) -> list[tuple[int, int]]:
    """(first frame, length) of each shot, one after another."""
    from ..clients.director import scene_result

    out = []
    frame = start
    for shot in scene_result(spec).shots:
        length = sequencer.seconds_to_frames(scene, shot.duration_s)
        out.append((frame, length))
        frame += length
    return out


def layout(spec: PipelineSpec) -> None:
    """Place every finished stage that is not on the Sequencer yet, or whose take changed; add shot markers."""
    from ..clients.director import line_audio, scene_result

    info = spec.data.get("blender") or {}
    scene = bpy.data.scenes.get(info.get("scene", "")) or bpy.context.scene
    start = int(info.get("frame", scene.frame_start))
    placed: dict[str, dict[str, Any]] = json.loads(scene.get(LAYOUT_KEY, "{}")).get(spec.id, {})
    result = scene_result(spec)
    frames = _shot_frames(spec, scene, start)
    changed = False
    stages = {s.id: s for s in spec.stages}
    for shot, (first, length) in zip(result.shots, frames, strict=True):
        marker_name = f"Shot {shot.index}: {shot.description[:40]}"
        if not any(m.frame == first and m.name.startswith(f"Shot {shot.index}:") for m in scene.timeline_markers):
            scene.timeline_markers.new(marker_name, frame=first)
        group = f"shot{shot.index}"
        lines = len(shot.dialogue)
        for stage in (s for s in spec.stages if s.group == group):
            role = stage.id.rsplit(".", 1)[-1]
            where = (first, length)
            if role in ("speech", "voice"):
                j = int(stage.id.split(".")[1].removeprefix("line"))
                if line_audio(stages, group, j) is not stage:
                    continue  # the unconverted line: only its converted voice goes on the cut
                where = _line_slot(scene, stage, first, length, j, lines)
                role = "voice"
            if stage.state.value != "succeeded" or stage.outputs is None or not stage.outputs.files:
                continue
            previous = placed.get(stage.id)
            if previous and previous.get("job") == stage.job_id:
                continue
            changed = _place_stage(scene, spec, stage.id, role, stages, *where, previous, placed) or changed
    data = json.loads(scene.get(LAYOUT_KEY, "{}"))
    data[spec.id] = placed
    scene[LAYOUT_KEY] = json.dumps(data)
    # the shots as the hand-off reads them (storyboard sheet, subtitles), and the subtitles timed to the voices
    scene[cut_reader.SHOTS_KEY] = json.dumps(
        [
            {"index": s.index, "frame": f, "length": n, "description": s.description, "dialogue": s.dialogue}
            for s, (f, n) in zip(result.shots, frames, strict=True)
        ]
    )
    subtitles.sync(scene)
    end = frames[-1][0] + frames[-1][1] - 1 if frames else start
    scene.frame_end = max(scene.frame_end, end)
    if changed:
        sequencer.push_undo()


def _line_slot(scene: Any, stage: Any, first: int, length: int, line: int, lines: int) -> tuple[int, int]:
    """(first frame, length) of line ``line`` of ``lines`` in a shot: its share of the shot, trimmed to its audio."""
    share = max(1, length // max(lines, 1))
    start = first + (line - 1) * share
    seconds = (stage.outputs.data.get("duration_s") if stage.outputs else None) or 0.0
    audio = sequencer.seconds_to_frames(scene, float(seconds)) if seconds else share
    return start, max(1, min(share, audio))


def _place_stage(
    scene: Any,
    spec: PipelineSpec,
    stage_id: str,
    role: str,
    stages: dict[str, Any],
    first: int,
    length: int,
    previous: dict[str, Any] | None,
    placed: dict[str, dict[str, Any]],
) -> bool:
    """Place one finished stage (or swap its new take in); True when the Sequencer changed."""
    from ..clients.handoff.provenance import generation_settings

    stage = stages[stage_id]
    path = stage.outputs.files[0].path
    origin = {"pipeline": spec.id, "stage": stage_id}
    settings = json.dumps(generation_settings(stage.backend, stage.kind, stage.request))
    old = sequencer.strips(scene).get(previous["strip"]) if previous is not None else None
    if old is not None:  # a new take: the same strip shows the new file (channel, frames and effects kept)
        try:
            sequencer.swap_take(old, path)
        except (ValueError, RuntimeError, OSError) as exc:
            log.warning("could not swap %s in place (%s): placing it anew", stage_id, exc)
        else:
            old[cut_reader.GENERATION_KEY] = settings
            placed[stage_id] = {"strip": old.name, "job": stage.job_id, "path": path}
            return True
    kind = "voice" if role == "voice" else role
    base = int((spec.data.get("blender") or {}).get("channel", 1))  # 1 unless the Sequencer was busy there
    channel = base - 1 + CHANNELS.get(kind, 5)
    name = f"{stage.label or stage_id}"[:60]
    try:
        if kind == "image":
            strip = sequencer.place_image(scene, path, frame=first, duration=length, name=name, channel=channel)
        elif kind == "video":
            strip = sequencer.place_movie(scene, path, frame=first, duration=length, name=name, channel=channel)
        else:
            strip = sequencer.place_sound(scene, path, frame=first, duration=length, name=name, channel=channel)
    except (RuntimeError, OSError) as exc:  # a file Blender cannot read is reported, the rest is laid out
        log.warning("could not place %s: %s", stage_id, exc)
        return False
    strip["movie_director_stage"] = stage_id
    strip[cut_reader.GENERATION_KEY] = settings
    sequencer.remember_take(strip, path, origin)
    placed[stage_id] = {"strip": strip.name, "job": stage.job_id, "path": path}
    return True


class MOVIEDIR_PG_direct_settings(bpy.types.PropertyGroup):
    scene_text: StringProperty(  # type: ignore[valid-type]
        name="Scene", description="The scene to direct, in a few sentences", default=""
    )
    voice: StringProperty(  # type: ignore[valid-type]
        name="Other Voices", description="RVC voice for characters not in the cast (empty = keep the spoken voice)"
    )
    with_voices: BoolProperty(name="Dialogue", description="Speak each line in the cast's voices", default=True)  # type: ignore[valid-type]
    with_video: BoolProperty(name="Clips", description="Animate each still with Wan2GP", default=True)  # type: ignore[valid-type]
    with_sound: BoolProperty(name="Sound", description="A sound effect per shot (AudioLDM)", default=True)  # type: ignore[valid-type]
    checkpoint: StringProperty(  # type: ignore[valid-type]
        name="Checkpoint",
        description="ComfyUI checkpoint for the stills (empty = your last choice on the server, else its first)",
    )


class MOVIEDIR_OT_direct(bpy.types.Operator):
    bl_idname = "moviedir.direct"
    bl_label = "Direct"
    bl_description = "Turn the scene into a shot list, then images, clips, sounds and voices laid out on the Sequencer"
    bl_options = {"REGISTER"}  # strips arrive later from the pipeline, outside this operator's undo step

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def execute(self, context: Any) -> set[str]:
        settings = context.scene.movie_director_direct
        if not settings.scene_text.strip():
            self.report({"ERROR"}, "Write the scene first")
            return {"CANCELLED"}
        try:
            direct(
                settings.scene_text,
                voice=settings.voice,
                scene=context.scene,
                with_video=settings.with_video,
                with_sound=settings.with_sound,
                with_voices=settings.with_voices,
                image_params={"checkpoint": settings.checkpoint.strip()} if settings.checkpoint.strip() else {},
            )
        except Exception as exc:
            self.report({"ERROR"}, f"Could not start directing: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, "Directing: the shot list comes first, then each shot's material")
        return {"FINISHED"}


class MOVIEDIR_OT_pipeline_stage(bpy.types.Operator):
    bl_idname = "moviedir.pipeline_stage"
    bl_label = "Stage"
    bl_description = "Cancel, retry or regenerate one stage; everything downstream of it is redone"
    bl_options = {"INTERNAL"}  # acts on background work

    action: EnumProperty(  # type: ignore[valid-type]
        items=[("CANCEL", "Cancel", ""), ("RETRY", "Retry", ""), ("REGENERATE", "Regenerate", "")]
    )
    stage_id: StringProperty()  # type: ignore[valid-type]

    def execute(self, context: Any) -> set[str]:
        handle = active_pipeline()
        if handle is None:
            self.report({"WARNING"}, "No pipeline is running")
            return {"CANCELLED"}
        if self.action == "CANCEL":
            handle.cancel(self.stage_id or None)
        elif self.action == "RETRY":
            handle.retry(self.stage_id)
        else:
            handle.regenerate(self.stage_id)
        addon_runtime.ensure_timer()
        return {"FINISHED"}


classes = (MOVIEDIR_PG_direct_settings, MOVIEDIR_OT_direct, MOVIEDIR_OT_pipeline_stage)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def _attach_restored(rt: Any) -> None:
    """The runtime hook: pipelines brought back from the journal lay out their results again."""
    for pipeline in rt.pipelines():
        attach_layout(pipeline)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_direct = PointerProperty(type=MOVIEDIR_PG_direct_settings)
    addon_runtime.add_start_hook(_attach_restored)


def unregister() -> None:
    addon_runtime.remove_start_hook(_attach_restored)
    del bpy.types.Scene.movie_director_direct
    _active[0] = None
    _unregister()
