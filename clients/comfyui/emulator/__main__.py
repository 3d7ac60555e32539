"""``python -m movie_director.clients.comfyui.emulator``: serve the emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from .server import ComfyEmulator


async def _serve(args: argparse.Namespace) -> None:
    emulator = ComfyEmulator(
        host=args.host,
        port=args.port,
        output_dir=args.output_dir,
        input_dir=args.input_dir,
        step_delay=args.step_delay,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emulator:
        print(f"ComfyUI emulator listening on {emulator.url}", flush=True)
        print(f"  output: {emulator.folders.output_dir}\n  input:  {emulator.folders.input_dir}", flush=True)
        await stop.wait()
    print("ComfyUI emulator stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until interrupted."""
    parser = argparse.ArgumentParser(description="A ComfyUI 0.3.75 emulator that draws pictures without a GPU.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8188, help="0 picks a free port")
    parser.add_argument("--step-delay", type=float, default=0.05, help="seconds per sampler step")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--input-dir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
