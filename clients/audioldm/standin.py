"""A stand-in for AudioLDM's demo app: a real Gradio app with the official ``text2audio`` endpoint that makes a
waveform video with an audio track of the requested length (a tone chosen from the text), without any model.

Plain Python: this module never imports bpy. Facts: ``shared/protocols/rvc-audioldm.md``. Run it with::

    python -m movie_director.clients.audioldm.standin --port 7860 [--no-api-name] [--step-delay 0.05]
        [--variant audioldm2]

It prints its URL once it serves. ``--no-api-name`` registers the handler the way many wrapped apps do (a lambda,
so Gradio names it ``/lambda``; a decoy ``/lambda_1`` sits beside it): only the parameter labels tell them apart.
``--variant audioldm2`` mirrors AudioLDM2's demo: no duration input, always 10 s.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import socket
import time
from pathlib import Path
from typing import Any

from ..media import SAMPLE_RATE, tone, write_avi
from ..scratch import exit_on_sigterm, scratch_dir

#: Labels of the official AudioLDM demo (haoheliu/audioldm-text-to-audio-generation).
TEXT_LABEL = (
    "Input your text here. Your text is important for the audio quality. "
    "Please ensure it is descriptive by using more adjectives."
)
SEED_LABEL = "Change this value (any integer number) will lead to a different generation result."
DURATION_LABEL = "Duration (seconds)"
GUIDANCE_LABEL = "Guidance scale (Large => better quality and relavancy to text; Small => better diversity)"
CANDIDATES_LABEL = (
    "Automatic quality control. This number control the number of candidates (e.g., generate three audios and "
    "choose the best to show you). A Larger value usually lead to better quality with heavier computation"
)
STEPS = 10
FPS = 8
SIZE = (256, 96)
AUDIOLDM2_SECONDS = 10.0


def frequency_for(text: str, seed: int) -> float:
    """A tone per prompt (and seed): different sounds come out different."""
    digest = hashlib.sha256(f"{text.strip().lower()}|{seed}".encode()).digest()
    return 180.0 + int.from_bytes(digest[:4], "big") % 700


def waveform_frames(seconds: float, freq: float) -> list[Any]:
    """The official app shows a waveform picture with a moving cursor; a few frames per second are enough."""
    from PIL import Image, ImageDraw

    width, height = SIZE
    base = Image.new("RGB", SIZE, (18, 18, 28))
    draw = ImageDraw.Draw(base)
    for x in range(0, width, 3):
        amp = abs(math.sin(2 * math.pi * freq * x / width / 40.0)) * (height / 2 - 6) + 2
        draw.line([(x, height / 2 - amp), (x, height / 2 + amp)], fill=(90, 180, 255))
    count = max(1, round(seconds * FPS))
    frames = []
    for i in range(count):
        frame = base.copy()
        cursor = int(width * i / count)
        ImageDraw.Draw(frame).line([(cursor, 0), (cursor, height)], fill=(255, 80, 80), width=2)
        frames.append(frame)
    return frames


def make_sound(text: str, seconds: float, seed: int, folder: Path) -> Path:
    """A waveform video (MJPEG AVI) whose audio track lasts exactly ``seconds``."""
    freq = frequency_for(text, seed)
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "sound"
    path = folder / f"{slug}.avi"
    write_avi(path, waveform_frames(seconds, freq), fps=FPS, size=SIZE, audio=tone(seconds, freq=freq))
    return path


def build(*, named: bool = True, step_delay: float = 0.0, variant: str = "audioldm") -> Any:
    import gradio as gr

    def generate(text: str, seconds: float, guidance: float, seed: float, candidates: float, progress: Any) -> str:
        if not str(text or "").strip():
            raise gr.Error("Please describe the sound you want: the text is empty.")
        if not 0 < float(seconds) <= 30:
            raise gr.Error(f"Duration must be between 2.5 and 10 seconds, not {seconds}.")
        for _ in progress.tqdm(range(STEPS * max(1, int(candidates or 1))), desc="DDIM Sampler"):
            time.sleep(step_delay)
        return str(make_sound(str(text), float(seconds), int(seed or 0), scratch_dir("audioldm-standin-")))

    def text2audio(text, duration, guidance_scale, random_seed, n_candidates, progress=gr.Progress()):  # type: ignore[no-untyped-def]  # noqa: B008
        return generate(text, duration, guidance_scale, random_seed, n_candidates, progress)

    def text2audio2(text, guidance_scale, random_seed, n_candidates, progress=gr.Progress()):  # type: ignore[no-untyped-def]  # noqa: B008
        return generate(text, AUDIOLDM2_SECONDS, guidance_scale, random_seed, n_candidates, progress)

    with gr.Blocks(title="AudioLDM stand-in") as demo:
        gr.Markdown("AudioLDM stand-in: a tone per prompt, no model. Not for real sound design.")
        textbox = gr.Textbox(value="A hammer is hitting a wooden surface", max_lines=1, label=TEXT_LABEL)
        seed = gr.Number(value=45 if variant == "audioldm2" else 42, label=SEED_LABEL)
        duration = gr.Slider(2.5, 10, value=5, step=2.5, label=DURATION_LABEL)
        guidance = gr.Slider(0, 6 if variant == "audioldm2" else 5, value=3.5 if variant == "audioldm2" else 2.5,
                             step=0.5, label=GUIDANCE_LABEL)  # fmt: skip
        candidates = gr.Slider(1, 3 if variant == "audioldm2" else 5, value=3, step=1, label=CANDIDATES_LABEL)
        output = gr.Video(label="Output")
        button = gr.Button("Submit")
        inputs = [textbox, guidance, seed, candidates] if variant == "audioldm2" else [
            textbox, duration, guidance, seed, candidates
        ]  # fmt: skip
        if named:
            button.click(text2audio2 if variant == "audioldm2" else text2audio, inputs, output, api_name="text2audio")
        elif variant == "audioldm2":
            button.click(lambda a, b, c, d, progress=gr.Progress(): text2audio2(a, b, c, d, progress), inputs, output)  # noqa: B008
        else:
            button.click(
                lambda a, b, c, d, e, progress=gr.Progress(): text2audio(a, b, c, d, e, progress),  # noqa: B008
                inputs,
                output,
            )
        # A decoy: another unnamed endpoint with a text box, which must not be mistaken for text2audio.
        share = gr.Textbox(label="Share your text")
        button.click(lambda text: text.upper(), share, share)
    return demo


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=7860, help="0 = any free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--no-api-name", action="store_true", help="register text2audio without an api_name")
    parser.add_argument("--step-delay", type=float, default=0.0, help="seconds per sampler step")
    parser.add_argument("--variant", choices=("audioldm", "audioldm2"), default="audioldm")
    args = parser.parse_args(argv)
    try:  # the official app's video is served as made: never re-encoded by a local ffmpeg
        import gradio.processing_utils as processing_utils

        processing_utils.ffmpeg_installed = lambda: False
    except (ImportError, AttributeError):
        pass
    exit_on_sigterm()  # stopped with terminate(): its answers' folder goes too
    port = args.port or free_port(args.host)
    demo = build(named=not args.no_api_name, step_delay=args.step_delay, variant=args.variant)
    demo.queue().launch(server_name=args.host, server_port=port, prevent_thread_lock=True, quiet=True)
    print(f"http://{args.host}:{port}", flush=True)
    demo.block_thread()


__all__ = ["SAMPLE_RATE", "build", "frequency_for", "main", "make_sound"]

if __name__ == "__main__":
    main()
