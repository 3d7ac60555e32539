"""ComfyUI figures for scripts/bench.py (loaded by it; not run on its own).

- comfy_jobs_per_s: 200 tiny jobs (EmptyImage -> SaveImage) through the runtime against the emulator at the
  backend's default concurrency, beside comfy_raw_jobs_per_s: a minimal hand-written aiohttp loop doing the same
  POST /prompt, websocket wait and /view download with the same concurrency, in the same run. Target >= 0.8x raw.
- upload_mb_per_s: a 27 MB image uploaded by the client (hash, dedupe check, streamed multipart with byte progress)
  beside upload_raw_mb_per_s: the same POST /upload/image by hand with aiohttp streaming the open file.
  Target >= 0.5x raw: the client reads the file twice on purpose (SHA-256 first, about 15 ms for 27 MB, so
  the same content is never sent twice to a server).
- progress_latency_ms_p50: from the emulator queueing a ``progress`` frame to the main-thread on_progress callback,
  with the pump driven like Blender's timer at its active interval. Target <= interval / 2 + 2 ms.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid
from typing import Any

import aiohttp
from bench_support import emulator_process
from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.registry import BY_NAME
from movie_director.clients.scratch import scratch_dir
from movie_director.runtime import BackendConfig, Job, Runtime

JOBS = 200
ACTIVE_INTERVAL = 0.02  # addon_runtime.ACTIVE_INTERVAL (not imported: that module needs bpy)


def tiny(i: int) -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": i}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "bench"}},
    }


def ours(url: str, concurrency: int) -> float:
    rt = Runtime(output_root=scratch_dir("md-bench-"))
    rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=url, concurrency=concurrency))
    rt.submit("comfyui", "image", {"workflow": tiny(0)}).wait(30)  # connect, preflight
    start = time.perf_counter()
    handles = [rt.submit("comfyui", "image", {"workflow": tiny(i)}) for i in range(JOBS)]
    for h in handles:
        job = h.wait(120)
        assert job.state.value == "succeeded", job.error
    took = time.perf_counter() - start
    rt.stop()
    return JOBS / took


async def raw(url: str, concurrency: int) -> float:
    """The least a client must do per job, written by hand."""
    client_id = uuid.uuid4().hex
    waiters: dict[str, asyncio.Future[None]] = {}
    out = scratch_dir("md-bench-")
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{url}/ws", params={"clientId": client_id}, max_msg_size=0)

        async def read() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    data = msg.json()
                    if data["type"] == "executing" and data["data"]["node"] is None:
                        fut = waiters.get(data["data"]["prompt_id"])
                        if fut and not fut.done():
                            fut.set_result(None)

        reader = asyncio.create_task(read())

        async def one(i: int) -> None:
            pid = str(uuid.uuid4())
            done = waiters[pid] = asyncio.get_running_loop().create_future()
            body = {"prompt": tiny(i), "client_id": client_id, "prompt_id": pid}
            async with session.post(f"{url}/prompt", json=body) as r:
                await r.read()
            await done
            del waiters[pid]
            async with session.get(f"{url}/history/{pid}") as r:
                history = await r.json()
            for output in history[pid]["outputs"].values():
                for img in output["images"]:
                    async with session.get(f"{url}/view", params=img) as r:
                        with open(f"{out}/{pid}.png", "wb") as fh:
                            fh.write(await r.read())

        sem = asyncio.Semaphore(concurrency)

        async def limited(i: int) -> None:
            async with sem:
                await one(i)

        await limited(0)
        start = time.perf_counter()
        await asyncio.gather(*(limited(i) for i in range(JOBS)))
        took = time.perf_counter() - start
        reader.cancel()
        await ws.close()
    return JOBS / took


def bench_throughput() -> dict[str, float]:
    concurrency = BY_NAME["comfyui"].default_concurrency
    ours_runs, raw_runs = [], []
    with emulator_process() as url:
        for _ in range(3):  # alternate, so that machine noise hits both alike
            raw_runs.append(asyncio.run(raw(url, concurrency)))
            ours_runs.append(ours(url, concurrency))
    return {"comfy_jobs_per_s": statistics.median(ours_runs), "comfy_raw_jobs_per_s": statistics.median(raw_runs)}


UPLOAD_SIDE = 3000  # an uncompressed 3000x3000 RGB PNG: 27 MB


def _noise_pngs(folder: str, count: int) -> list[str]:
    import os

    from PIL import Image

    paths = []
    for i in range(count):
        path = f"{folder}/noise{i}.png"
        Image.frombytes("RGB", (UPLOAD_SIDE, UPLOAD_SIDE), os.urandom(UPLOAD_SIDE**2 * 3)).save(path, compress_level=0)
        paths.append(path)
    return paths


async def _raw_upload(url: str, path: str) -> float:
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        with open(path, "rb") as fh:
            form = aiohttp.FormData()
            form.add_field("image", fh, filename=f"raw_{uuid.uuid4().hex}.png", content_type="image/png")
            form.add_field("overwrite", "true")
            async with session.post(f"{url}/upload/image", data=form) as r:
                r.raise_for_status()
                await r.read()
    return time.perf_counter() - start


def bench_upload() -> dict[str, float]:
    from pathlib import Path

    folder = scratch_dir("md-bench-")
    paths = _noise_pngs(folder, 2)
    size_mb = Path(paths[0]).stat().st_size / 2**20
    ours_runs, raw_runs = [], []
    with emulator_process() as url:
        rt = Runtime(output_root=scratch_dir("md-bench-"))
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=url))
        client = rt.client("comfyui")
        assert isinstance(client, comfy.ComfyClient)
        conn = client.connection(url)
        for i in range(6):  # alternate, so that machine noise hits both alike
            path = paths[i % 2]
            raw_runs.append(size_mb / asyncio.run(_raw_upload(url, path)))
            conn.uploaded.clear()  # the same content again: upload it again rather than reuse the name
            start = time.perf_counter()
            rt.call(client.upload(conn, Path(path))).result(120)
            ours_runs.append(size_mb / (time.perf_counter() - start))
        rt.stop()
    return {"upload_mb_per_s": statistics.median(ours_runs), "upload_raw_mb_per_s": statistics.median(raw_runs)}


def bench_progress_latency() -> dict[str, float]:
    sent: dict[tuple[str, int], float] = {}
    latencies: list[float] = []
    with EmulatorThread(step_delay=0.013) as emu:
        original = emu.emulator.send

        def recording_send(event: str, data: Any, sid: str | None) -> None:
            if event == "progress" and isinstance(data, dict):
                sent[(str(data.get("prompt_id")), int(data.get("value", -1)))] = time.perf_counter()
            original(event, data, sid)

        emu.emulator.send = recording_send  # type: ignore[method-assign]
        rt = Runtime(output_root=scratch_dir("md-bench-"))
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emu.url))

        def on_progress(job: Job) -> None:
            now = time.perf_counter()
            step = job.progress.step
            t = sent.get((job.id, step)) if step is not None else None
            if t is not None and job.progress.stage == "sampling":
                latencies.append((now - t) * 1000)

        for seed in range(4):
            request = {"template": "txt2img", "params": {"prompt": "bench", "steps": 40, "seed": seed, "width": 64}}
            h = rt.submit("comfyui", "image", request, on_progress=on_progress)
            while not h.done:  # Blender's timer: pump, then sleep for the active interval
                rt.pump()
                time.sleep(ACTIVE_INTERVAL)
        rt.stop()
    return {"progress_latency_ms_p50": statistics.median(latencies)}


CPU_JOBS = 120
DEPTHS = (1, 4, 16)


_seeds = itertools.count(1)


def sampler(i: int, steps: int = 4) -> dict[str, Any]:
    """A small text-to-image workflow: the emulator sends progress and a preview for each step, as ComfyUI does.
    Every call has a new seed: a prompt the server ran before would come from its cache."""
    ksampler = dict(model=["1", 0], seed=next(_seeds), steps=steps, cfg=7.0, sampler_name="euler")
    ksampler.update(scheduler="normal", positive=["2", 0], negative=["3", 0], latent_image=["4", 0], denoise=1.0)
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "emulator-v1.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": f"bench {i}", "clip": ["1", 1]}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": ksampler},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "bench"}},
    }


def ours_cpu(url: str, in_flight: int) -> tuple[float, float]:
    """Through the add-on's runtime, with its journal (as in Blender): (seconds, CPU seconds) for CPU_JOBS jobs."""
    out = scratch_dir("md-bench-")
    rt = Runtime(output_root=out / "out", journal=out / "jobs.db")
    rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=url, concurrency=in_flight))
    assert rt.submit("comfyui", "image", {"workflow": sampler(0)}).wait(30).state.value == "succeeded"  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    handles = [rt.submit("comfyui", "image", {"workflow": sampler(i)}) for i in range(1, CPU_JOBS)]
    for h in handles:
        job = h.wait(120)
        assert job.state.value == "succeeded", job.error
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    rt.stop()
    return took, cpu


