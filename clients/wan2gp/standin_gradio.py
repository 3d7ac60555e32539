"""A stand-in for a Wan2GP-compatible Gradio app: a real Gradio app whose named ``/generate`` endpoint takes Wan2GP's
settings as named parameters (plus optional start/end images) and returns a real video, without any model.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/wan2gp.md`` (Wan2GP's own UI has no API; some
forks and wrappers expose one endpoint like this). Run it with::

    python -m movie_director.clients.wan2gp.standin_gradio --port 7870 [--step-delay 0.02]

It prints its URL once it serves. Each sampler step is a ``gr.Progress`` tick ("inference 12/30"); the video is an
MJPEG AVI with exactly the requested frames (``video_length``, or ``"5s"`` at the frame rate) at 16 fps (or
``force_fps``); an unknown ``model_type`` is a ``gr.Error``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import socket
import time
from typing import Any

from ..media import write_avi
from ..scratch import exit_on_sigterm, scratch_dir
from .schema import DEFAULT_FPS

MODELS = ("t2v_1.3B", "t2v", "i2v", "i2v_2_2", "ltx2_22B_distilled")
MAX_FRAMES = 1025
_RESOLUTION = re.compile(r"^(\d{2,5})x(\d{2,5})$")


def frame_count(video_length: Any, fps: int) -> int:
    """Frames for ``81`` (frames) or ``"5s"`` (seconds at ``fps``), as Wan2GP reads ``video_length``."""
    text = str(video_length).strip()
    if text.endswith("s"):
        return max(1, round(float(text[:-1]) * fps))
    return int(float(text))


def _colour(prompt: str, seed: int) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
    return digest[0], digest[1], digest[2]


def render(prompt: str, frames: int, size: tuple[int, int], seed: int, start: str | None, end: str | None) -> list[Any]:
    """Frames that fade from the start image (or a colour from the prompt) to the end image, with a moving bar."""
    from PIL import Image, ImageDraw

    first = Image.open(start).convert("RGB").resize(size) if start else Image.new("RGB", size, _colour(prompt, seed))
    last = Image.open(end).convert("RGB").resize(size) if end else first
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        frame = Image.blend(first, last, t) if end else first.copy()
        x = int((size[0] - 1) * t)
        ImageDraw.Draw(frame).rectangle([x, 0, min(size[0] - 1, x + 3), size[1] - 1], fill=(255, 255, 255))
        out.append(frame)
    return out


def build(*, step_delay: float = 0.0) -> Any:
    import gradio as gr

    def generate(  # type: ignore[no-untyped-def]
        prompt,
        model_type,
        negative_prompt,
        resolution,
        video_length,
        num_inference_steps,
        seed,
        guidance_scale,
        flow_shift,
        sample_solver,
        force_fps,
        activated_loras,
        loras_multipliers,
        image_start=None,
        image_end=None,
        progress=gr.Progress(),  # noqa: B008
    ):
        if model_type not in MODELS:
            raise gr.Error(f"Unknown model {model_type!r}. This server has: {', '.join(MODELS)}")
        if not str(prompt or "").strip():
            raise gr.Error("The prompt is empty")
        match = _RESOLUTION.match(str(resolution).strip())
        if not match:
            raise gr.Error(f"Resolution must look like 832x480, not {resolution!r}")
        size = (int(match[1]), int(match[2]))
        fps = int(force_fps) if str(force_fps or "").strip() else DEFAULT_FPS
        try:
            frames = frame_count(video_length, fps)
        except ValueError:
            raise gr.Error(f"video_length must be frames (81) or seconds (5s), not {video_length!r}") from None
        if not 1 <= frames <= MAX_FRAMES:
            raise gr.Error(f"video_length must be 1 to {MAX_FRAMES} frames, not {frames}")
        gr.Info(f"Loading model {model_type}")
        for lora in activated_loras or []:
            gr.Info(f"Lora {lora} activated")
        for _ in progress.tqdm(range(int(num_inference_steps)), desc="inference"):
            time.sleep(step_delay)
        progress(0.99, desc="decoding")
        folder = scratch_dir("wan2gp-gradio-standin-")
        path = folder / f"{model_type}_{int(seed) if seed is not None else 0}.avi"
        write_avi(path, render(str(prompt), frames, size, int(seed or 0), image_start, image_end), fps=fps, size=size)
        gr.Info(f"Saved {frames} frames at {fps} fps")
        return str(path)

    with gr.Blocks(title="Wan2GP-compatible stand-in") as demo:
        gr.Markdown("A Wan2GP-compatible stand-in: moving colours, no model.")
        inputs = [
            gr.Textbox(label="Prompt"),
            gr.Dropdown(list(MODELS), value=MODELS[0], label="Model", allow_custom_value=True),
            gr.Textbox(value="", label="Negative prompt"),
            gr.Textbox(value="832x480", label="Resolution"),
            gr.Textbox(value="81", label="Video length (frames, or seconds like 5s)"),
            gr.Slider(1, 200, value=30, step=1, label="Inference steps"),
            gr.Number(value=-1, label="Seed (-1 = random)"),
            gr.Number(value=5.0, label="Guidance scale"),
            gr.Number(value=5.0, label="Flow shift"),
            gr.Textbox(value="", label="Sampler"),
            gr.Textbox(value="", label="Force fps"),
            gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True, label="Loras"),
            gr.Textbox(value="", label="Lora multipliers"),
            gr.Image(value=None, type="filepath", label="Start image"),
            gr.Image(value=None, type="filepath", label="End image"),
        ]
        output = gr.Video(label="Video")
        gr.Button("Generate").click(generate, inputs, output, api_name="generate")
    return demo


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=7870, help="0 = any free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--step-delay", type=float, default=0.0, help="seconds per inference step")
    args = parser.parse_args(argv)
    try:  # serve the AVI as made: never re-encoded by a local ffmpeg
        import gradio.processing_utils as processing_utils

        processing_utils.ffmpeg_installed = lambda: False
    except (ImportError, AttributeError):
        pass
    exit_on_sigterm()  # stopped with terminate(): its answers' folder goes too
    port = args.port or free_port(args.host)
    demo = build(step_delay=args.step_delay)
    demo.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=port, prevent_thread_lock=True, quiet=True
    )
    print(f"http://{args.host}:{port}", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
