"""Generate Image: a ComfyUI workflow template with the sidebar's settings; the image lands on the Sequencer at the
playhead (first free channel) and in ``bpy.data.images``.

Touches bpy (main thread only). The operator queues the job and returns at once (progress and cancel are in the
status bar and the Jobs panel) and leaves the handle in ``addon_runtime.last_handle``; ``api.generate_image`` is the
console form.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime
from . import preview, sequencer
from .base import JobOperator
from .image_models import MOVIEDIR_PG_lora, lora_stack
from .placement import placement_for, register_placer
from .preview import PREVIEW_IMAGE, show_preview, watch_previews  # noqa: F401  (show_preview: the callback's old home)

if TYPE_CHECKING:
    from ..runtime.bridge import BatchHandle, JobHandle
    from ..runtime.jobs import Job
    from ..runtime.placement import Placement

log = logging.getLogger(__name__)

#: Strip length of a generated still, in seconds.
STILL_SECONDS = 2.0


def export_input_image(scene: Any, source: str, image_name: str = "") -> str | None:
    """A file for the chosen input: the image strip under the playhead, a Blender image, or the render result."""
    if source == "NONE":
        return None
    if source == "STRIP":
        frame = scene.frame_current
        for strip in sorted(sequencer.strips(scene), key=lambda s: -s.channel):
            if strip.type == "IMAGE" and strip.frame_final_start <= frame < strip.frame_final_end:
                elem = strip.strip_elem_from_frame(frame)
                return bpy.path.abspath(str(Path(strip.directory) / elem.filename))
        raise ValueError("There is no image strip under the playhead to use as the input image")
    image = bpy.data.images.get("Render Result" if source == "RENDER" else image_name)
    if image is None:
        raise ValueError(f"There is no image named {image_name or 'Render Result'!r}")
    path = Path(tempfile.mkdtemp(prefix="md-input-")) / "input.png"
    settings = scene.render.image_settings
    saved = settings.file_format, settings.color_mode
    try:  # PNG with alpha: transparency is what an inpainting template repaints
        settings.file_format, settings.color_mode = "PNG", "RGBA"
        image.save_render(str(path), scene=scene)
    finally:
        settings.file_format, settings.color_mode = saved
    return str(path)


def export_mask(image_name: str, input_path: str) -> str:
    """A painted Blender image (white = repaint) as the PNG ComfyUI's ``/upload/mask`` expects: the picture's size,
    its alpha transparent where to repaint (ComfyUI's LoadImage turns transparency into the mask)."""
    import numpy as np

    painted = bpy.data.images.get(image_name)
    if painted is None:
        raise ValueError(f"There is no mask image named {image_name!r}")
    probe = bpy.data.images.load(input_path, check_existing=False)
    try:
        width, height = (int(v) for v in probe.size)
    finally:
        bpy.data.images.remove(probe)
    pw, ph = (int(v) for v in painted.size)
    if not pw or not ph:
        raise ValueError(f"The mask image {image_name!r} has no pixels")
    pixels = np.empty(pw * ph * 4, dtype=np.float32)
    painted.pixels.foreach_get(pixels)  # (a copy of a painted image would lose unsaved strokes)
    rgba = pixels.reshape(ph, pw, 4)
    rows = np.arange(height) * ph // height  # nearest neighbour to the picture's size
    cols = np.arange(width) * pw // width
    fitted = rgba[rows][:, cols].reshape(-1, 4)
    repaint = fitted[:, :3].mean(axis=1) * fitted[:, 3]
    out = np.zeros((width * height, 4), dtype=np.float32)
    out[:, 3] = 1.0 - np.clip(repaint, 0.0, 1.0)
    path = Path(tempfile.mkdtemp(prefix="md-mask-")) / "mask.png"
    mask = bpy.data.images.new("md-mask", width, height, alpha=True)
    try:
        mask.pixels.foreach_set(out.ravel())
        mask.filepath_raw = str(path)
        mask.file_format = "PNG"
        mask.save()
    finally:
        bpy.data.images.remove(mask)
    return str(path)


def settings_mask(scene: Any, settings: Any, input_path: str | None) -> str | None:
    """The painted mask the panel chose, exported for the input picture (None: the input's own transparency)."""
    if input_path and settings.mask_source == "IMAGE" and takes_mask(settings.template):
        return export_mask(settings.mask_image, input_path)
    return None


def submit_image(
    *,
    prompt: str,
    template: str = "txt2img",
    preset: str | None = None,
    params: dict[str, Any] | None = None,
    input_image: str | None = None,
    mask: str | None = None,
    title: str = "",
    placement: Placement | None = None,
) -> JobHandle:
    """Queue one ComfyUI image job from plain values (shared by the operator and the console API); placed when done
    if ``placement``. ``mask``: a PNG whose alpha becomes the input picture's (transparent = repaint), uploaded as
    ComfyUI's mask editor does."""
    request = image_request(prompt, template, preset, params, input_image, title, mask=mask)
    handle = addon_runtime.runtime().submit("comfyui", "image", request, placement=placement)
    return watch_previews(handle)


def image_request(
    prompt: str,
    template: str,
    preset: str | None,
    params: dict[str, Any] | None,
    input_image: str | None,
    title: str,
    *,
    mask: str | None = None,
) -> dict[str, Any]:
    """The ComfyUI "image" request for a template and its parameters (``mask``: see :func:`submit_image`)."""
    values = dict(params or {})
    if prompt or _takes(template, "prompt"):
        values["prompt"] = prompt
    request: dict[str, Any] = {"template": template, "params": values, "preset": preset, "title": title or prompt}
    if input_image:
        request["images"] = {"input_image": input_image}
    if mask:
        if not input_image:
            raise ValueError("A mask needs an input image")
        request["masks"] = {"input_image": mask}
    return request


def submit_variations(
    count: int,
    *,
    prompt: str,
    seed: int = -1,
    layout: str = "SIDE_BY_SIDE",
    scene: Any = None,
    frame: int | None = None,
    template: str = "txt2img",
    preset: str | None = None,
    params: dict[str, Any] | None = None,
    input_image: str | None = None,
    mask: str | None = None,
) -> BatchHandle:
    """Queue ``count`` images that differ only in their seed, as one batch. ``layout`` SIDE_BY_SIDE stacks them on
    free channels at one frame (to compare), SEQUENCE puts them one after another (to play through)."""
    import random

    from ..runtime.core import JobSpec

    if not 1 <= count <= MAX_VARIATIONS:
        raise ValueError(f"Variations must be between 1 and {MAX_VARIATIONS}, not {count}")
    if layout not in ("SIDE_BY_SIDE", "SEQUENCE"):
        raise ValueError(f"layout must be SIDE_BY_SIDE or SEQUENCE, not {layout!r}")
    scene = scene or bpy.context.scene
    first = scene.frame_current if frame is None else int(frame)
    duration = sequencer.seconds_to_frames(scene, STILL_SECONDS)
    seeds = random.sample(range(2**31), count) if seed < 0 else [seed + i for i in range(count)]
    specs = []
    for i, s in enumerate(seeds):
        request = image_request(prompt, template, preset, {**(params or {}), "seed": s}, input_image, "", mask=mask)
        request["title"] = f"{prompt[:40]} (variation {i + 1}/{count})"
        at = first if layout == "SIDE_BY_SIDE" else first + i * duration
        where = placement_for(scene, "image", frame=at, name=prompt[:48], extra={"duration": duration})
        specs.append(JobSpec(backend="comfyui", kind="image", request=request, placement=where))
    batch = addon_runtime.runtime().submit_batch(specs)
    for handle in batch.handles:
        watch_previews(handle)
    return batch


#: The most variations one click may queue.
MAX_VARIATIONS = 16


def template_params(template: str) -> set[str]:
    """The parameter names of a template in the local catalogue (empty for an unknown one; no network)."""
    try:
        return {p.name for p in template_catalog().get(template).params}
    except Exception:  # an unknown template is reported at submit
        return set()


def saved_checkpoint(template: str) -> str | None:
    """The checkpoint a film-maker's own workflow was saved with (used when none is picked); None for a built-in."""
    try:
        params = template_catalog().get(template).params
    except Exception:  # an unknown template is reported at submit
        return None
    return next((p.saved for p in params if p.name == "checkpoint" and p.saved), None)


def takes_mask(template: str) -> bool:
    """Whether a template inpaints: its input picture's transparency is the area to repaint."""
    try:
        return bool(template_catalog().get(template).category == "inpaint")
    except Exception:  # an unknown template is reported at submit
        return False


def _takes(template: str, param: str) -> bool:
    try:
        return any(p.name == param for p in template_catalog().get(template).params)
    except Exception:  # unknown template: the client says so with the catalogue's own message
        return True


def place_job_images(scene: Any, job: Job, placement: Placement) -> list[Any]:
    """Put every image a job produced on the Sequencer, one after another from the placement's frame (the "image"
    placer; ``extra["duration"]`` in frames, a 2 s still by default)."""
    frame = placement.frame
    duration = int(placement.extra.get("duration") or sequencer.seconds_to_frames(scene, STILL_SECONDS))
    name = placement.name or (job.request.get("title") or "shot")[:48]
    placed = []
    for i, out in enumerate(f for f in job.outputs.files if f.media_type.startswith("image/")):
        start = frame + i * duration
        placed.append(
            sequencer.place_image(scene, out.path, frame=start, duration=duration, name=name, channel=placement.channel)
        )
    return placed


register_placer("image", place_job_images)


def generate_image(
    prompt: str,
    *,
    template: str = "txt2img",
    preset: str | None = None,
    input_image: str | None = None,
    mask: str | None = None,
    place: bool = True,
    frame: int | None = None,
    scene: Any = None,
    **params: Any,
) -> JobHandle:
    """Generate an image with ComfyUI (the console form of the operator). With ``place`` it lands on the Sequencer at
    ``frame`` (the playhead by default) on the first free channel when it is done."""
    placement = placement_for(scene or bpy.context.scene, "image", frame=frame) if place else None
    return submit_image(
        prompt=prompt,
        template=template,
        preset=preset,
        params=params,
        input_image=input_image,
        mask=mask,
        placement=placement,
    )


def _template_items(self: Any, context: Any) -> list[tuple[str, str, str]]:
    """Enum items from the local template catalogue (files on disk: no network here)."""
    return [(t.id, t.name, t.description) for t in template_catalog().list()]


def template_catalog() -> Any:
    """The ComfyUI template catalogue the client uses too (built-in plus the preferences' folder, kept current)."""
    from ..clients.comfyui.templates.shared import catalog_for

    prefs = addon_runtime.preferences()
    folder = getattr(prefs, "templates_dir", "") if prefs else ""
    return catalog_for(bpy.path.abspath(folder) if folder else None)


class MOVIEDIR_PG_image_settings(bpy.types.PropertyGroup):
    template: bpy.props.EnumProperty(name="Template", items=_template_items)  # type: ignore[valid-type]
    prompt: bpy.props.StringProperty(name="Prompt", default="")  # type: ignore[valid-type]
    negative_prompt: bpy.props.StringProperty(name="Negative", default="")  # type: ignore[valid-type]
    width: bpy.props.IntProperty(name="Width", default=768, min=64, max=2048, step=8)  # type: ignore[valid-type]
    height: bpy.props.IntProperty(name="Height", default=432, min=64, max=2048, step=8)  # type: ignore[valid-type]
    steps: bpy.props.IntProperty(name="Steps", default=20, min=1, max=150)  # type: ignore[valid-type]
    seed: bpy.props.IntProperty(name="Seed", description="-1 = random", default=-1, min=-1)  # type: ignore[valid-type]
    cfg: bpy.props.FloatProperty(name="CFG", default=7.0, min=1.0, max=30.0)  # type: ignore[valid-type]
    preset: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Quality",
        items=[
            ("CUSTOM", "Custom", "Use the steps and CFG above"),
            ("draft", "Draft", "Fast, rough"),
            ("standard", "Standard", "Balanced"),
            ("high", "High", "Slow, detailed"),
        ],
        default="CUSTOM",
    )
    input_source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Input Image",
        items=[
            ("NONE", "None", "Text to image"),
            ("STRIP", "Strip Under Playhead", "The image strip at the current frame"),
            ("RENDER", "Render Result", "The last render"),
            ("IMAGE", "Image", "A Blender image by name"),
        ],
        default="NONE",
    )
    input_image: bpy.props.StringProperty(name="Image Name", default="")  # type: ignore[valid-type]
    variations: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Variations", description="How many images to make, each with its own seed", default=1, min=1, max=16
    )
    variation_layout: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Lay Out",
        items=[
            ("SIDE_BY_SIDE", "Side by Side", "Stacked on free channels at the playhead, to compare"),
            ("SEQUENCE", "One After Another", "In a row from the playhead, to play through"),
        ],
        default="SIDE_BY_SIDE",
    )
    mask_source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Mask",
        description="What to repaint (templates that inpaint)",
        items=[
            ("ALPHA", "Input's Transparency", "Transparent parts of the input picture are repainted"),
            ("IMAGE", "Painted Image", "A Blender image: white is repainted, black is kept"),
        ],
        default="ALPHA",
    )
    mask_image: bpy.props.StringProperty(name="Mask Image", default="")  # type: ignore[valid-type]
    checkpoint: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Checkpoint",
        description="Checkpoint on the server (empty = your last choice there, else its first)",
        default="",
    )
    sampler: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Sampler", description="Sampling method (empty = your last choice on the server, else its first)"
    )
    scheduler: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Scheduler", description="Noise schedule (empty = your last choice on the server, else its first)"
    )
    loras: bpy.props.CollectionProperty(type=MOVIEDIR_PG_lora)  # type: ignore[valid-type]


