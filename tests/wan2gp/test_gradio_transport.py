"""GradioVideoTransport against a real Wan2GP-compatible Gradio app (the stand-in, in its own process): exact frames,
progress, log lines, uploads, errors, cancellation; driven by a real Runtime (its real JobContexts), directly and
through the Wan2GP client."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_support import WAN2GP, GradioApp, shared_apps, stop_shared
from movie_director.clients.wan2gp import client as wan
from movie_director.clients.wan2gp.gradio_transport import GradioVideoTransport
from movie_director.clients.wan2gp.settings import parse_settings
from movie_director.clients.wan2gp.standin_gradio import MODELS
from movie_director.runtime import (
    BackendClient,
    BackendConfig,
    HealthInfo,
    Job,
    JobContext,
    JobOutputs,
    JobState,
    RemoteStatus,
    Runtime,
)
from PIL import Image
from support import pump_until

SMALL = {"resolution": "128x72", "num_inference_steps": 6}


class TransportBackend(BackendClient):
    """The thinnest client over the transport: one job, one remote id."""

    name = "wan2gp"

    def __init__(self, config: BackendConfig, network: Any = None) -> None:
        super().__init__(config, network)
        self.transport = GradioVideoTransport(config.url, config, self.network)
        self.ids: dict[str, str] = {}

    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        self.ids[job.id] = await self.transport.submit(parse_settings(job.request), ctx)
        return self.ids[job.id]

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        return await self.transport.wait(self.ids[job.id], ctx)

    async def cancel(self, job: Job) -> None:
        await self.transport.cancel(self.ids[job.id])

    async def get_status(self, job: Job) -> RemoteStatus:
        return await self.transport.status(self.ids[job.id])

    async def health(self) -> HealthInfo:
        return await self.transport.health()

    async def close(self) -> None:
        await self.transport.close()


@pytest.fixture(scope="session")
def wan_app() -> Iterator[GradioApp]:
    yield shared_apps({"wan2gp-gradio": [*WAN2GP, "--step-delay", "0.02"]})["wan2gp-gradio"]
    stop_shared("wan2gp-gradio")


@pytest.fixture
def video_rt(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(url: str, factory: Any = TransportBackend) -> Runtime:
        rt = Runtime(output_root=tmp_path / f"out{len(made)}")
        rt.register_backend("wan2gp", factory, BackendConfig(name="wan2gp", urls=url, timeout=60.0))
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()


def avi_facts(path: str) -> tuple[int, float, list[bytes]]:
    """(frames, fps, JPEG frames) of an MJPEG AVI, read from its header and its ``00dc`` chunks."""
    data = Path(path).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"AVI "
    avih = data.index(b"avih") + 8
    usec_per_frame, _, _, _, total = struct.unpack("<5I", data[avih : avih + 20])
    jpegs = []
    pos = data.index(b"movi") + 4
    end = data.index(b"idx1")
    while pos < end:
        tag, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if tag == b"00dc":
            jpegs.append(data[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    assert len(jpegs) == total
    return total, 1_000_000 / usec_per_frame, jpegs


def video(rt: Runtime, prompt: str = "a lighthouse in the fog", **settings: Any):  # type: ignore[no-untyped-def]
    return rt.submit("wan2gp", "video", {"prompt": prompt, **SMALL, **settings})


@pytest.mark.parametrize(("length", "fps", "frames"), [(17, "", 17), ("2s", "", 32), (9, "24", 9)])
def test_exactly_the_requested_frames(
    wan_app: GradioApp, video_rt: Callable[..., Runtime], length: Any, fps: str, frames: int
) -> None:
    rt = video_rt(wan_app.url)
    request = {"duration": length} if isinstance(length, str) else {"video_length": length}
    job = video(rt, force_fps=fps, **request).wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    (out,) = job.outputs.files
    assert out.media_type == "video/x-msvideo"
    assert Path(out.path).parent == (Path(rt.output_root) / "wan2gp" / job.id).resolve()
    count, rate, jpegs = avi_facts(out.path)
    assert count == frames and rate == pytest.approx(int(fps or 16), rel=1e-3)
    with Image.open(io.BytesIO(jpegs[0])) as first:
        assert first.size == (128, 72)
    assert job.outputs.data["server"] == wan_app.url


def test_inference_steps_are_progress_and_info_lines_are_log(
    wan_app: GradioApp, video_rt: Callable[..., Runtime]
) -> None:
    rt = video_rt(wan_app.url)
    seen: list[Job] = []
    lines: list[str] = []
    h = video(rt, video_length=5, num_inference_steps=30).on_progress(seen.append)
    h.on_log(lambda job, line: lines.append(line))
    assert pump_until(rt, lambda: h.done, timeout=30)
    job = h.wait(1)
    assert job.state is JobState.SUCCEEDED, job.error
    inference = [j.progress for j in seen if j.progress.stage == "inference"]
    assert inference and all(p.total == 30 for p in inference)
    assert any(p.message == f"inference {p.step}/30" and 0 < (p.step or 0) < 30 for p in inference)
    assert "Loading model t2v_1.3B" in lines and "Saved 5 frames at 16 fps" in lines


def test_a_start_image_is_uploaded_and_used(
    wan_app: GradioApp, video_rt: Callable[..., Runtime], tmp_path: Path
) -> None:
    start = tmp_path / "board.png"
    Image.new("RGB", (64, 36), (0, 200, 0)).save(start)
    rt = video_rt(wan_app.url)
    job = video(rt, model_type="i2v", video_length=3, image_start=str(start)).wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    _, _, jpegs = avi_facts(job.outputs.files[0].path)
    with Image.open(io.BytesIO(jpegs[0])) as first:
        r, g, b = first.convert("RGB").getpixel((100, 40))  # type: ignore[misc]
    assert g > 150 and r < 60 and b < 60


def test_an_unknown_model_is_the_apps_gr_error(wan_app: GradioApp, video_rt: Callable[..., Runtime]) -> None:
    rt = video_rt(wan_app.url)
    job = video(rt, model_type="sdxl_video", video_length=3).wait(30)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "job_failed"
    assert "Unknown model 'sdxl_video'" in job.error.message and "t2v_1.3B" in job.error.message


def test_cancelling_mid_inference(wan_app: GradioApp, video_rt: Callable[..., Runtime]) -> None:
    rt = video_rt(wan_app.url)
    h = video(rt, video_length=3, num_inference_steps=200)
    assert pump_until(rt, lambda: (h.status().progress.step or 0) >= 2, timeout=20)
    h.cancel()
    assert h.wait(5).state is JobState.CANCELLED

    async def remote_state() -> RemoteStatus:
        client = rt.client("wan2gp")
        assert isinstance(client, TransportBackend)
        return await client.transport.status(client.ids[h.id])

    assert rt.call(remote_state()).result(5).state is JobState.CANCELLED
    after = video(rt, video_length=2).wait(30)  # the app takes the next job
    assert after.state is JobState.SUCCEEDED, after.error


def test_models_and_health(wan_app: GradioApp, video_rt: Callable[..., Runtime]) -> None:
    rt = video_rt(wan_app.url)

    async def models() -> list[str]:
        client = rt.client("wan2gp")
        assert isinstance(client, TransportBackend)
        return await client.transport.list_models()

    assert rt.call(models()).result(20) == list(MODELS)
    health = rt.check_health("wan2gp").result(20)
    assert health.ok and "/generate" in health.message


def test_through_the_wan2gp_client(wan_app: GradioApp, video_rt: Callable[..., Runtime]) -> None:
    """The Wan2GP client picks this transport for a URL that is not .../mcp."""
    rt = video_rt(wan_app.url, wan.factory)
    job = video(rt, video_length=7).wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    assert avi_facts(job.outputs.files[0].path)[0] == 7
    assert job.outputs.data["frames"] == 7 and job.outputs.data["fps"] == 16
    models = rt.submit("wan2gp", "models", {}).wait(20)
    assert models.state is JobState.SUCCEEDED and models.outputs.data["models"] == list(MODELS)
