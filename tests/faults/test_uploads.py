"""Uploads: streamed with byte progress, several in parallel, never twice the same content, and carried on after a
connection cut midway (retried from the start: no server here can resume a partial upload)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.faultproxy import FaultProxy
from movie_director.runtime import BackendConfig, Job, JobState, RetryPolicy, Runtime
from PIL import Image
from support import pump_until


def noise_png(path: Path, size: int = 1100) -> Path:
    Image.frombytes("RGB", (size, size), os.urandom(size * size * 3)).save(path, compress_level=0)
    return path


TWO_INPUTS = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "a"}},
    "2": {"class_type": "LoadImage", "inputs": {"image": "b"}},
    "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "4": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
    "5": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "a"}},
    "6": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "b"}},
}


def test_an_upload_cut_midway_is_retried_and_the_job_carries_on(tmp_path: Path) -> None:
    src = noise_png(tmp_path / "big.png")
    with EmulatorThread(step_delay=0.0) as emu, FaultProxy(urlsplit(emu.url).port or 0) as proxy:
        rt = Runtime(output_root=tmp_path / "out")
        retry = RetryPolicy(base_delay=0.05, max_retries=3)
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=proxy.url, retry=retry))
        try:
            messages: list[str] = []
            warm = rt.submit("comfyui", "image", {"template": "invert", "images": {"input_image": str(src)}})
            assert warm.wait(30).state is JobState.SUCCEEDED  # preflight done; the file is known to the server now
            src2 = noise_png(tmp_path / "big2.png")
            proxy.mode, proxy.delay = "slow", 0.03
            proxy.reset_all()

            def seen(job: Job) -> None:
                messages.append(job.progress.message)

            h = rt.submit("comfyui", "image", {"template": "invert", "images": {"input_image": str(src2)}})
            h.on_progress(seen)
            assert pump_until(rt, lambda: any("MB sent" in m for m in messages), timeout=20)
            proxy.cut_all()
            proxy.mode = "pass"
            job = h.wait(60)
            assert job.state is JobState.SUCCEEDED, job.error
            assert len(list(emu.folders.input_dir.iterdir())) == 2  # one file per distinct content, no leftovers
        finally:
            rt.stop()


def test_several_inputs_upload_in_parallel_and_identical_content_once(tmp_path: Path) -> None:
    a = noise_png(tmp_path / "a.png", 64)
    b = noise_png(tmp_path / "b.png", 64)
    same_as_a = tmp_path / "copy.png"
    same_as_a.write_bytes(a.read_bytes())
    with EmulatorThread(step_delay=0.0) as emu:
        rt = Runtime(output_root=tmp_path / "out")
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emu.url))
        try:
            wf = {k: {**v, "inputs": dict(v["inputs"])} for k, v in TWO_INPUTS.items()}
            request = {"workflow": wf, "images": {}}
            # Uploaded names are bound by parameter: a raw workflow takes them through its own LoadImage inputs.
            client = rt.client("comfyui")
            assert isinstance(client, comfy.ComfyClient)
            conn = client.connection(emu.url)
            posts_before = emu.emulator.upload_count
            names = rt.call(_upload_all(client, conn, [a, b, same_as_a])).result(20)
            assert names[0] == names[2] and names[0] != names[1]
            assert len(conn.uploading) == 0 and len(conn.uploaded) == 2
            assert emu.emulator.upload_count - posts_before == 2  # the identical file was sent once
            wf["1"]["inputs"]["image"], wf["2"]["inputs"]["image"] = names[0], names[1]
            job = rt.submit("comfyui", "image", request).wait(30)
            assert job.state is JobState.SUCCEEDED and len(job.outputs.files) == 2
            assert len(list(emu.folders.input_dir.iterdir())) == 2
        finally:
            rt.stop()


async def _upload_all(client, conn, paths):  # type: ignore[no-untyped-def]
    import asyncio

    return await asyncio.gather(*(client.upload(conn, p) for p in paths))