def settings_params(settings: Any) -> dict[str, Any]:
    """The template parameters the sidebar's settings map to (only those the chosen template has)."""
    values = {
        "negative_prompt": settings.negative_prompt,
        "width": settings.width,
        "height": settings.height,
        "steps": settings.steps,
        "seed": settings.seed,
        "cfg": settings.cfg,
        "checkpoint": settings.checkpoint.strip(),
        "sampler": settings.sampler.strip(),
        "scheduler": settings.scheduler.strip(),
        "loras": lora_stack(settings.loras),
    }
    try:
        known = {p.name for p in template_catalog().get(settings.template).params}
    except Exception:  # an unknown template is reported at submit, with the catalogue's own message
        return values
    if settings.preset != "CUSTOM":
        values.pop("steps"), values.pop("cfg")
    optional = ("negative_prompt", "checkpoint", "sampler", "scheduler", "loras")
    return {k: v for k, v in values.items() if k in known and (v or k not in optional)}


class MOVIEDIR_OT_generate_image(JobOperator):
    bl_idname = "moviedir.generate_image"
    bl_label = "Generate Image"
    bl_description = "Generate an image with ComfyUI and put it on the Sequencer at the playhead"
    bl_options = {"REGISTER"}  # the strip is added later by its placer, outside this operator's undo step

    what = "The image"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def start_job(self, context: Any, placement: Placement | None) -> JobHandle:
        settings = context.scene.movie_director_image
        if not settings.prompt.strip() and settings.input_source == "NONE":
            raise ValueError("Write a prompt first")
        input_path = export_input_image(context.scene, settings.input_source, settings.input_image)
        return submit_image(
            prompt=settings.prompt,
            template=settings.template,
            preset=None if settings.preset == "CUSTOM" else settings.preset,
            params=settings_params(settings),
            input_image=input_path,
            mask=settings_mask(context.scene, settings, input_path),
            placement=placement,
        )

    def placement(self, context: Any) -> Placement:
        return placement_for(context.scene, "image")


