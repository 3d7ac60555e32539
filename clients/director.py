"""Direct a scene: the pipeline from a written scene to the material of a rough cut.

Plain Python: this module never imports bpy. The LLM writes a shot list (structured output); the ``direct_scene``
expander then adds, per shot: a storyboard image (ComfyUI), a clip animated from that image (Wan2GP), a sound effect
(AudioLDM) and, where the shot has dialogue and a voice is chosen, each line spoken (AudioLDM speech) and converted
to that voice (RVC). :func:`scene_result` reads a finished pipeline back as a typed structure the Blender layer lays
out on the Sequencer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..runtime.pipeline import Bind, PipelineSpec, Stage, StageState, register_expander

#: Wan2GP renders at 16 frames per second.
VIDEO_FPS = 16


class DirectOptions(BaseModel):
    """How to direct: which models and voice, and which stages to include."""

    llm_model: str = "director-llm"
    image_template: str = "storyboard-frame"
    image_params: dict[str, Any] = Field(default_factory=dict)
    video_model: str = "t2v_1.3B"
    video_resolution: str = "832x480"
    video_steps: int = 30
    voice: str = ""  # an RVC voice; empty = no voice lines
    with_video: bool = True
    with_sound: bool = True
    seed: int = 1000


def plan_scene(scene_text: str, options: DirectOptions | None = None, *, title: str = "") -> PipelineSpec:
    """The pipeline's first stage; the rest is planned from the shot list when it arrives."""
    opts = options or DirectOptions()
    shots = Stage(
        id="shots",
        backend="llm",
        kind="shot_list",
        request={"scene": scene_text, "model": opts.llm_model},
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
                        "video_length": max(1, round(seconds * VIDEO_FPS)),
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
        if opts.voice:
            for j, line in enumerate(shot.get("dialogue") or [], start=1):
                speech = Stage(
                    id=f"{group}.line{j}.speech",
                    backend="audioldm",
                    kind="sound",
                    request={"text": f"a person speaking: {line.get('line', '')}", "duration": 2.5},
                    depends_on=[stage.id],
                    label=f"Shot {i} line {j} ({line.get('character', '')})",
                    group=group,
                )
                stages.append(speech)
                stages.append(
                    Stage(
                        id=f"{group}.line{j}.voice",
                        backend="rvc",
                        kind="convert",
                        request={"voice": opts.voice},
                        binds=[Bind(stage=speech.id, select="file", into="input")],
                        label=f"Shot {i} line {j} voice",
                        group=group,
                    )
                )
    return stages


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
        voices = [p for s in mine if s.id.endswith(".voice") and (p := _path(s))]
        out.append(
            ShotResult(
                index=i,
                description=str(shot.get("description", "")),
                duration_s=float(shot.get("duration_s", 2.0)),
                dialogue=[
                    {"character": d.get("character", ""), "line": d.get("line", "")} for d in shot.get("dialogue") or []
                ],
                image=_path(stages.get(f"{group}.image"), "image/"),
                video=_path(stages.get(f"{group}.video"), "video/"),
                sound=_path(stages.get(f"{group}.sound")),
                voices=voices,
                failed={s.id: s.error for s in mine if s.state in (StageState.FAILED, StageState.CANCELLED)},
            )
        )
    return SceneResult(title=spec.title, shots=out)
