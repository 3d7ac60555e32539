"""Direct a scene: the pipeline from a written scene to the material of a rough cut.

Plain Python: this module never imports bpy. The LLM writes a shot list (structured output); the ``direct_scene``
expander then adds, per shot: a storyboard image (ComfyUI), a clip animated from that image (Wan2GP), a sound effect
(AudioLDM) and each dialogue line spoken by its character's TTS voice (the speech backend) and, where the cast gives
the character an RVC voice, converted to it (RVC). :func:`scene_result` reads a finished pipeline back as a typed
structure the Blender layer lays out on the Sequencer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..runtime.pipeline import Bind, PipelineSpec, Stage, StageState, register_expander
from .llm.shots import SHOT_LIST_SYSTEM


class CastVoices(BaseModel):
    """A character's voices: the speech server's voice (empty = its first) and an RVC voice (empty = none)."""

    tts_voice: str = ""
    rvc_voice: str = ""
    pitch: int = Field(default=0, ge=-24, le=24)


class DirectOptions(BaseModel):
    """How to direct: which models, the cast's voices, and which stages to include."""

    llm_model: str = ""  # empty = the LLM backend's configured model, else the server's first
    image_template: str = "storyboard-frame"
    image_params: dict[str, Any] = Field(default_factory=dict)
    video_model: str = ""  # empty: the Wan2GP server's first model that can start from the still
    video_resolution: str = "832x480"
    video_steps: int = 30
    cast: dict[str, CastVoices] = Field(default_factory=dict)  # character -> voices
    voice: str = ""  # an RVC voice for characters the cast does not name (empty = their speech is kept)
    speech_voice: str = ""  # the TTS voice for characters the cast does not name (empty = the server's first)
    with_video: bool = True
    with_sound: bool = True
    with_voices: bool = True  # speak the dialogue
    seed: int = 1000

    def voices_for(self, character: str) -> CastVoices:
        """The cast entry of ``character`` (matched ignoring case and spacing), else the defaults."""
        key = " ".join(character.split()).casefold()
        for name, voices in self.cast.items():
            if " ".join(name.split()).casefold() == key:
                return voices
        return CastVoices(tts_voice=self.speech_voice, rvc_voice=self.voice)


def plan_scene(scene_text: str, options: DirectOptions | None = None, *, title: str = "") -> PipelineSpec:
    """The pipeline's first stage; the rest is planned from the shot list when it arrives."""
    opts = options or DirectOptions()
    request: dict[str, Any] = {"scene": scene_text, "model": opts.llm_model}
    if opts.cast:  # the names the cast knows, so each line's speaker finds its voices
        names = ", ".join(opts.cast)
        request["system"] = f"{SHOT_LIST_SYSTEM} The speaking characters are: {names}; use exactly these names."
    shots = Stage(
        id="shots",
        backend="llm",
        kind="shot_list",
        request=request,
        label="Shot list",
        expander="direct_scene",
    )
    return PipelineSpec(
        title=title or scene_text[:60], stages=[shots], data={"scene": scene_text, "options": opts.model_dump()}
    )


def _direct_scene(stage: Stage, spec: PipelineSpec) -> list[Stage]:
    opts = DirectOptions.model_validate(spec.data.get("options", {}))
    shot_list = (stage.outputs.data if stage.outputs else {}).get("shot_list") or {}
    shots = shot_list.get("shots") or []
    if not shots:
        raise ValueError("the shot list has no shots")
    if shot_list.get("title"):
        spec.title = str(shot_list["title"])
    stages: list[Stage] = []
    for i, shot in enumerate(shots, start=1):
        group = f"shot{i}"
        description = str(shot.get("description", ""))
        camera = str(shot.get("camera", ""))
        seconds = float(shot.get("duration_s", 2.0))
        prompt = f"{description}, {camera}" if camera else description
        image = Stage(
            id=f"{group}.image",
            backend="comfyui",
            kind="image",
            request={
                "template": opts.image_template,
                "params": {"prompt": prompt, "seed": opts.seed + i, **opts.image_params},
                "title": description,
            },
            depends_on=[stage.id],
            label=f"Shot {i} image",
            group=group,
        )
        stages.append(image)
        if opts.with_video:
            stages.append(
                Stage(
                    id=f"{group}.video",
                    backend="wan2gp",
                    kind="video",
                    request={
                        "prompt": prompt,
                        "model_type": opts.video_model,
                        "resolution": opts.video_resolution,
                        "video_length": f"{max(0.1, round(seconds, 2)):g}s",  # Wan2GP counts at the model's fps
                        "num_inference_steps": opts.video_steps,
                        "seed": opts.seed + i,
                    },
                    binds=[Bind(stage=image.id, select="file:image/", into="image_start")],
                    label=f"Shot {i} clip",
                    group=group,
                )
            )
        cues = [str(c) for c in shot.get("sound_cues") or []]
        if opts.with_sound:
            stages.append(
                Stage(
                    id=f"{group}.sound",
                    backend="audioldm",
                    kind="sound",
                    request={"text": ", ".join(cues) or description, "duration": min(max(seconds, 2.5), 10.0)},
                    depends_on=[stage.id],
                    label=f"Shot {i} sound",
                    group=group,
                )
            )
        if opts.with_voices:
            stages += _line_stages(opts, stage.id, group, i, shot.get("dialogue") or [])
    return stages


