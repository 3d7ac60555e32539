"""The emulator's node registry: declarative definitions from which /object_info, validation and execution all derive.

Nodes make real pixels with Pillow, so a client sees believable files without a GPU or model weights. The sampler
draws a deterministic picture from its positive prompt and seed, so the same request always gives the same image.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import io
import json
import os
import random
import textwrap
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image, ImageDraw, ImageFile, ImageFont, ImageOps, ImageSequence, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

MAX_RESOLUTION = 16384
#: Pixels one node may allocate; a real server would run out of VRAM instead, we fail the node cleanly.
PIXEL_BUDGET = 64_000_000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
CHECKPOINTS = ["emulator-v1.safetensors", "emulator-xl.safetensors"]
LORAS = ["emulator-ink.safetensors", "emulator-film-grain.safetensors"]
SAMPLERS = [
    "euler",
    "euler_cfg_pp",
    "euler_ancestral",
    "euler_ancestral_cfg_pp",
    "heun",
    "heunpp2",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpm_fast",
    "dpm_adaptive",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_3m_sde",
    "ddpm",
    "lcm",
    "ipndm",
    "deis",
    "res_multistep",
    "ddim",
    "uni_pc",
    "uni_pc_bh2",
]
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta", "normal", "linear_quadratic"]
UPSCALE_METHODS = ["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]
CROP_METHODS = ["disabled", "center"]
WEBP_METHODS = {"default": 4, "fastest": 0, "slowest": 6}
_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
_HIDDEN_SAVE = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}


class InterruptProcessing(Exception):
    """Raised inside a node when its prompt is interrupted (ComfyUI's InterruptProcessingException)."""


# --------------------------------------------------------------------------------------------------------------------
# Values flowing along links


@dataclass
class Folders:
    """The server's folders, as ComfyUI's folder_paths knows them."""

    input_dir: Path
    output_dir: Path
    temp_dir: Path
    checkpoints: list[str] = field(default_factory=lambda: list(CHECKPOINTS))
    loras: list[str] = field(default_factory=lambda: list(LORAS))

    def by_type(self, kind: str) -> Path | None:
        return {"input": self.input_dir, "output": self.output_dir, "temp": self.temp_dir}.get(kind)

    def input_files(self) -> list[str]:
        try:
            names = [e.name for e in os.scandir(self.input_dir) if e.is_file()]
        except OSError:
            return []
        return sorted(n for n in names if n.lower().endswith(IMAGE_EXTENSIONS))

    def annotated_path(self, name: str, default: str = "input") -> Path | None:
        """``name`` or ``name [output]`` → a path inside the right folder; None when it would escape it."""
        kind = default
        for suffix in ("input", "output", "temp"):
            if name.endswith(f" [{suffix}]"):
                name, kind = name[: -len(suffix) - 3], suffix
                break
        base = self.by_type(kind)
        if base is None or not name:
            return None
        path = Path(os.path.abspath(os.path.join(base, name)))
        if os.path.commonpath((str(base), str(path))) != str(base):
            return None
        return path


@dataclass
class ImageBatch:
    """IMAGE: a batch of RGB pictures (a tensor [B, H, W, 3] in real ComfyUI)."""

    images: list[Image.Image]

    def __str__(self) -> str:
        first = self.images[0] if self.images else None
        size = f"{first.height}x{first.width}" if first else "0x0"
        return f"IMAGE[{len(self.images)}x{size}x3]"


@dataclass
class MaskBatch:
    """MASK: a batch of single-channel masks."""

    masks: list[Image.Image]

    def __str__(self) -> str:
        return f"MASK[{len(self.masks)}]"


@dataclass
class FakeModel:
    """MODEL, CLIP and VAE: named stand-ins, enough for links to type-check and for the picture to differ."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}({self.name})"


@dataclass
class Conditioning:
    """CONDITIONING: the prompt text it was encoded from."""

    text: str

    def __str__(self) -> str:
        return f"CONDITIONING({self.text[:40]!r})"


@dataclass
class Latent:
    """LATENT: what the picture will be once decoded (pixel sizes, not latent sizes, for simplicity)."""

    width: int
    height: int
    batch_size: int = 1
    source: ImageBatch | None = None
    positive: str = ""
    negative: str = ""
    seed: int | None = None
    denoise: float = 1.0
    model: str = ""
    #: VAEEncodeForInpaint's mask (white = repaint): decoding keeps the source outside it.
    mask: MaskBatch | None = None

    def __str__(self) -> str:
        return f"LATENT[{self.batch_size}x4x{self.height // 8}x{self.width // 8}]"


@dataclass
class NodeResult:
    """What a node returns: its outputs (one per RETURN_TYPE) and an optional UI dict (``executed.output``)."""

    outputs: tuple[Any, ...] = ()
    ui: dict[str, Any] | None = None


@dataclass
class RunContext:
    """What a running node may use; ``progress`` and ``sleep`` are coroutines on the server's loop.

    ``progress(value, total, preview)`` raises InterruptProcessing once the prompt is interrupted, as ComfyUI's
    progress hook does; ``sleep(None)`` waits the emulator's current ``step_delay`` and wakes early on interrupt.
    """

    folders: Folders
    node_id: str
    prompt: Mapping[str, Any]
    extra_data: Mapping[str, Any]
    progress: Callable[[int, int, Image.Image | None], Awaitable[None]]
    sleep: Callable[[float | None], Awaitable[None]]


InputSpec = dict[str, dict[str, tuple[Any, ...]]]


@dataclass(frozen=True)
class NodeDef:
    """One node class; ``inputs`` is ComfyUI's INPUT_TYPES (a dict, or a function of the folders for file lists)."""

    name: str
    inputs: InputSpec | Callable[[Folders], InputSpec]
    outputs: tuple[str, ...]
    run: Callable[..., Any]
    category: str
    display_name: str | None = None
    description: str = ""
    output_names: tuple[str, ...] | None = None
    output_node: bool = False
    python_module: str = "nodes"
    #: Like VALIDATE_INPUTS: called with the inputs named in ``validate_inputs``; True or a reason string.
    validate: Callable[[Folders, dict[str, Any]], bool | str] | None = None
    validate_inputs: tuple[str, ...] = ()
    #: Like IS_CHANGED: part of the cache key, so a re-uploaded file re-runs its loader.
    is_changed: Callable[[Folders, Mapping[str, Any]], Any] | None = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.run)

    def input_types(self, folders: Folders) -> InputSpec:
        return self.inputs(folders) if callable(self.inputs) else self.inputs

    def info(self, folders: Folders) -> dict[str, Any]:
        """The /object_info entry, shaped as ComfyUI's node_info()."""
        inputs = self.input_types(folders)
        return {
            "input": {k: {n: list(s) if isinstance(s, tuple) else s for n, s in v.items()} for k, v in inputs.items()},
            "input_order": {k: list(v) for k, v in inputs.items()},
            "output": list(self.outputs),
            "output_is_list": [False] * len(self.outputs),
            "output_name": list(self.output_names or self.outputs),
            "name": self.name,
            "display_name": self.display_name or self.name,
            "description": self.description,
            "python_module": self.python_module,
            "category": self.category,
            "output_node": self.output_node,
        }


