"""A real Gradio app for the runner's tests: progress bars, log lines, errors, files, a stoppable generator,
session state (so the app asks for a heartbeat), and endpoints without an ``api_name``.

Run: ``python tests/gradio/app.py --port P`` (prints its URL when it serves).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import gradio as gr
from movie_director.clients.scratch import exit_on_sigterm, scratch_dir

RUNS: dict[str, dict[str, object]] = {}
_lock = threading.Lock()
GATE = threading.Event()


def steps(n: float, delay: float, desc: str, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
    gr.Info(f"starting {desc}")
    gr.Warning("this is only a test")
    for _ in progress.tqdm(range(int(n)), desc=desc):
        time.sleep(delay)
    progress(0.95, desc="finishing")
    time.sleep(0.3)  # Gradio sends progress every 0.1 s: let this last bar go out before the result
    return f"{desc} done"


def fail(message: str) -> str:
    raise gr.Error(message)


def crash(x: str) -> str:
    raise RuntimeError("secret internal detail")


def make_file(name: str, size: float) -> str:
    folder = scratch_dir("md-gradio-test-app-")
    path = folder / name
    path.write_bytes(os.urandom(int(size)))
    return str(path)


def two_files(text: str) -> tuple[str, str, str]:
    folder = scratch_dir("md-gradio-test-app-")
    (folder / "a.txt").write_text(text)
    (folder / "b.txt").write_text(text[::-1])
    return str(folder / "a.txt"), str(folder / "b.txt"), text.upper()


def upload_size(file: str) -> float:
    return float(Path(file).stat().st_size)


def count(key: str, n: float, delay: float):  # type: ignore[no-untyped-def]
    """A generator: cancelling it on the server stops it at its next step; its ``finally`` records that."""
    with _lock:
        RUNS[key] = {"steps": 0, "closed": False}
    try:
        for i in range(int(n)):
            with _lock:
                RUNS[key]["steps"] = i + 1
            time.sleep(delay)
            yield str(i + 1)
    finally:
        with _lock:
            RUNS[key]["closed"] = True


def peek(key: str) -> dict[str, object]:
    with _lock:
        return dict(RUNS.get(key, {}))


def block(seconds: float) -> str:
    """Occupies the app's only worker until released (or ``seconds`` pass): later jobs wait in its queue."""
    GATE.clear()
    GATE.wait(float(seconds))
    return "released"


def release() -> str:
    GATE.set()
    return "ok"


def synthesize(text: str, seed: float) -> str:
    return f"synth:{text}:{int(seed)}"


def remember(x: str, state: list[str]) -> tuple[str, list[str]]:
    state = [*state, x]
    return ",".join(state), state


def build() -> gr.Blocks:
    with gr.Blocks() as demo:
        num = gr.Number(label="Number")
        num2 = gr.Number(label="Delay")
        text = gr.Textbox(label="Text")
        out = gr.Textbox(label="Output")
        btn = gr.Button()
        btn.click(steps, [num, num2, text], out, api_name="steps", concurrency_limit=None)
        btn.click(fail, text, out, api_name="fail")
        btn.click(crash, text, out, api_name="crash")
        btn.click(make_file, [text, num], gr.File(label="File"), api_name="make_file")
        btn.click(two_files, text, [gr.File(label="A"), gr.File(label="B"), out], api_name="two_files")
        btn.click(upload_size, gr.File(label="Upload", type="filepath"), num, api_name="upload_size")
        btn.click(count, [text, num, num2], out, api_name="count", concurrency_id="single", concurrency_limit=1)
        btn.click(peek, text, gr.JSON(label="Run"), api_name="peek", concurrency_limit=None)
        btn.click(block, num, out, api_name="block", concurrency_id="single", concurrency_limit=1)
        btn.click(release, None, out, api_name="release", concurrency_limit=None)
        # No api_name: Gradio names these after the function ("/synthesize") or "/lambda".
        prompt = gr.Textbox(label="Input your text here")
        seed = gr.Number(value=7, label="Change this value to get a different result")
        btn.click(synthesize, [prompt, seed], out, concurrency_limit=None)
        btn.click(lambda a, b: f"{a}|{int(b)}", [prompt, seed], out, concurrency_limit=None)
        state = gr.State([])
        btn.click(remember, [text, state], [out, state], api_name="remember")
    return demo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    exit_on_sigterm()
    demo = build()
    demo.queue(default_concurrency_limit=1).launch(
        server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True, quiet=True
    )
    print(f"http://127.0.0.1:{args.port}", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
