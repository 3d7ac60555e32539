"""The console and headless API: everything the sidebar can do, as plain function calls.

    from bl_ext.user_default.movie_director import api
    job = api.submit("local", "echo", {"text": "hello", "steps": 3})
    print(job.wait(10).outputs.text)

Thin on purpose: every function delegates to the same public function the sidebar's operator uses (results land
through the same placer registry), and touches bpy only through those and :mod:`addon_runtime`. Calls return at once
with handles; ``JobHandle.wait()`` pumps while it waits, so it works in ``blender --background`` scripts, where
timers never tick.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from . import addon_runtime
from .runtime.backend import HealthInfo
from .runtime.bridge import BatchHandle, JobHandle, RuntimeEvent
from .runtime.core import JobSpec, Runtime
from .runtime.errors import RequestTimeoutError
from .runtime.jobs import Job
from .runtime.placement import Placement

T = TypeVar("T")

__all__ = [
    "BatchHandle",
    "JobHandle",
    "JobSpec",
    "Placement",
    "cancel_all",
    "clear_finished",
    "convert_voice",
    "direct",
    "export_cut",
    "generate_image",
    "generate_variations",
    "generate_video",
    "image_models",
    "import_cut",
    "jobs",
    "last_job",
    "move_job",
    "output_folder",
    "pause",
    "place_here",
    "render_cut",
    "resume",
    "retry",
    "runtime",
    "set_cast",
    "set_concurrency",
    "shot_list",
    "sound_effect",
    "speak_line",
    "speech_voices",
    "storyboard_sheet",
    "submit",
    "submit_batch",
    "subscribe",
    "subtitles",
    "templates",
    "test_connection",
    "train_voice",
    "use_settings",
    "video_models",
    "video_schema",
    "voices",
    "wait_all",
    "wait_future",
    "write",
]


def runtime() -> Runtime:
    """The session's runtime (started on first use, configured from the add-on preferences)."""
    return addon_runtime.runtime()


def submit(backend: str, kind: str, request: Mapping[str, Any] | None = None, **kwargs: Any) -> JobHandle:
    """Queue any job; see each backend's helpers for friendlier signatures."""
    return runtime().submit(backend, kind, request, **kwargs)


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
    """Generate an image with ComfyUI. With ``place`` (default) it lands on the Sequencer at ``frame`` (the playhead
    by default) on the first free channel when it is done; ``params`` are the template's (width, steps, seed,
    checkpoint, sampler, scheduler, ``loras=[{"name": ..., "strength": 0.8}]``...; see ``image_models()`` for the
    server's names). ``mask``: for ``template="inpaint"``, a PNG whose alpha becomes ``input_image``'s (transparent =
    repaint); without it the input's own transparency is the area repainted."""
    from .operators import generate_image as gen

    return gen.generate_image(
        prompt, template=template, preset=preset, input_image=input_image, mask=mask, place=place, frame=frame,
        scene=scene, **params,
    )  # fmt: skip


def write(prompt: str, *, text_name: str = "Script", model: str = "", **kwargs: Any) -> JobHandle:
    """Stream a script from the LLM into the Text block ``text_name``, token by token; ``cancel()`` stops it."""
    from .operators import llm_text

    return llm_text.write(prompt, text_name=text_name, model=model, **kwargs)


def shot_list(scene_text: str, *, model: str = "", scene: Any = None) -> JobHandle:
    """Turn a scene description into a validated shot list, stored on ``scene`` (the current one) when done."""
    from .operators import llm_text

    return llm_text.shot_list(scene_text, model=model, scene=scene)


def convert_voice(strip_name: str, voice: str, *, pitch: int = 0, scene: Any = None, **params: Any) -> JobHandle:
    """Convert a sound strip to an RVC voice; it lands on the channel below it, aligned with it."""
    from .operators import convert_voice as cv

    return cv.convert_voice(strip_name, voice, pitch=pitch, scene=scene, **params)


