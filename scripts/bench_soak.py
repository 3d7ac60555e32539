"""Soak figures for scripts/bench.py (loaded by it).

- soak_rss_growth_mb, soak_fd_growth: 2,000 jobs with random faults (scripts/soak.py): growth of memory and
  descriptors. Targets: at most 10 MB, at most 3.
- soak_rss_mb: resident memory of a fresh process after 2,000 ComfyUI jobs through the runtime (journal on, as in
  Blender), beside soak_peer_rss_mb: the krita-style peer client (scripts/comfy_peer.py) after the same jobs in its
  own fresh process; the *_start_mb figures are the same processes after their first job (imports, connections).
  Target: at most 1.1x the peer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench_support import emulator_process
from soak import soak

SOAK_RSS = Path(__file__).with_name("soak_rss.py")


def bench_soak() -> dict[str, float]:
    figures = soak(2000)
    return {"soak_rss_growth_mb": figures["soak_rss_growth_mb"], "soak_fd_growth": figures["soak_fd_growth"]}


def _child(who: str, url: str, jobs: int) -> dict[str, float]:
    cmd = [sys.executable, str(SOAK_RSS), who, url, "--jobs", str(jobs)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"soak_rss.py {who} failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def bench_rss(jobs: int = 2000) -> dict[str, float]:
    with emulator_process() as url:
        peer = _child("peer", url, jobs)
        ours = _child("ours", url, jobs)
    return {
        "soak_rss_mb": ours["rss_mb"],
        "soak_peer_rss_mb": peer["rss_mb"],
        "soak_rss_start_mb": ours["rss_start_mb"],
        "soak_peer_rss_start_mb": peer["rss_start_mb"],
    }


SECTIONS = [("soak", bench_soak), ("soak_rss", bench_rss)]
TARGETS = {
    "soak_rss_growth_mb": lambda r: r["soak_rss_growth_mb"] <= 10,
    "soak_fd_growth": lambda r: r["soak_fd_growth"] <= 3,
    "soak_rss_mb": lambda r: r["soak_rss_mb"] <= 1.1 * r["soak_peer_rss_mb"],
}
