"""Soak: many jobs through the runtime and the ComfyUI emulator (in its own process), behind the fault proxy, with
faults injected at random; prints resident memory, open file descriptors and threads at the start and the end.

    python scripts/soak.py --jobs 2000 [--seed 1] [--json]

Every job must end terminal (succeeded, or failed with a reason after a fault): the script exits non-zero if any
job is lost or stuck. Warm-up jobs run first so that imports and caches do not count as growth.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bootstrap import ensure_importable

ensure_importable()

from bench_support import emulator_process  # noqa: E402
from movie_director.clients.comfyui import client as comfy  # noqa: E402
from movie_director.clients.faultproxy import FaultProxy  # noqa: E402
from movie_director.clients.scratch import scratch_dir  # noqa: E402
from movie_director.runtime import BackendConfig, JobState, RetryPolicy, Runtime  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def tiny(i: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i % 65536}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "soak"}},
    }


def soak(jobs: int, seed: int = 1, batch: int = 100) -> dict[str, float]:
    rng = random.Random(seed)
    out = scratch_dir("md-soak-")
    with emulator_process() as url, FaultProxy(int(url.rsplit(":", 1)[1])) as proxy:
        rt = Runtime(output_root=out)
        retry = RetryPolicy(max_retries=3, base_delay=0.02, deadline=20.0)
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=proxy.url, retry=retry))

        reasons: dict[str, int] = {}

        def run(count: int, faults: bool) -> dict[str, int]:
            states: dict[str, int] = {}
            done = 0
            while done < count:
                n = min(batch, count - done)
                handles = [rt.submit("comfyui", "image", {"workflow": tiny(done + i)}) for i in range(n)]
                if faults:
                    fault = rng.choice(["none", "reset", "cut", "503", "429", "slow"])
                    if fault == "reset":
                        proxy.reset_all()
                    elif fault == "cut":
                        proxy.cut_all()
                    elif fault in ("503", "429"):
                        proxy.respond(int(fault), rng.randint(1, 3))
                    elif fault == "slow":
                        proxy.mode, proxy.delay = "slow", 0.001
                for h in handles:
                    job = h.wait(120)
                    states[job.state.value] = states.get(job.state.value, 0) + 1
                    if job.error is not None:
                        reasons[job.error.code] = reasons.get(job.error.code, 0) + 1
                    h.dispose()
                proxy.mode = "pass"
                done += n
                for folder in (out / "comfyui").glob("*"):  # outputs are not what we measure: keep the disk clean
                    for f in folder.glob("*"):
                        f.unlink()
                    folder.rmdir()
            return states

        run(200, faults=False)  # warm-up
        gc.collect()
        start = {"rss_mb": rss_mb(), "fds": fds(), "threads": threading.active_count()}
        t0 = time.perf_counter()
        states = run(jobs, faults=True)
        took = time.perf_counter() - t0
        gc.collect()
        end = {"rss_mb": rss_mb(), "fds": fds(), "threads": threading.active_count()}
        rt.stop()
    lost = jobs - sum(states.get(s.value, 0) for s in JobState if s.terminal)
    print(f"jobs: {jobs} in {took:.1f} s ({jobs / took:.0f}/s); states: {states}; lost or stuck: {lost}")
    if reasons:
        print(f"failures (each with its reason on the job): {reasons}")
    print(f"start: RSS {start['rss_mb']:.1f} MB, {start['fds']} fds, {start['threads']} threads")
    print(f"end:   RSS {end['rss_mb']:.1f} MB, {end['fds']} fds, {end['threads']} threads")
    if lost:
        raise SystemExit(f"{lost} jobs were lost or stuck")
    return {
        "soak_rss_growth_mb": end["rss_mb"] - start["rss_mb"],
        "soak_fd_growth": float(end["fds"] - start["fds"]),
        "soak_thread_growth": float(end["threads"] - start["threads"]),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = soak(args.jobs, args.seed)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
