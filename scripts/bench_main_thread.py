"""Main-thread figures for scripts/bench.py (loaded by it), measured in real Blender (the bpy wheel) in child
processes running scripts/blender_main_thread.py.

- pump_ms_p99_callbacks: one pump of the add-on's timer while 16 jobs preview at 50 Hz each and a Text block is
  written, with the sidebar's preview callback, the Text writer and status-bar text (p50, share of pumps over a
  60 Hz frame and main-thread milliseconds per second beside it); pump_ms_p99_bare is the same run with no
  callbacks. pump_cpu_ms_p99_*: the main thread's CPU time in those pumps (wall time on a shared machine also counts
  the time the thread was descheduled). Target: at most 2 ms, against a 16.7 ms frame.
- register_ms: ``addon_utils.enable`` of the add-on as Blender enables it at start-up (bytecode cached, Blender's
  one-time extension set-up already done), beside register_peer_ms: an empty extension enabled the same way.
  register_ms_cold: the first enable, with no bytecode cached yet. register_cpu_ms, register_peer_cpu_ms: the main
  thread's CPU time of the same enables (wall time on a shared machine also counts other processes).
  Target: register_ms at most 50.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from movie_director.clients.scratch import scratch_dir

CHILD = Path(__file__).resolve().parent / "blender_main_thread.py"
FRAME_MS = 1000 / 60


def child(mode: str, home: str) -> dict[str, float]:
    env = dict(os.environ, BLENDER_USER_RESOURCES=home, PYTHONPYCACHEPREFIX=str(Path(home) / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Blender caches an extension's bytecode like any Python
    out = subprocess.run([sys.executable, str(CHILD), mode], env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"{CHILD.name} {mode} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def bench_register(runs: int = 5) -> dict[str, float]:
    home = str(scratch_dir("md-bench-blender-"))
    cold = child("register", home)  # compiles and caches the bytecode, as the first start after installing
    warm = [child("register", home) for _ in range(runs)]
    return {
        "register_ms": statistics.median(r["register_ms"] for r in warm),
        "register_peer_ms": statistics.median(r["register_peer_ms"] for r in warm),
        "register_cpu_ms": statistics.median(r["register_cpu_ms"] for r in warm),
        "register_peer_cpu_ms": statistics.median(r["register_peer_cpu_ms"] for r in warm),
        "register_ms_cold": cold["register_ms"],
    }


def bench_pump_callbacks() -> dict[str, float]:
    figures = child("pump", str(scratch_dir("md-bench-blender-")))
    return {k: v for k, v in figures.items() if k.startswith("pump_")}


SECTIONS = [("register", bench_register), ("main_thread", bench_pump_callbacks)]
TARGETS = {
    "register_ms": lambda r: r["register_ms"] <= 50,
    "pump_ms_p99_callbacks": lambda r: r["pump_ms_p99_callbacks"] <= 2.0,
}