def voices(refresh: bool = False) -> JobHandle:
    """The RVC server's voices (cached unless ``refresh``); also fills the sidebar's list."""
    from .operators import convert_voice as cv

    return cv.voices(refresh)


def speak_line(
    text: str,
    *,
    voice: str = "",
    character: str = "",
    rvc_voice: str = "",
    pitch: int = 0,
    speed: float = 1.0,
    frame: int | None = None,
    scene: Any = None,
) -> Any:
    """Speak a line with the speech server (the TTS ``voice``, or the cast ``character``'s voices), convert it to the
    RVC ``rvc_voice`` when one is given, and place it as a sound strip at ``frame`` (the playhead). Returns the line
    on its way: ``.wait(timeout)``, ``.strip`` (the strip's name once placed), ``.error``, ``.cancel()``."""
    from .operators import speak_line as sl

    return sl.speak_line(
        text, voice=voice, character=character, rvc_voice=rvc_voice, pitch=pitch, speed=speed, frame=frame,
        scene=scene,
    )  # fmt: skip


def speech_voices(refresh: bool = False) -> JobHandle:
    """The speech server's voices and models (``.result(10).data``: voices, listed, models); fills the sidebar."""
    from .operators import speak_line as sl

    return sl.speech_voices(refresh)


def set_cast(character: str, *, tts_voice: str = "", rvc_voice: str = "", pitch: int = 0, scene: Any = None) -> Any:
    """Add a character to the scene's cast (saved with the .blend) or change its voices."""
    import bpy

    from .operators import cast

    return cast.set_member(scene or bpy.context.scene, character, tts_voice=tts_voice, rvc_voice=rvc_voice, pitch=pitch)


def train_voice(name: str, dataset: str = "", *, dataset_path: str = "", **settings: Any) -> JobHandle:
    """Train a new RVC voice from a folder of recordings on an Applio server, in stages (upload, preprocess, extract,
    train, index); ``settings``: epochs, sample_rate, batch_size, save_every_epoch, f0method. Cancel stops it."""
    from .operators import train_voice as tv

    return tv.train_voice(name, dataset, dataset_path=dataset_path, **settings)


def direct(scene_text: str, *, voice: str = "", scene: Any = None, **options: Any) -> Any:
    """Direct a scene: shot list (LLM), then per shot an image (ComfyUI), a clip (Wan2GP), a sound effect (AudioLDM)
    and voice lines (RVC) laid out on the Sequencer. Returns the pipeline's handle (``wait``, ``status``, ``cancel``,
    ``retry(stage)``, ``regenerate(stage)``)."""
    from .operators import direct as d

    return d.direct(scene_text, voice=voice, scene=scene, **options)


def export_cut(path: str, *, scene: Any = None) -> Any:
    """Write the scene's cut for an editor: ``.otio`` (OpenTimelineIO, media relative to its folder), ``.edl``
    (CMX 3600, picture), ``.xml`` (Final Cut Pro 7 XML) or ``.srt`` (subtitles). Returns the path written; raises
    ``HandoffError`` naming what is wrong (empty scene, unsaved file with relative paths, moved media)."""
    from .operators import handoff

    return handoff.export_cut(path, scene=scene)


def import_cut(path: str, *, name: str = "") -> Any:
    """Rebuild an ``.otio`` cut on the Sequencer of a new scene; returns the scene."""
    from .operators import handoff

    return handoff.import_cut(path, name=name)


def subtitles(scene: Any = None) -> int:
    """Lay out the directed dialogue as subtitle text strips (timed to the voice lines); returns how many."""
    from .operators import subtitles as subs

    return subs.sync(scene)


def storyboard_sheet(path: str, *, scene: Any = None) -> Any:
    """A contact sheet of the scene's shots as a PNG: still, number, duration, description, dialogue."""
    from .operators import storyboard_sheet as sheet

    return sheet.storyboard_sheet(path, scene=scene)