def bench_cpu_per_job() -> dict[str, float]:
    from comfy_peer import run_peer

    figures: dict[str, float] = {}
    cpu_ours: list[float] = []
    cpu_peer: list[float] = []
    with emulator_process() as url:
        for depth in DEPTHS:  # ours and the peer alternate, so that machine noise hits both alike
            peer_took, peer_cpu = run_peer(url, scratch_dir("md-bench-"), [sampler(i) for i in range(CPU_JOBS)], depth)
            took, cpu = ours_cpu(url, depth)
            jobs = CPU_JOBS - 1
            figures[f"comfy_jobs_per_s_{depth}"] = jobs / took
            figures[f"comfy_peer_jobs_per_s_{depth}"] = jobs / peer_took
            cpu_ours.append(cpu * 1000 / jobs)
            cpu_peer.append(peer_cpu * 1000 / jobs)
    return {
        "comfy_cpu_ms_per_job": statistics.median(cpu_ours),
        "comfy_peer_cpu_ms_per_job": statistics.median(cpu_peer),
        **figures,
    }


SECTIONS = [
    ("comfy_throughput", bench_throughput),
    ("comfy_cpu", bench_cpu_per_job),
    ("upload", bench_upload),
    ("progress_latency", bench_progress_latency),
]
TARGETS = {
    "comfy_jobs_per_s": lambda r: r["comfy_jobs_per_s"] >= 0.8 * r["comfy_raw_jobs_per_s"],
    "comfy_cpu_ms_per_job": lambda r: r["comfy_cpu_ms_per_job"] <= r["comfy_peer_cpu_ms_per_job"],
    **{
        f"comfy_jobs_per_s_{d}": (lambda r, d=d: r[f"comfy_jobs_per_s_{d}"] >= r[f"comfy_peer_jobs_per_s_{d}"])
        for d in DEPTHS
    },
    "upload_mb_per_s": lambda r: r["upload_mb_per_s"] >= 0.5 * r["upload_raw_mb_per_s"],
    "progress_latency_ms_p50": lambda r: r["progress_latency_ms_p50"] <= ACTIVE_INTERVAL * 1000 / 2 + 2,
}