# --------------------------------------------------------------------------------------------------------------------
# Pictures


def _check_budget(width: int, height: int, count: int = 1) -> None:
    if width * height * max(count, 1) > PIXEL_BUDGET:
        raise MemoryError(
            f"the emulator will not allocate {count} image(s) of {width}x{height}: over its {PIXEL_BUDGET} pixel budget"
        )


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except Exception:  # Pillow without FreeType
        return ImageFont.load_default()


def _rgb(rng: random.Random, lo: int = 0, hi: int = 255) -> tuple[int, int, int]:
    return (rng.randint(lo, hi), rng.randint(lo, hi), rng.randint(lo, hi))


def render_picture(text: str, seed: int, width: int, height: int, index: int = 0, caption: bool = True) -> Image.Image:
    """A deterministic picture for a prompt and seed: gradient sky, translucent shapes and the prompt as a caption."""
    key = f"{seed}\x00{index}\x00{text}".encode("utf-8", "replace")
    rng = random.Random(hashlib.sha256(key).digest())
    width, height = max(1, width), max(1, height)
    top, bottom = _rgb(rng, 20, 235), _rgb(rng, 20, 235)
    mask = Image.linear_gradient("L").resize((width, height))
    picture = Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask)
    overlay = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    scale = min(width, height)
    for _ in range(rng.randint(5, 11)):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.3) * scale
        box = (cx - r, cy - r * rng.uniform(0.5, 1.5), cx + r, cy + r * rng.uniform(0.5, 1.5))
        fill = (*_rgb(rng), rng.randint(90, 200))
        kind = rng.random()
        if kind < 0.5:
            draw.ellipse(box, fill=fill)
        elif kind < 0.8:
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    if caption and text.strip() and height >= 32 and width >= 32:
        size = max(8, height // 24)
        font = _font(size)
        lines = textwrap.wrap(text.encode("utf-8", "replace").decode("utf-8"), width=max(8, width // max(size // 2, 1)))
        lines = lines[:3]
        band = (len(lines) + 1) * (size + 2)
        draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 140))
        for i, line in enumerate(lines):
            try:
                draw.text(
                    (size // 2, height - band + size // 2 + i * (size + 2)), line, fill=(255, 255, 255, 255), font=font
                )
            except Exception:  # a glyph the font cannot draw: the caption is decoration only
                break
    return Image.alpha_composite(picture.convert("RGBA"), overlay).convert("RGB")


def noise_picture(seed: int, width: int, height: int) -> Image.Image:
    """Coloured noise, what a sampler's first steps look like."""
    rng = random.Random(seed)
    small = Image.frombytes(
        "RGB", (max(1, width // 4), max(1, height // 4)), rng.randbytes(max(1, width // 4) * max(1, height // 4) * 3)
    )
    return small.resize((width, height), Image.Resampling.NEAREST)


def preview_size(width: int, height: int) -> tuple[int, int]:
    """Previews are small, like a latent2rgb preview: an eighth of the picture, at least 32 and at most 512 px."""
    w, h = max(1, width // 8), max(1, height // 8)
    longest = max(w, h)
    factor = 32 / longest if longest < 32 else 512 / longest if longest > 512 else 1.0
    return max(1, round(w * factor)), max(1, round(h * factor))


def _to_rgb(img: Image.Image) -> Image.Image:
    return img if img.mode == "RGB" else img.convert("RGB")


# --------------------------------------------------------------------------------------------------------------------
# Saving (folder_paths.get_save_image_path)


def _expand_prefix(prefix: str, width: int, height: int) -> str:
    if "%" not in prefix:
        return prefix
    now = time.localtime()
    for key, value in {
        "%width%": width,
        "%height%": height,
        "%year%": now.tm_year,
        "%month%": f"{now.tm_mon:02}",
        "%day%": f"{now.tm_mday:02}",
        "%hour%": f"{now.tm_hour:02}",
        "%minute%": f"{now.tm_min:02}",
        "%second%": f"{now.tm_sec:02}",
    }.items():
        prefix = prefix.replace(key, str(value))
    return prefix


def save_image_path(prefix: str, output_dir: Path, width: int = 0, height: int = 0) -> tuple[Path, str, int, str]:
    """(folder, file stem, next counter, subfolder) for a filename_prefix, refusing to leave ``output_dir``."""
    prefix = _expand_prefix(prefix, width, height)
    normalized = os.path.normpath(prefix)
    subfolder, filename = os.path.dirname(normalized), os.path.basename(normalized)
    base = os.path.abspath(output_dir)
    folder = os.path.abspath(os.path.join(base, subfolder))
    if os.path.commonpath((base, folder)) != base:
        raise PermissionError(
            f"**** ERROR: Saving image outside the output folder is not allowed.\n full_output_folder: {folder}"
        )
    counter = 1
    try:
        entries = os.listdir(folder)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        entries = []
    stem_len = len(filename)
    for entry in entries:
        head, rest = entry[: stem_len + 1], entry[stem_len + 1 :]
        if os.path.normcase(head[:-1]) == os.path.normcase(filename) and head[-1:] == "_":
            digits = rest.split("_")[0]
            if digits.isdigit():
                counter = max(counter, int(digits) + 1)
    return Path(folder), filename, counter, subfolder


def _png_metadata(ctx: RunContext) -> PngInfo:
    info = PngInfo()
    info.add_text("prompt", json.dumps(ctx.prompt))
    extra = ctx.extra_data.get("extra_pnginfo")
    if isinstance(extra, dict):
        for key, value in extra.items():
            info.add_text(str(key), json.dumps(value))
    return info


def _save_batch(ctx: RunContext, images: ImageBatch, prefix: str, kind: str, compress_level: int) -> NodeResult:
    if not images.images:
        return NodeResult(ui={"images": []})
    folder_root = ctx.folders.output_dir if kind == "output" else ctx.folders.temp_dir
    first = images.images[0]
    folder, stem, counter, subfolder = save_image_path(prefix, folder_root, first.width, first.height)
    results = []
    metadata = _png_metadata(ctx)
    for batch_number, img in enumerate(images.images):
        name = f"{stem.replace('%batch_num%', str(batch_number))}_{counter:05}_.png"
        img.save(folder / name, pnginfo=metadata, compress_level=compress_level)
        results.append({"filename": name, "subfolder": subfolder, "type": kind})
        counter += 1
    return NodeResult(ui={"images": results})


# --------------------------------------------------------------------------------------------------------------------
# Node functions


def empty_image(ctx: RunContext, width: int, height: int, batch_size: int = 1, color: int = 0) -> NodeResult:
    _check_budget(width, height, batch_size)
    rgb = ((color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF)
    return NodeResult((ImageBatch([Image.new("RGB", (width, height), rgb) for _ in range(batch_size)]),))


def image_invert(ctx: RunContext, image: ImageBatch) -> NodeResult:
    return NodeResult((ImageBatch([ImageOps.invert(_to_rgb(i)) for i in image.images]),))


def image_scale(
    ctx: RunContext, image: ImageBatch, upscale_method: str, width: int, height: int, crop: str
) -> NodeResult:
    out = []
    for img in image.images:
        w, h = width, height
        if w == 0 and h == 0:
            out.append(img.copy())
            continue
        if w == 0:
            w = max(1, round(img.width * h / img.height))
        elif h == 0:
            h = max(1, round(img.height * w / img.width))
        _check_budget(w, h, len(image.images))
        src = img
        if crop == "center":
            old_aspect, new_aspect = img.width / img.height, w / h
            if old_aspect > new_aspect:
                cut = round(img.width - img.width * new_aspect / old_aspect) // 2
                src = img.crop((cut, 0, img.width - cut, img.height))
            elif old_aspect < new_aspect:
                cut = round(img.height - img.height * old_aspect / new_aspect) // 2
                src = img.crop((0, cut, img.width, img.height - cut))
        out.append(src.resize((w, h), _RESAMPLE[upscale_method]))
    return NodeResult((ImageBatch(out),))


def image_batch(ctx: RunContext, image1: ImageBatch, image2: ImageBatch) -> NodeResult:
    size = image1.images[0].size if image1.images else None
    second = [i if size is None or i.size == size else i.resize(size, Image.Resampling.BILINEAR) for i in image2.images]
    return NodeResult((ImageBatch(image1.images + second),))


def load_image(ctx: RunContext, image: str) -> NodeResult:
    path = ctx.folders.annotated_path(image)
    if path is None:
        raise FileNotFoundError(f"Invalid image file: {image}")
    frames, masks = [], []
    with _pillow(Image.open, str(path)) as img:
        size = None
        for frame in ImageSequence.Iterator(img):
            frame = _pillow(ImageOps.exif_transpose, frame) or frame
            if size is None:
                size = frame.size
                _check_budget(size[0], size[1], getattr(img, "n_frames", 1))
            elif frame.size != size:
                continue
            rgba = frame.convert("RGBA")
            frames.append(rgba.convert("RGB"))
            masks.append(ImageOps.invert(rgba.getchannel("A")))
    return NodeResult((ImageBatch(frames), MaskBatch(masks)))


T = TypeVar("T")
_TRUNCATED_LOCK = threading.Lock()


def _pillow(fn: Callable[[Any], T], arg: Any) -> T:
    """As ComfyUI's ``node_helpers.pillow``: on a Pillow error, try once more with truncated images allowed (so a
    truncated PNG upload loads, as it does on the real server)."""
    try:
        return fn(arg)
    except (OSError, UnidentifiedImageError, ValueError):
        with _TRUNCATED_LOCK:
            previous = ImageFile.LOAD_TRUNCATED_IMAGES
            ImageFile.LOAD_TRUNCATED_IMAGES = True
            try:
                result = fn(arg)
                if isinstance(result, Image.Image):
                    result.load()  # decode now, while truncation is allowed
                return result
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = previous


def load_image_validate(folders: Folders, inputs: dict[str, Any]) -> bool | str:
    image = inputs.get("image")
    path = folders.annotated_path(image) if isinstance(image, str) else None
    if path is None or not path.is_file():
        return f"Invalid image file: {image}"
    return True


def load_image_changed(folders: Folders, inputs: Mapping[str, Any]) -> str:
    image = inputs.get("image")
    path = folders.annotated_path(image) if isinstance(image, str) else None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path else ""
    except OSError:
        return ""


def save_image(ctx: RunContext, images: ImageBatch, filename_prefix: str = "ComfyUI") -> NodeResult:
    return _save_batch(ctx, images, filename_prefix, "output", compress_level=4)


def preview_image(ctx: RunContext, images: ImageBatch) -> NodeResult:
    suffix = "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
    return _save_batch(ctx, images, f"ComfyUI_temp_{suffix}", "temp", compress_level=1)


def save_animated_webp(
    ctx: RunContext,
    images: ImageBatch,
    filename_prefix: str = "ComfyUI",
    fps: float = 6.0,
    lossless: bool = True,
    quality: int = 80,
    method: str = "default",
) -> NodeResult:
    if not images.images:
        return NodeResult(ui={"images": [], "animated": [False]})
    first = images.images[0]
    folder, stem, counter, subfolder = save_image_path(
        filename_prefix, ctx.folders.output_dir, first.width, first.height
    )
    name = f"{stem}_{counter:05}_.webp"
    first.save(
        folder / name,
        save_all=True,
        duration=int(1000.0 / fps),
        append_images=images.images[1:],
        lossless=lossless,
        quality=quality,
        method=WEBP_METHODS.get(method, 4),
    )
    return NodeResult(
        ui={
            "images": [{"filename": name, "subfolder": subfolder, "type": "output"}],
            "animated": [len(images.images) != 1],
        }
    )


def checkpoint_loader(ctx: RunContext, ckpt_name: str) -> NodeResult:
    return NodeResult((FakeModel("MODEL", ckpt_name), FakeModel("CLIP", ckpt_name), FakeModel("VAE", ckpt_name)))


def lora_loader(
    ctx: RunContext, model: FakeModel, clip: FakeModel, lora_name: str, strength_model: float, strength_clip: float
) -> NodeResult:
    return NodeResult((FakeModel("MODEL", f"{model.name}+{lora_name}"), FakeModel("CLIP", f"{clip.name}+{lora_name}")))


def vae_encode_for_inpaint(
    ctx: RunContext, pixels: ImageBatch, vae: FakeModel, mask: MaskBatch, grow_mask_by: int = 6
) -> NodeResult:
    first = pixels.images[0] if pixels.images else Image.new("RGB", (64, 64))
    batch = max(1, len(pixels.images))
    return NodeResult((Latent(first.width, first.height, batch, source=pixels, mask=mask),))


def clip_text_encode(ctx: RunContext, text: str, clip: FakeModel) -> NodeResult:
    return NodeResult((Conditioning(text),))


def empty_latent(ctx: RunContext, width: int, height: int, batch_size: int = 1) -> NodeResult:
    _check_budget(width, height, batch_size)
    return NodeResult((Latent(width, height, batch_size),))


def vae_encode(ctx: RunContext, pixels: ImageBatch, vae: FakeModel) -> NodeResult:
    first = pixels.images[0] if pixels.images else Image.new("RGB", (64, 64))
    return NodeResult((Latent(first.width, first.height, max(1, len(pixels.images)), source=pixels),))


async def _sample_steps(ctx: RunContext, text: str, seed: int, steps: int, width: int, height: int) -> None:
    """The sampler loop: sleep, then report a step with a preview fading from noise into the final picture."""
    pw, ph = preview_size(width, height)
    final = render_picture(text, seed, pw, ph, caption=False)
    noise = noise_picture(seed, pw, ph)
    for step in range(1, steps + 1):
        await ctx.sleep(None)
        await ctx.progress(step, steps, Image.blend(noise, final, step / steps))


async def ksampler(
    ctx: RunContext,
    model: FakeModel,
    seed: int,
    steps: int,
    cfg: float,
    sampler_name: str,
    scheduler: str,
    positive: Conditioning,
    negative: Conditioning,
    latent_image: Latent,
    denoise: float = 1.0,
) -> NodeResult:
    text = positive.text
    await _sample_steps(ctx, text, seed, steps, latent_image.width, latent_image.height)
    out = Latent(
        latent_image.width,
        latent_image.height,
        latent_image.batch_size,
        source=latent_image.source,
        positive=text,
        negative=negative.text,
        seed=seed,
        denoise=denoise,
        model=model.name,
        mask=latent_image.mask,
    )
    return NodeResult((out,))


def _decode(latent: Latent) -> ImageBatch:
    _check_budget(latent.width, latent.height, latent.batch_size)
    if latent.seed is None:  # never sampled: a real VAE decodes an empty latent to flat grey-brown
        if latent.source is not None:
            return ImageBatch([i.copy() for i in latent.source.images])
        return ImageBatch([Image.new("RGB", (latent.width, latent.height), (120, 110, 100))] * latent.batch_size)
    out = []
    for i in range(latent.batch_size):
        img = render_picture(latent.positive, latent.seed, latent.width, latent.height, index=i)
        if latent.source is not None and latent.source.images and latent.mask is not None and latent.mask.masks:
            src = _to_rgb(latent.source.images[min(i, len(latent.source.images) - 1)]).resize(img.size)
            mask = latent.mask.masks[min(i, len(latent.mask.masks) - 1)].convert("L").resize(img.size)
            img = Image.composite(img, src, mask)
        elif latent.source is not None and latent.source.images and latent.denoise < 1.0:
            src = _to_rgb(latent.source.images[min(i, len(latent.source.images) - 1)]).resize(img.size)
            img = Image.blend(src, img, max(0.0, latent.denoise))
        out.append(img)
    return ImageBatch(out)


def vae_decode(ctx: RunContext, samples: Latent, vae: FakeModel) -> NodeResult:
    return NodeResult((_decode(samples),))


async def ksampler_emulated(
    ctx: RunContext,
    prompt: str,
    seed: int,
    steps: int,
    width: int,
    height: int,
    batch_size: int = 1,
    image: ImageBatch | None = None,
    denoise: float = 1.0,
) -> NodeResult:
    _check_budget(width, height, batch_size)
    await _sample_steps(ctx, prompt, seed, steps, width, height)
    latent = Latent(width, height, batch_size, source=image, positive=prompt, seed=seed, denoise=denoise)
    return NodeResult((await asyncio.to_thread(_decode, latent),))


async def slow_steps(ctx: RunContext, image: ImageBatch, steps: int, delay: float) -> NodeResult:
    """The transcripts' custom node: ProgressBar(steps).update_absolute(i + 1, steps, ("JPEG", image, 512))."""
    preview = image.images[0] if image.images else None
    for step in range(1, steps + 1):
        await ctx.sleep(delay)
        await ctx.progress(step, steps, preview)
    return NodeResult((image,))


def encode_preview(img: Image.Image, fmt: str = "JPEG", max_size: int = 512) -> bytes:
    """Preview bytes as the server makes them (server.py ``send_image``): scaled to fit ``max_size`` with
    ``ImageOps.contain`` and bilinear resampling, so a small preview is scaled *up* too; JPEG quality 95 (or PNG)."""
    img = ImageOps.contain(_to_rgb(img), (max_size, max_size), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------------------------
# The registry

_INT_RES = ("INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8})
_SEED = ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True})


def _load_image_inputs(folders: Folders) -> InputSpec:
    return {"required": {"image": (folders.input_files(), {"image_upload": True})}}


def _checkpoint_inputs(folders: Folders) -> InputSpec:
    return {
        "required": {
            "ckpt_name": (list(folders.checkpoints), {"tooltip": "The name of the checkpoint (model) to load."})
        }
    }


def _lora_inputs(folders: Folders) -> InputSpec:
    strength = ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01})
    return {
        "required": {
            "model": ("MODEL",),
            "clip": ("CLIP",),
            "lora_name": (list(folders.loras),),
            "strength_model": strength,
            "strength_clip": strength,
        }
    }


NODES: dict[str, NodeDef] = {
    n.name: n
    for n in [
        NodeDef(
            "LoraLoader",
            _lora_inputs,
            ("MODEL", "CLIP"),
            lora_loader,
            "loaders",
            display_name="Load LoRA",
        ),
        NodeDef(
            "VAEEncodeForInpaint",
            {
                "required": {
                    "pixels": ("IMAGE",),
                    "vae": ("VAE",),
                    "mask": ("MASK",),
                    "grow_mask_by": ("INT", {"default": 6, "min": 0, "max": 64, "step": 1}),
                }
            },
            ("LATENT",),
            vae_encode_for_inpaint,
            "latent/inpaint",
            display_name="VAE Encode (for Inpainting)",
        ),
        NodeDef(
            "CheckpointLoaderSimple",
            _checkpoint_inputs,
            ("MODEL", "CLIP", "VAE"),
            checkpoint_loader,
            "loaders",
            display_name="Load Checkpoint",
            description="Loads a diffusion model checkpoint (the emulator only pretends).",
        ),
        NodeDef(
            "CLIPTextEncode",
            {"required": {"text": ("STRING", {"multiline": True, "dynamicPrompts": True}), "clip": ("CLIP",)}},
            ("CONDITIONING",),
            clip_text_encode,
            "conditioning",
            display_name="CLIP Text Encode (Prompt)",
        ),
        NodeDef(
            "EmptyLatentImage",
            {
                "required": {
                    "width": _INT_RES,
                    "height": _INT_RES,
                    "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
                }
            },
            ("LATENT",),
            empty_latent,
            "latent",
            display_name="Empty Latent Image",
        ),
        NodeDef(
            "KSampler",
            {
                "required": {
                    "model": ("MODEL",),
                    "seed": _SEED,
                    "steps": ("INT", {"default": 20, "min": 1, "max": 10000}),
                    "cfg": ("FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1, "round": 0.01}),
                    "sampler_name": (SAMPLERS,),
                    "scheduler": (SCHEDULERS,),
                    "positive": ("CONDITIONING",),
                    "negative": ("CONDITIONING",),
                    "latent_image": ("LATENT",),
                    "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
                }
            },
            ("LATENT",),
            ksampler,
            "sampling",
            display_name="KSampler",
            description="Emulated: reports a progress step and a JPEG preview every step_delay seconds.",
        ),
        NodeDef(
            "VAEDecode",
            {"required": {"samples": ("LATENT",), "vae": ("VAE",)}},
            ("IMAGE",),
            vae_decode,
            "latent",
            display_name="VAE Decode",
        ),
        NodeDef(
            "VAEEncode",
            {"required": {"pixels": ("IMAGE",), "vae": ("VAE",)}},
            ("LATENT",),
            vae_encode,
            "latent",
            display_name="VAE Encode",
        ),
        NodeDef(
            "KSamplerEmulated",
            {
                "required": {
                    "prompt": ("STRING", {"multiline": True, "default": ""}),
                    "seed": _SEED,
                    "steps": ("INT", {"default": 8, "min": 1, "max": 10000}),
                    "width": _INT_RES,
                    "height": _INT_RES,
                    "batch_size": ("INT", {"default": 1, "min": 1, "max": 64}),
                },
                "optional": {
                    "image": ("IMAGE",),
                    "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
                },
            },
            ("IMAGE",),
            ksampler_emulated,
            "sampling",
            display_name="KSampler (emulated, prompt to image)",
            description="A one-node text-to-image stand-in: progress with previews, then a picture from the prompt.",
            python_module="custom_nodes.movie_director_emulator",
        ),
        NodeDef(
            "EmptyImage",
            {
                "required": {
                    "width": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
                    "height": ("INT", {"default": 512, "min": 1, "max": MAX_RESOLUTION, "step": 1}),
                    "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
                    "color": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFF, "step": 1, "display": "color"}),
                }
            },
            ("IMAGE",),
            empty_image,
            "image",
        ),
        NodeDef(
            "ImageInvert",
            {"required": {"image": ("IMAGE",)}},
            ("IMAGE",),
            image_invert,
            "image",
            display_name="Invert Image",
        ),
        NodeDef(
            "ImageScale",
            {
                "required": {
                    "image": ("IMAGE",),
                    "upscale_method": (UPSCALE_METHODS,),
                    "width": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
                    "height": ("INT", {"default": 512, "min": 0, "max": MAX_RESOLUTION, "step": 1}),
                    "crop": (CROP_METHODS,),
                }
            },
            ("IMAGE",),
            image_scale,
            "image/upscaling",
            display_name="Upscale Image",
        ),
        NodeDef(
            "ImageBatch",
            {"required": {"image1": ("IMAGE",), "image2": ("IMAGE",)}},
            ("IMAGE",),
            image_batch,
            "image",
            display_name="Batch Images",
        ),
        NodeDef(
            "LoadImage",
            _load_image_inputs,
            ("IMAGE", "MASK"),
            load_image,
            "image",
            display_name="Load Image",
            validate=load_image_validate,
            validate_inputs=("image",),
            is_changed=load_image_changed,
        ),
        NodeDef(
            "SaveImage",
            {
                "required": {
                    "images": ("IMAGE", {"tooltip": "The images to save."}),
                    "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                },
                "hidden": _HIDDEN_SAVE,  # type: ignore[dict-item]
            },
            (),
            save_image,
            "image",
            display_name="Save Image",
            description="Saves the input images to your ComfyUI output directory.",
            output_node=True,
        ),
        NodeDef(
            "PreviewImage",
            {"required": {"images": ("IMAGE",)}, "hidden": _HIDDEN_SAVE},  # type: ignore[dict-item]
            (),
            preview_image,
            "image",
            display_name="Preview Image",
            description="Saves the input images to your ComfyUI temp directory.",
            output_node=True,
        ),
        NodeDef(
            "SaveAnimatedWEBP",
            {
                "required": {
                    "images": ("IMAGE",),
                    "filename_prefix": ("STRING", {"default": "ComfyUI"}),
                    "fps": ("FLOAT", {"default": 6.0, "min": 0.01, "max": 1000.0, "step": 0.01}),
                    "lossless": ("BOOLEAN", {"default": True}),
                    "quality": ("INT", {"default": 80, "min": 0, "max": 100}),
                    "method": (list(WEBP_METHODS),),
                },
                "hidden": _HIDDEN_SAVE,  # type: ignore[dict-item]
            },
            (),
            save_animated_webp,
            "image/animation",
            output_node=True,
            python_module="comfy_extras.nodes_images",
        ),
        NodeDef(
            "SlowSteps",
            {
                "required": {
                    "image": ("IMAGE",),
                    "steps": ("INT", {"default": 5, "min": 1, "max": 100}),
                    "delay": ("FLOAT", {"default": 0.2, "min": 0.0, "max": 10.0, "step": 0.01}),
                }
            },
            ("IMAGE",),
            slow_steps,
            "testing",
            description="Passes its image through, reporting progress with a JPEG preview every step.",
            python_module="custom_nodes.slow_steps",
        ),
    ]
}