def render_cut(path: str, *, scene: Any = None, on_progress: Callable[[Any], Any] | None = None) -> Any:
    """Render the scene's cut to a movie (.mp4, .mov, .mkv), blocking; ``on_progress(render)`` is called after each
    frame (``render.progress``, ``render.done``/``render.total``) and may call ``render.cancel()``, which raises
    ``RenderCancelled`` and leaves no file behind."""
    from .operators import render_cut as rc

    return rc.render_cut(path, scene=scene, on_progress=on_progress)


def generate_video(
    prompt: str,
    *,
    seconds: float | None = None,
    frames: int | None = None,
    start_image: str | None = None,
    end_image: str | None = None,
    loras: list[tuple[str, float]] | None = None,
    frame: int | None = None,
    scene: Any = None,
    **settings: Any,
) -> JobHandle:
    """Generate a video with Wan2GP; it lands as a movie strip at the playhead (first free channel) when done.
    ``settings``: any the model declares, by Wan2GP's names (see ``video_schema``); ``loras``: (name, strength)."""
    from .operators import generate_video as gv

    return gv.generate_video(
        prompt, seconds=seconds, frames=frames, start_image=start_image, end_image=end_image, loras=loras,
        frame=frame, scene=scene, **settings,
    )  # fmt: skip


def video_models(refresh: bool = False) -> JobHandle:
    """Wan2GP's models (cached unless ``refresh``); also fills the sidebar's list."""
    from .operators import generate_video as gv

    return gv.video_models(refresh)


def video_schema(model: str = "", refresh: bool = False) -> JobHandle:
    """What a Wan2GP model declares: ``.result(10).data`` has fps, frame limits, start/end image, loras, settings
    (every name ``generate_video`` accepts for it) and their defaults; also fills the sidebar's LoRA list."""
    from .operators import generate_video as gv

    return gv.video_schema(model, refresh)


def sound_effect(
    prompt: str, *, seconds: float = 5.0, frame: int | None = None, scene: Any = None, **params: Any
) -> JobHandle:
    """A sound effect from AudioLDM; it lands as a sound strip at the playhead (first free channel) when done."""
    from .operators import sound_effect as sfx

    return sfx.sound_effect(prompt, seconds=seconds, frame=frame, scene=scene, **params)


def image_models(refresh: bool = False) -> JobHandle:
    """ComfyUI's models, read from its ``/object_info`` (cached unless ``refresh``); also fills the Image and Direct
    panels' lists. ``image_models().wait(10).outputs.data["models"]`` is ``{kind: [names]}`` for "checkpoint",
    "lora", "vae", "upscale_model", "controlnet", "sampler" and "scheduler" (the kinds the server has a loader for);
    ``data["choices"]`` holds your last choice per kind on that server (the default when a parameter is left empty)."""
    from .operators import image_models as im

    return im.image_models(refresh)


def templates() -> list[Any]:
    """The ComfyUI workflow templates (built-in and from the preferences' folder)."""
    from .operators import generate_image as gen

    return list(gen.template_catalog().list())


def submit_batch(specs: Iterable[JobSpec], *, parallel: bool = True, stop_on_error: bool = False) -> BatchHandle:
    return runtime().submit_batch(specs, parallel=parallel, stop_on_error=stop_on_error)


def jobs() -> list[JobHandle]:
    """Recent jobs, oldest first."""
    rt = addon_runtime.current()
    return rt.jobs() if rt else []


def last_job() -> JobHandle | None:
    """The job submitted last, however it was started (an operator, a console call, a script)."""
    rt = addon_runtime.current()
    return rt.last_handle if rt is not None else None


def wait_all(timeout: float | None = None) -> list[Job]:
    """Wait for every known job to end; returns their final snapshots."""
    end = None if timeout is None else time.monotonic() + timeout
    return [h.wait(None if end is None else max(0.0, end - time.monotonic())) for h in jobs()]


