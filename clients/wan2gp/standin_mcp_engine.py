"""The generation engine behind the Wan2GP MCP stand-in: jobs with Wan2GP's snapshot shape and events, the
one-generation-at-a-time rule, a gallery with one-use transfer tokens, and real MJPEG AVI output.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/wan2gp.md``. Everything here runs on the
stand-in server's event loop; :meth:`FakeWanGP.wait_job` lets another thread (a test) wait for a job to end.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import random
import re
import secrets
import threading
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..media import write_avi
from . import standin_mcp_models as models

MAX_STORED_EVENTS = 500
BUSY = "WanGP session already has a generation in progress"
KNOWN = set(models.BY_TYPE)
_MEDIA = {".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image", ".mp4": "video", ".avi": "video",
          ".wav": "audio", ".mp3": "audio"}  # fmt: skip


@dataclass
class StandinOptions:
    step_delay: float = 0.02
    flavour: str = "gallery"  # "gallery" | "media_id" | "session"
    preview_images: bool = True  # previews carry a small base64 JPEG (real Wan2GP only says has_image_preview)
    die_at_step: int | None = None  # only honoured when the stand-in runs as its own process
    redirect: bool = True  # serve at /mcp/ so that /mcp answers 307, as Wan2GP does
    token_ttl: float = 600.0
    max_upload_bytes: int = 64 * 1024 * 1024
    output_dir: str | None = None


class ToolFailure(Exception):
    """Raised inside a tool: FastMCP turns it into ``isError`` with "Error executing tool NAME: message"."""


class Job:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.created_at = self.updated_at = time.time()
        self.events: list[dict[str, Any]] = []
        self.result: dict[str, Any] | None = None
        self.done = False
        self.cancel_requested = False
        self.task: asyncio.Task[None] | None = None

    def add(self, kind: str, data: Any = None) -> None:
        self.updated_at = time.time()
        self.events.append({"kind": kind, "timestamp": self.updated_at, "data": data})
        del self.events[:-MAX_STORED_EVENTS]

    def snapshot(self, event_limit: int | None = 20) -> dict[str, Any]:
        limit = max(0, min(int(20 if event_limit is None else event_limit), MAX_STORED_EVENTS))
        return {
            "job_id": self.job_id,
            "done": self.done,
            "cancel_requested": self.cancel_requested,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "events": [dict(e) for e in self.events[-limit:]] if limit else [],
            "result": dict(self.result) if self.result is not None else None,
        }


class FakeWanGP:
    """The stand-in's state. Counters (``calls``, ``busy_refusals``) let tests see what the client did."""

    def __init__(self, options: StandinOptions, folder: Path, *, allow_exit: bool = False) -> None:
        self.options = options
        self.folder = folder
        self.allow_exit = allow_exit
        self.jobs: dict[str, Job] = {}
        self.active: Job | None = None
        self.gallery: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, tuple[str, float]] = {}
        self.downloads: dict[str, tuple[str, float]] = {}
        self.calls: Counter[str] = Counter()
        self.busy_refusals = 0
        self.sources: list[dict[str, Any]] = []  # every generate's settings, as received
        self.finished: list[tuple[str, float]] = []  # (job id, time it ended)
        self.cond = threading.Condition()

    @property
    def id_key(self) -> str:
        return "media_id" if self.options.flavour == "media_id" else "gallery_id"

    # --- tools --------------------------------------------------------------------------------------------------
    def list_models(self, query: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
        self.calls["list_models"] += 1
        records = [models.compact(t) for t in models.BY_TYPE]
        found = [m for m in records if not query or query.lower() in (m["model_type"] + m["name"]).lower()]
        limit = max(1, min(int(limit), 10))
        return found[max(0, int(offset)) : max(0, int(offset)) + limit]

    def default_settings(self, model_type: str) -> dict[str, Any]:
        self.calls["get_default_settings"] += 1
        if model_type not in KNOWN:
            raise ToolFailure(f"Unknown model_type: {model_type}")
        return models.default_settings(model_type)

    def model_schema(self, model_type: str) -> dict[str, Any] | None:
        self.calls["get_model_schema"] += 1
        return models.schema(model_type)

    def list_loras(self, model_type: str) -> dict[str, Any]:
        if model_type not in KNOWN:
            raise ToolFailure(f"Unknown model_type: {model_type}")
        return models.loras(model_type)

    def availability(self, model_type: str) -> dict[str, Any]:
        if model_type not in KNOWN:
            raise ToolFailure(f"Unknown model type: {model_type}")
        return {"model_type": model_type, "status": "available", "missing_files": []}

    def generate(self, source: Any, wait: bool, event_limit: int) -> dict[str, Any]:
        self.calls["generate"] += 1
        if not isinstance(source, (dict, list)):
            raise ToolFailure("source must be a settings dict, task dict, manifest dict, or task list")
        if self.active is not None and not self.active.done:
            self.busy_refusals += 1
            raise ToolFailure(BUSY)
        if wait:
            raise ToolFailure("the stand-in does not block the server: call with wait=False and poll wangp_get_job")
        settings = source[0] if isinstance(source, list) and source else source
        self.sources.append(dict(settings) if isinstance(settings, dict) else {})
        job = Job(uuid.uuid4().hex)
        self.jobs[job.job_id] = job
        self.active = job
        job.add("started", {"total_tasks": 1})
        job.task = asyncio.get_running_loop().create_task(self._run(job, dict(settings) if isinstance(settings, dict)
                                                                    else {}))  # fmt: skip
        return job.snapshot(event_limit)

    def job(self, job_id: str) -> Job:
        job = self.jobs.get(str(job_id or "").strip())
        if job is None:
            raise KeyError(f"Unknown WanGP job_id: {job_id}")
        return job

    def get_job(self, job_id: str, event_limit: int) -> dict[str, Any]:
        self.calls["get_job"] += 1
        return self.job(job_id).snapshot(event_limit)

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        self.calls["cancel_job"] += 1
        job = self.job(job_id)
        if not job.done:
            job.cancel_requested = True
        return job.snapshot(20)

    def create_upload(self, filename: str) -> dict[str, Any]:
        self.calls["create_upload"] += 1
        ext = Path(str(filename)).suffix.lower()
        if ext not in _MEDIA:
            raise ToolFailure(f"Unsupported media type for upload: {filename}")
        token = secrets.token_urlsafe(16)
        self.uploads[token] = (str(filename), time.monotonic() + self.options.token_ttl)
        return {
            "upload_url": f"/wangp_api/gallery/upload/{token}",
            "method": "PUT",
            "max_bytes": self.options.max_upload_bytes,
            "expires_in_seconds": int(self.options.token_ttl),
        }

    def create_download(self, item_id: str) -> dict[str, Any]:
        self.calls["create_download"] += 1
        item = self.gallery.get(str(item_id))
        if item is None:
            raise ToolFailure(f"Unknown gallery item: {item_id}")
        token = secrets.token_urlsafe(16)
        self.downloads[token] = (str(item_id), time.monotonic() + self.options.token_ttl)
        path = Path(item["path"])
        return {
            "download_url": f"/wangp_api/gallery/download/{token}",
            "filename": path.name,
            "media_type": item["media_type"],
            "size": path.stat().st_size,
            "expires_in_seconds": int(self.options.token_ttl),
        }

    # --- transfers (HTTP routes) ----------------------------------------------------------------------------------
    def take_upload(self, token: str) -> str | None:
        """The filename a valid upload token was issued for (the token is used up)."""
        entry = self.uploads.pop(token, None)
        return entry[0] if entry and entry[1] > time.monotonic() else None

    def store_upload(self, filename: str, data: bytes) -> dict[str, Any]:
        ext = Path(filename).suffix.lower()
        item_id = uuid.uuid4().hex[:12]
        path = self.folder / "gallery" / f"upload_{item_id}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.gallery[item_id] = {self.id_key: item_id, "path": str(path), "media_type": _MEDIA[ext]}
        return {"status": "uploaded", self.id_key: item_id, "filename": filename, "size": len(data),
                "media_type": _MEDIA[ext]}  # fmt: skip

    def take_download(self, token: str) -> Path | None:
        entry = self.downloads.pop(token, None)
        if not entry or entry[1] <= time.monotonic() or entry[0] not in self.gallery:
            return None
        return Path(self.gallery[entry[0]]["path"])

    # --- a test's view (any thread) -------------------------------------------------------------------------------
    def wait_job(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """The job's final snapshot once it has ended, or None if it has not within ``timeout``."""
        with self.cond:
            self.cond.wait_for(lambda: job_id in self.jobs and self.jobs[job_id].done, timeout)
            job = self.jobs.get(job_id)
            return job.snapshot(MAX_STORED_EVENTS) if job is not None and job.done else None

    # --- the generation ---------------------------------------------------------------------------------------------
    async def _run(self, job: Job, source: dict[str, Any]) -> None:
        try:
            model = str(source.get("model_type") or "")
            settings = {**(models.default_settings(model) if model in KNOWN else models.COMMON), **source}
            problem = self._validate(settings)
            if problem:
                job.add("error", {"message": problem, "stage": "validation"})
                return self._end(job, errors=[{"message": problem, "stage": "validation"}])
            await self._generate(job, settings)
        except asyncio.CancelledError:
            self._end(job, errors=[{"message": "WanGP was shut down", "stage": "runtime"}])
            raise
        except Exception as exc:  # a stand-in bug shows as a runtime failure, as Wan2GP reports its own crashes
            self._end(job, errors=[{"message": f"{type(exc).__name__}: {exc}", "stage": "runtime"}])

    def _validate(self, s: dict[str, Any]) -> str:
        if s.get("model_type") not in KNOWN:
            return f"Unknown model type '{s.get('model_type')}'"
        if not str(s.get("prompt") or "").strip():
            return "Prompt is required"
        if not re.fullmatch(r"\d{2,5}x\d{2,5}", str(s.get("resolution"))):
            return f"Invalid resolution '{s.get('resolution')}'"
        if _frames(s.get("video_length"), models.fps(s["model_type"])) is None:
            return f"Invalid video_length '{s.get('video_length')}'"
        loras = models.loras(s["model_type"])["loras"]
        for lora in s.get("activated_loras") or []:
            if lora not in loras:
                return f"Lora '{lora}' not found"
        for key in ("image_start", "image_end"):
            if s.get(key) and str(s[key]) not in self.gallery:
                return f"{key}: unknown gallery item '{s[key]}'"
        return ""

    async def _generate(self, job: Job, s: dict[str, Any]) -> None:
        width, height = (int(v) for v in str(s["resolution"]).split("x"))
        fps = int(s["force_fps"]) if str(s.get("force_fps") or "").isdigit() else models.fps(s["model_type"])
        frames = _frames(s["video_length"], fps) or 81
        steps = max(1, int(s.get("num_inference_steps") or 30))
        seed = int(s.get("seed", -1))
        seed = random.randrange(2**31) if seed < 0 else seed
        delay = self.options.step_delay
        job.add("status", f"Loading model {s['model_type']}")
        job.add("progress", _progress("loading_model", "Loading model", 0, None, None))
        job.add("stream", {"stream": "stdout", "text": f"Loading model {s['model_type']} (stand-in)"})
        await asyncio.sleep(delay)
        job.add("progress", _progress("encoding_text", "Encoding prompt", 100, None, None))
        for step in range(1, steps + 1):
            if job.cancel_requested:
                return self._cancelled(job)
            await asyncio.sleep(delay)
            if self.allow_exit and self.options.die_at_step == step:
                os._exit(3)
            percent = step * 100 // steps
            job.add("progress", _progress("inference", f"Denoising {step}/{steps}", percent, step, steps, "Denoising"))
            bar = "#" * (percent // 10)
            job.add("stream", {"stream": "stderr", "text": f"{percent:3d}%|{bar:<10}| {step}/{steps} [stand-in]"})
            if self.options.preview_images and (step % 5 == 0 or step == steps):
                preview = _progress("inference", f"Denoising {step}/{steps}", percent, step, steps)
                preview["has_image_preview"] = True
                preview["image"] = _thumbnail(s["prompt"], step, steps)
                job.add("preview", preview)
        if job.cancel_requested:
            return self._cancelled(job)
        job.add("progress", _progress("decoding", "VAE decoding", 0, None, None))
        start = self._image(s.get("image_start"))
        end = self._image(s.get("image_end"))
        path = self.folder / f"{time.strftime('%Y-%m-%d-%Hh%Mm%Ss')}_seed{seed}_{_slug(s['prompt'])}.avi"
        images = [_frame(s["prompt"], i, frames, (width, height), start, end) for i in range(frames)]
        await asyncio.to_thread(write_avi, path, images, fps=fps, size=(width, height))
        item_id = uuid.uuid4().hex[:12]
        self.gallery[item_id] = {self.id_key: item_id, "path": str(path), "media_type": "video"}
        job.add("output", {"path": str(path)})
        self._end(job, files=[str(path)], items=[dict(self.gallery[item_id])], fps=fps)

    def _image(self, item_id: Any) -> Any:
        if not item_id:
            return None
        from PIL import Image

        with Image.open(self.gallery[str(item_id)]["path"]) as img:
            return img.convert("RGB")

    def _cancelled(self, job: Job) -> None:
        job.add("progress", _progress("cancelled", "Cancelled", 0, None, None))
        self._end(job, errors=[{"message": "Generation was cancelled", "stage": "cancelled"}], cancelled=True)

    def _end(
        self,
        job: Job,
        *,
        files: list[str] | None = None,
        items: list[dict[str, Any]] | None = None,
        errors: list[dict[str, Any]] | None = None,
        cancelled: bool = False,
        fps: int = 0,
    ) -> None:
        errors = [{"task_index": 0, "task_id": None, "cancelled": cancelled, **e} for e in errors or []]
        result = {
            "success": not errors,
            "cancelled": cancelled,
            "generated_files": list(files or []),
            "errors": errors,
            "total_tasks": 1,
            "successful_tasks": 0 if errors else 1,
            "failed_tasks": 1 if errors else 0,
            "gallery_items": list(items or []),
            "artifacts": [{"path": f, "media_type": "video", "fps": fps} for f in files or []],
        }
        job.add("completed", result)
        with self.cond:
            job.result = result
            job.done = True
            self.finished.append((job.job_id, time.time()))
            if self.active is job:
                self.active = None
            self.cond.notify_all()


def _frames(value: Any, fps: int) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1025:
        return value
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(value).strip())
    return max(1, round(float(match[1]) * fps)) if match else None


def _progress(
    phase: str, status: str, percent: int, step: int | None, total: int | None, raw: str | None = None
) -> dict[str, Any]:
    return {"phase": phase, "status": status, "progress": percent, "current_step": step, "total_steps": total,
            "raw_phase": raw, "unit": "steps" if step is not None else None}  # fmt: skip


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40] or "video"


def _color(prompt: str, shift: int = 0) -> tuple[int, int, int]:
    h = zlib.crc32(prompt.encode("utf-8")) + shift
    return 40 + h % 160, 40 + (h >> 8) % 160, 40 + (h >> 16) % 160


def _frame(prompt: str, i: int, n: int, size: tuple[int, int], start: Any, end: Any) -> Any:
    """Frame ``i`` of ``n``: a prompt-coloured field with a ball crossing it; the start image opens the clip and
    fades into it over a few frames; the end image closes it."""
    from PIL import Image, ImageDraw

    if start is not None and i == 0:
        return start.resize(size)
    if end is not None and i == n - 1:
        return end.resize(size)
    width, height = size
    img = Image.new("RGB", size, _color(prompt))
    draw = ImageDraw.Draw(img)
    r = max(4, min(width, height) // 8)
    x = r + (width - 2 * r) * i // max(1, n - 1)
    draw.ellipse((x - r, height // 2 - r, x + r, height // 2 + r), fill=_color(prompt, 0x5A5A5A))
    draw.text((4, 4), f"{i + 1}/{n}", fill=(255, 255, 255))
    if start is not None and i < 4:
        img = Image.blend(start.resize(size), img, i / 4)
    return img


def _thumbnail(prompt: str, step: int, steps: int) -> str:

    img = _frame(prompt, step, steps + 1, (64, 36), None, None)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=60)
    return base64.b64encode(buf.getvalue()).decode("ascii")
