"""Resident memory after many ComfyUI jobs, ours beside the krita-style peer, each in a fresh process (run by
scripts/bench_soak.py with the emulator's URL):

    python scripts/soak_rss.py ours URL [--jobs 2000] [--trace]
    python scripts/soak_rss.py peer URL [--jobs 2000]

``ours`` runs the jobs through the runtime as the add-on does (journal, handles kept until the runtime prunes them);
``--trace`` adds the biggest live allocations (tracemalloc, grouped by line) that our run left behind. Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bootstrap import ensure_importable

ensure_importable()

from movie_director.clients.scratch import scratch_dir  # noqa: E402

IN_FLIGHT = 4
BATCH = 100


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def tiny(i: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i % 65536}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "soak"}},
    }


def clear(folder: Path) -> None:
    """Outputs are not what is measured: keep the disk clean between batches."""
    for child in folder.iterdir():
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def ours(url: str, jobs: int, trace: bool) -> dict[str, Any]:
    from movie_director.clients.comfyui import client as comfy
    from movie_director.runtime import BackendConfig, Runtime

    folder = scratch_dir("md-soak-")
    out = folder / "out"
    rt = Runtime(output_root=out, journal=folder / "jobs.db")
    rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=url, concurrency=IN_FLIGHT))
    assert rt.submit("comfyui", "image", {"workflow": tiny(0)}).wait(30).state.value == "succeeded"
    start = rss_mb()
    if trace:
        tracemalloc.start(12)
    done = 0
    while done < jobs:
        handles = [rt.submit("comfyui", "image", {"workflow": tiny(done + i)}) for i in range(BATCH)]
        for h in handles:
            job = h.wait(120)
            assert job.state.value == "succeeded", job.error
        done += BATCH
        clear(out)
    gc.collect()
    figures: dict[str, Any] = {"rss_mb": rss_mb(), "rss_start_mb": start, "handles": len(rt.jobs())}
    if trace:
        snapshot = tracemalloc.take_snapshot()
        stats = snapshot.statistics("traceback")
        figures["traced_mb"] = sum(s.size for s in stats) / 2**20
        top = []
        for stat in stats[:12]:
            ours_frames = [f for f in stat.traceback if "movie_director" in f.filename or "/work/" in f.filename]
            where = ours_frames[-1] if ours_frames else stat.traceback[-1]
            top.append(
                f"{stat.size / 1024:.0f} KiB in {stat.count} blocks: {where.filename.split('/')[-1]}:{where.lineno}"
                f" <- {stat.traceback[-1].filename.split('/')[-1]}:{stat.traceback[-1].lineno}"
            )
        figures["top"] = top
    rt.stop()
    return figures


def peer(url: str, jobs: int) -> dict[str, Any]:
    import asyncio

    from comfy_peer import PeerClient

    out = scratch_dir("md-soak-")
    start = 0.0

    async def run() -> None:
        client = PeerClient(url, out)  # one client and socket for the whole run, as a long-lived application keeps
        await client.open()
        await client.run_batch([tiny(0)], 1)
        nonlocal start
        start = rss_mb()
        done = 0
        while done < jobs:
            await client.run_batch((tiny(done + i) for i in range(BATCH)), IN_FLIGHT)
            done += BATCH
            clear(out)
        await client.close()

    asyncio.run(run())
    gc.collect()
    return {"rss_mb": rss_mb(), "rss_start_mb": start}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("who", choices=["ours", "peer"])
    parser.add_argument("url")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args(argv)
    figures = ours(args.url, args.jobs, args.trace) if args.who == "ours" else peer(args.url, args.jobs)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