def wait_future(future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """Block on a runtime future while pumping, so callbacks keep running on this (main) thread."""
    rt = runtime()
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        rt.pump()
        try:
            return future.result(timeout=0.02)
        except concurrent.futures.TimeoutError:
            if end is not None and time.monotonic() > end:
                raise RequestTimeoutError(f"no answer within {timeout} s") from None


def test_connection(backend: str, timeout: float = 10.0) -> HealthInfo:
    """Check a backend's server now and return what it said (also updates the sidebar)."""
    return wait_future(runtime().check_health(backend, timeout), timeout + 1)


def subscribe(callback: Callable[[RuntimeEvent], Any], kinds: Iterable[str] | None = None) -> Callable[[], None]:
    """Runtime events (``backend_state``, ``job_queued``, ``job_started``, ``job_finished``) on the main thread."""
    return runtime().subscribe(callback, kinds)


def pause(backend: str | None = None) -> None:
    runtime().pause(backend)


def resume(backend: str | None = None) -> None:
    runtime().resume(backend)


def move_job(job: JobHandle | str, direction: str) -> int:
    """Move a queued job one step ``"UP"`` (starts sooner) or ``"DOWN"`` its server's queue; its new priority."""
    from .operators import jobs as ops

    return ops.move_job(_job_id(job), direction)


def retry(job: JobHandle | str) -> JobHandle:
    """Run a job's request again as a new job (a failed or cancelled one, or another take); same placement."""
    from .operators import jobs as ops

    return ops.retry_job(_job_id(job))


def use_settings(job: JobHandle | str, scene: Any = None) -> tuple[list[str], list[str]]:
    """Copy a job's settings back into its sidebar panel: (settings copied, settings the panel could not hold)."""
    from .operators import jobs as ops

    return ops.use_settings(_job_id(job), scene)


def cancel_all() -> int:
    """Cancel every running and queued job (servers are asked to stop too); how many were asked."""
    from .operators import jobs as ops

    return ops.cancel_all()


def clear_finished() -> int:
    """Forget ended jobs in the job list; how many went."""
    from .operators import jobs as ops

    return ops.clear_finished()


def output_folder(job: JobHandle | str | None = None) -> Path:
    """Where generated files go: one job's folder, or the output root."""
    from .operators import jobs as ops

    return Path(ops.job_folder(_job_id(job) if job is not None else ""))


def place_here(job: JobHandle | str, scene: Any = None) -> Any:
    """Place a result that was asked for from another .blend into ``scene`` of the open file."""
    import bpy

    from .operators import placement

    job_id = _job_id(job)
    waiting = placement.PENDING.get(job_id)
    if waiting is None:
        raise ValueError(f"The result of job {job_id!r} is not waiting for a file")
    return placement.place_into(waiting, scene or bpy.context.scene)


def generate_variations(prompt: str, count: int, *, layout: str = "SIDE_BY_SIDE", **kwargs: Any) -> BatchHandle:
    """Queue ``count`` images that differ only in their seed as one batch, laid out ``SIDE_BY_SIDE`` (stacked at the
    playhead) or in a ``SEQUENCE``; ``kwargs`` as :func:`generate_image` (seed, template, width, steps...)."""
    from .operators import generate_image as gen

    template = kwargs.pop("template", "txt2img")
    seed = int(kwargs.pop("seed", -1))
    scene, frame = kwargs.pop("scene", None), kwargs.pop("frame", None)
    return gen.submit_variations(
        count, prompt=prompt, seed=seed, layout=layout, scene=scene, frame=frame, template=template, params=kwargs
    )


def _job_id(job: JobHandle | str) -> str:
    return job if isinstance(job, str) else job.id


def set_concurrency(backend: str, limit: int) -> None:
    runtime().set_concurrency(backend, limit)