def _line_stages(opts: DirectOptions, after: str, group: str, shot: int, lines: list[Any]) -> list[Stage]:
    """Each line spoken by its character's TTS voice, then converted to the character's RVC voice if it has one."""
    stages: list[Stage] = []
    for j, line in enumerate(lines, start=1):
        character = str(line.get("character", "")) if isinstance(line, dict) else ""
        text = str(line.get("line", "")) if isinstance(line, dict) else str(line)
        if not text.strip():
            continue  # nothing to say
        voices = opts.voices_for(character)
        speech = Stage(
            id=f"{group}.line{j}.speech",
            backend="speech",
            kind="speak",
            request={"text": text, "voice": voices.tts_voice, "title": f"{character}: {text}"[:60]},
            depends_on=[after],
            label=f"Shot {shot} line {j} ({character or 'unnamed'})",
            group=group,
        )
        stages.append(speech)
        if voices.rvc_voice:
            stages.append(
                Stage(
                    id=f"{group}.line{j}.voice",
                    backend="rvc",
                    kind="convert",
                    request={"voice": voices.rvc_voice, "pitch": voices.pitch},
                    binds=[Bind(stage=speech.id, select="file", into="input")],
                    label=f"Shot {shot} line {j} voice ({voices.rvc_voice})",
                    group=group,
                )
            )
    return stages


def line_audio(stages: dict[str, Stage], group: str, line: int) -> Stage | None:
    """The stage whose file is a line's final audio: its conversion when there is one, else its speech."""
    return stages.get(f"{group}.line{line}.voice") or stages.get(f"{group}.line{line}.speech")


register_expander("direct_scene", _direct_scene)


class ShotResult(BaseModel):
    index: int
    description: str
    duration_s: float
    dialogue: list[dict[str, str]] = Field(default_factory=list)
    image: str | None = None
    video: str | None = None
    sound: str | None = None
    voices: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)  # stage id -> reason


class SceneResult(BaseModel):
    title: str
    shots: list[ShotResult]

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.shots)


def _path(stage: Stage | None, prefix: str = "") -> str | None:
    if stage is None or stage.state is not StageState.SUCCEEDED or stage.outputs is None:
        return None
    for f in stage.outputs.files:
        if f.media_type.startswith(prefix):
            return f.path
    return stage.outputs.files[0].path if stage.outputs.files else None


def scene_result(spec: PipelineSpec) -> SceneResult:
    """The pipeline read back as shots with their files (None where a stage did not succeed, with the reason)."""
    stages = {s.id: s for s in spec.stages}
    shots_stage = stages.get("shots")
    shot_list = (shots_stage.outputs.data if shots_stage and shots_stage.outputs else {}).get("shot_list") or {}
    out = []
    for i, shot in enumerate(shot_list.get("shots") or [], start=1):
        group = f"shot{i}"
        mine = [s for s in spec.stages if s.group == group]
        lines = shot.get("dialogue") or []
        voices = [p for j in range(1, len(lines) + 1) if (p := _path(line_audio(stages, group, j)))]
        out.append(
            ShotResult(
                index=i,
                description=str(shot.get("description", "")),
                duration_s=float(shot.get("duration_s", 2.0)),
                dialogue=[
                    {"character": d.get("character", ""), "line": d.get("line", "")}
                    for d in lines
                    if isinstance(d, dict)
                ],
                image=_path(stages.get(f"{group}.image"), "image/"),
                video=_path(stages.get(f"{group}.video"), "video/"),
                sound=_path(stages.get(f"{group}.sound")),
                voices=voices,
                failed={s.id: s.error for s in mine if s.state in (StageState.FAILED, StageState.CANCELLED)},
            )
        )
    return SceneResult(title=spec.title, shots=out)
