"""Helpers shared by tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}


def pump_until(rt, predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    """Pump the runtime on this thread until ``predicate()`` holds; waits on the runtime's condition, never sleeps."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rt.pump()
        if predicate():
            return True
        with rt.done_condition:
            rt.done_condition.wait(0.01)
    return bool(predicate())


TXT2IMG = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "emulator-v1.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at night", "clip": ["1", 1]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
    "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 96, "height": 64, "batch_size": 1}},
    "5": {
        "class_type": "KSampler",
        "inputs": {
            "model": ["1", 0],
            "seed": 1,
            "steps": 6,
            "cfg": 7.0,
            "sampler_name": "euler",
            "scheduler": "normal",
            "positive": ["2", 0],
            "negative": ["3", 0],
            "latent_image": ["4", 0],
            "denoise": 1.0,
        },
    },
    "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
    "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "MD"}},
}


def txt2img(steps: int = 6, seed: int = 1, text: str = "a lighthouse at night") -> dict:  # type: ignore[type-arg]
    """A standard text-to-image API workflow (fresh copy) that the emulator runs."""
    import copy

    wf = copy.deepcopy(TXT2IMG)
    wf["5"]["inputs"].update(steps=steps, seed=seed)
    wf["2"]["inputs"]["text"] = text
    return wf
