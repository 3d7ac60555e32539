"""Helpers shared by tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def client_sockets_to(port: int) -> int:
    """This process's open TCP sockets connected to ``port`` (the client side only, unlike :func:`open_fds`, which
    also counts an in-process server's side of each connection, closed a moment after the client's)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if int(cols[2].rsplit(":", 1)[1], 16) == port and cols[9] in inodes:
                count += 1
    return count


def eventually(check, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    """Wait (on an event's timeout, in 50 ms ticks) until ``check()`` holds or ``timeout`` passes."""
    import time

    tick = threading.Event()
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            return False
        tick.wait(0.05)
    return True


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
