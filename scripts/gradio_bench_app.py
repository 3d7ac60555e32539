"""The Gradio app the Gradio figures are measured against (scripts/bench_gradio.py starts it in its own process).

``/echo`` answers at once (the cost of a call is all client and protocol); ``/steps`` reports ``n`` progress steps
``delay`` seconds apart (first-progress latency). Run: ``python scripts/gradio_bench_app.py --port P``.
"""

from __future__ import annotations

import argparse
import time

import gradio as gr
from movie_director.clients.scratch import exit_on_sigterm


def echo(text: str) -> str:
    return text


def steps(n: float, delay: float, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
    for _ in progress.tqdm(range(int(n)), desc="steps"):
        time.sleep(delay)
    return "done"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    exit_on_sigterm()
    with gr.Blocks() as demo:
        text = gr.Textbox(label="Text")
        num = gr.Number(label="Steps")
        num2 = gr.Number(label="Delay")
        out = gr.Textbox(label="Output")
        btn = gr.Button()
        btn.click(echo, text, out, api_name="echo", concurrency_limit=None)
        btn.click(steps, [num, num2], out, api_name="steps", concurrency_limit=None)
    demo.queue().launch(server_name="127.0.0.1", server_port=args.port, prevent_thread_lock=True, quiet=True)
    print(f"http://127.0.0.1:{args.port}", flush=True)
    demo.block_thread()


if __name__ == "__main__":
    main()