class MOVIEDIR_OT_generate_variations(bpy.types.Operator):
    bl_idname = "moviedir.generate_variations"
    bl_label = "Generate Variations"
    bl_description = "Queue the panel's image with several seeds as one batch, laid out side by side or in a row"
    bl_options = {"REGISTER"}  # the strips arrive later, each as its own undo step

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def execute(self, context: Any) -> set[str]:
        from ..runtime.errors import MovieDirectorError  # with the first job: not when the add-on is enabled

        settings = context.scene.movie_director_image
        try:
            if not settings.prompt.strip() and settings.input_source == "NONE":
                raise ValueError("Write a prompt first")
            batch = submit_variations(
                settings.variations,
                prompt=settings.prompt,
                seed=settings.seed,
                layout=settings.variation_layout,
                scene=context.scene,
                template=settings.template,
                preset=None if settings.preset == "CUSTOM" else settings.preset,
                params={k: v for k, v in settings_params(settings).items() if k != "seed"},
                input_image=(source := export_input_image(context.scene, settings.input_source, settings.input_image)),
                mask=settings_mask(context.scene, settings, source),
            )
        except (MovieDirectorError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        addon_runtime.last_batch = batch
        addon_runtime.last_handle = batch.handles[-1]
        addon_runtime.ensure_timer()
        self.report({"INFO"}, f"{len(batch)} variations were queued")
        return {"FINISHED"}


classes = (MOVIEDIR_PG_image_settings, MOVIEDIR_OT_generate_image, MOVIEDIR_OT_generate_variations)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_image = bpy.props.PointerProperty(type=MOVIEDIR_PG_image_settings)


def unregister() -> None:
    preview.reset()
    del bpy.types.Scene.movie_director_image
    _unregister()
