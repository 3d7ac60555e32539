"""The Wan2GP client over MCP against the stand-in: whole jobs, uploads, cancels, the one-job rule, flavours,
a server that dies mid-job, bad settings and the cached model list."""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from movie_director.clients.wan2gp import client as wan
from movie_director.clients.wan2gp.standin_mcp import StandinServer
from movie_director.runtime import BackendConfig, Job, JobState, Runtime
from PIL import Image
from support import pump_until, thread_names

SMALL = {"resolution": "96x64", "num_inference_steps": 6}


def video(prompt: str = "a lighthouse in the fog", **fields: Any) -> dict[str, Any]:
    return {"prompt": prompt, "video_length": 9, **SMALL, **fields}


def test_generates_a_video_with_progress_logs_and_the_right_frame_count(wan_rt: Runtime, standin, avi) -> None:  # type: ignore[no-untyped-def]
    standin.options.step_delay = 0.05  # progress is coalesced between pumps: give the pump time to see the steps
    seen: list[Job] = []
    lines: list[str] = []
    h = wan_rt.submit("wan2gp", "video", video(video_length=17), on_progress=seen.append)
    h.on_log(lambda job, line: lines.append(line))
    assert pump_until(wan_rt, lambda: h.done, timeout=20)
    job = h.wait(1)
    assert job.state is JobState.SUCCEEDED, job.error
    (out,) = job.outputs.files
    path = Path(out.path)
    assert path.parent == wan_rt.output_root / "wan2gp" / job.id and path.suffix == ".avi"
    assert out.media_type.startswith("video/") and out.size == path.stat().st_size
    assert avi.size(path) == (17, 96, 64)
    assert len(avi.chunks(path)) == 17
    assert job.outputs.data["frames"] == 17 and job.outputs.data["fps"] == 16
    # Progress is coalesced between pumps; the log keeps every step.
    assert seen and all(j.progress.stage for j in seen)
    assert all(any(f"| {step}/6 " in line for line in lines) for step in range(1, 7)), lines
    assert all(j.progress.fraction < 1.0 for j in seen) and job.progress.fraction == 1.0
    assert "Loading model t2v_1.3B" in lines
    assert len(lines) == len(set(lines)), "an event was logged twice"
    assert job.log == lines
    assert standin.engine.calls["create_download"] == 1  # fetched through a gallery download URL
    assert job.remote_id and job.server == standin.url


def test_a_result_on_this_computer_is_copied_directly(standin, runtime_for, avi) -> None:  # type: ignore[no-untyped-def]
    rt = runtime_for(standin.url)  # local_copy is on by default
    job = rt.submit("wan2gp", "video", video(duration="1.5s")).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    assert avi.size(job.outputs.files[0].path)[0] == 24  # 1.5 s at 16 fps
    assert standin.engine.calls["create_download"] == 0


def test_progress_shows_steps_and_previews_while_running(wan_rt: Runtime, standin) -> None:  # type: ignore[no-untyped-def]
    standin.options.step_delay = 0.03
    h = wan_rt.submit("wan2gp", "video", video(num_inference_steps=12))
    assert pump_until(wan_rt, lambda: (h.status().progress.step or 0) >= 5, timeout=10)
    running = h.status()
    assert running.state is JobState.RUNNING and running.progress.stage == "inference"
    assert running.progress.total == 12 and 0.1 < running.progress.fraction < 0.95
    assert pump_until(wan_rt, lambda: h.status().progress.preview is not None, timeout=10)
    preview = h.status().progress
    assert preview.preview_media_type == "image/jpeg"
    with Image.open(io.BytesIO(preview.preview or b"")) as img:
        assert img.size == (64, 36)
    assert h.wait(20).state is JobState.SUCCEEDED


def test_start_image_is_uploaded_and_opens_the_clip(wan_rt: Runtime, standin, avi, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    start = tmp_path / "board.png"
    Image.new("RGB", (32, 24), (250, 10, 10)).save(start)
    job = wan_rt.submit("wan2gp", "video", video(model_type="i2v", image_start=str(start))).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    assert standin.engine.calls["create_upload"] == 1
    (uploaded,) = [g for g in standin.engine.gallery.values() if Path(g["path"]).name.startswith("upload_")]
    assert Path(uploaded["path"]).read_bytes() == start.read_bytes()
    first = avi.chunks(job.outputs.files[0].path)[0]
    with Image.open(io.BytesIO(first)) as img:
        r, g, b = img.convert("RGB").getpixel((48, 32))
    assert r > 200 and g < 60 and b < 60  # the start image is frame one


def test_cancel_mid_run_ends_locally_at_once_and_on_the_server(wan_rt: Runtime, standin) -> None:  # type: ignore[no-untyped-def]
    standin.options.step_delay = 0.05
    h = wan_rt.submit("wan2gp", "video", video(num_inference_steps=200))
    assert pump_until(wan_rt, lambda: (h.status().progress.step or 0) >= 2, timeout=10)
    remote_id = h.status().remote_id
    started = time.monotonic()
    h.cancel()
    job = h.wait(1)
    assert job.state is JobState.CANCELLED and time.monotonic() - started < 1.0
    final = standin.engine.wait_job(remote_id, timeout=5)
    assert final is not None and final["result"]["cancelled"] is True
    assert final["result"]["errors"][0]["stage"] == "cancelled"
    # the server is free again: the next job runs without a busy refusal
    standin.options.step_delay = 0.01
    assert wan_rt.submit("wan2gp", "video", video()).wait(20).state is JobState.SUCCEEDED
    assert standin.engine.busy_refusals == 0


def test_a_second_job_waits_for_the_first_instead_of_colliding(standin, runtime_for) -> None:  # type: ignore[no-untyped-def]
    rt = runtime_for(standin.url, concurrency=2, local_copy=False)
    standin.options.step_delay = 0.03
    stages: list[str] = []
    first = rt.submit("wan2gp", "video", video("first", num_inference_steps=10))
    assert pump_until(rt, lambda: first.status().state is JobState.RUNNING, timeout=10)
    second = rt.submit("wan2gp", "video", video("second"), on_progress=lambda j: stages.append(j.progress.stage))
    assert pump_until(rt, lambda: "waiting for the server" in stages, timeout=10)
    assert first.wait(20).state is JobState.SUCCEEDED
    assert second.wait(20).state is JobState.SUCCEEDED
    assert standin.engine.busy_refusals == 0
    ended = dict(standin.engine.finished)
    first_job = standin.engine.jobs[first.status().remote_id]
    second_job = standin.engine.jobs[second.status().remote_id]
    assert second_job.created_at >= ended[first_job.job_id]


def test_a_server_busy_with_someone_else_is_a_clear_retryable_error(wan_rt: Runtime, standin) -> None:  # type: ignore[no-untyped-def]
    standin.options.step_delay = 0.05
    theirs = {"model_type": "t2v_1.3B", "prompt": "theirs", "num_inference_steps": 500}
    foreign = standin.call(lambda: standin.engine.generate(theirs, False, 5))
    job = wan_rt.submit("wan2gp", "video", video()).wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "server_error" and job.error.retryable
    assert "busy with another generation" in job.error.message
    assert standin.engine.busy_refusals == 2  # tried once more after a short wait, then said so
    standin.call(lambda: standin.engine.cancel_job(foreign["job_id"]))


def test_an_unknown_model_is_refused_naming_it(wan_rt: Runtime) -> None:
    job = wan_rt.submit("wan2gp", "video", video(model_type="wan_9000_ultra")).wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "invalid_request"
    assert "wan_9000_ultra" in job.error.message and "has no model" in job.error.message  # before generating


def test_the_media_id_flavour(runtime_for, avi) -> None:  # type: ignore[no-untyped-def]
    with StandinServer(step_delay=0.01, flavour="media_id") as server:
        rt = runtime_for(server.url, local_copy=False)
        job = rt.submit("wan2gp", "video", video()).wait(20)
        assert job.state is JobState.SUCCEEDED, job.error
        assert avi.size(job.outputs.files[0].path)[0] == 9
        assert server.engine.calls["create_download"] == 1
        assert rt.check_health("wan2gp").result(10).details["flavour"] == "media_id"
        rt.stop()


def test_the_single_session_tool_flavour(runtime_for, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    start = tmp_path / "a.png"
    Image.new("RGB", (16, 16), (0, 0, 255)).save(start)
    with StandinServer(step_delay=0.01, flavour="session") as server:
        rt = runtime_for(server.url, local_copy=False)
        job = rt.submit("wan2gp", "video", video(image_start=str(start))).wait(20)
        assert job.state is JobState.SUCCEEDED, job.error
        models = rt.submit("wan2gp", "models", {}).wait(10)
        assert "ltx2_22B_distilled" in models.outputs.data["models"]
        rt.stop()


def test_a_server_killed_mid_job_fails_the_job_clearly(standin_process, runtime_for) -> None:  # type: ignore[no-untyped-def]
    server = standin_process("--step-delay", "0.05")
    rt = runtime_for(server.url)
    h = rt.submit("wan2gp", "video", video(num_inference_steps=200))
    assert pump_until(rt, lambda: (h.status().progress.step or 0) >= 2, timeout=15)
    server.kill()
    started = time.monotonic()
    job = h.wait(10)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "backend_unavailable" and job.error.retryable
    assert "went away during the job" in job.error.message and server.url in job.error.message
    assert time.monotonic() - started < 5


def test_a_server_that_dies_by_itself_mid_job(standin_process, runtime_for) -> None:  # type: ignore[no-untyped-def]
    server = standin_process("--step-delay", "0.02", "--die-at-step", "3")
    job = runtime_for(server.url).submit("wan2gp", "video", video(num_inference_steps=50)).wait(15)
    assert job.state is JobState.FAILED and job.error is not None and "went away" in job.error.message


def test_settings_are_checked_before_anything_is_sent(wan_rt: Runtime, standin, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cases = {
        "resolution must look like 832x480": video(resolution="big"),
        "num_inference_steps": video(num_inference_steps=0),
        "prompt": {"video_length": 9},
        "does not exist": video(image_start=str(tmp_path / "missing.png")),
        "colour": video(colour="blue"),
    }
    for expected, request in cases.items():
        job = wan_rt.submit("wan2gp", "video", request).wait(10)
        assert job.state is JobState.FAILED and job.error is not None, request
        assert job.error.code == "invalid_request" and expected in job.error.message, job.error.message
    assert standin.engine.calls["generate"] == 0


def test_models_are_listed_in_pages_and_cached(standin, runtime_for) -> None:  # type: ignore[no-untyped-def]
    rt = runtime_for(standin.url)
    first = rt.submit("wan2gp", "models", {}).wait(10)
    assert first.state is JobState.SUCCEEDED, first.error
    models = first.outputs.data["models"]
    assert len(models) == 12 and models[0] == "t2v_1.3B"  # two pages of at most 10
    assert standin.engine.calls["list_models"] == 2
    assert rt.submit("wan2gp", "models", {}).wait(10).outputs.data["models"] == models
    assert standin.engine.calls["list_models"] == 2  # cached
    rt.submit("wan2gp", "models", {"refresh": True}).wait(10)
    assert standin.engine.calls["list_models"] == 4
    no_cache = runtime_for(standin.url, models_ttl=0)
    for _ in range(2):
        no_cache.submit("wan2gp", "models", {}).wait(10)
    assert standin.engine.calls["list_models"] == 8


def test_two_servers_run_two_jobs_at_once(runtime_for) -> None:  # type: ignore[no-untyped-def]
    with StandinServer(step_delay=0.03) as a, StandinServer(step_delay=0.03) as b:
        rt = runtime_for(f"{a.url} {b.url}", concurrency=2)
        jobs = [rt.submit("wan2gp", "video", video(f"shot {i}", num_inference_steps=8)) for i in range(2)]
        done = [h.wait(20) for h in jobs]
        assert all(j.state is JobState.SUCCEEDED for j in done), [j.error for j in done]
        assert {j.server for j in done} == {a.url, b.url}
        assert a.engine.busy_refusals == b.engine.busy_refusals == 0
        rt.stop()


def test_an_unreachable_server_fails_fast_saying_so(runtime_for) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rt = runtime_for(f"http://127.0.0.1:{port}/mcp")
    started = time.monotonic()
    job = rt.submit("wan2gp", "video", video()).wait(10)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "backend_unavailable"
    assert f"127.0.0.1:{port}" in job.error.message and time.monotonic() - started < 3
    health = rt.check_health("wan2gp").result(10)
    assert not health.ok and "Cannot reach Wan2GP" in health.message


def test_a_url_that_is_not_an_mcp_server(runtime_for, raw_server) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    missing = raw_server(lambda body: web.Response(status=404, text="Not Found"))
    job = runtime_for(missing.url).submit("wan2gp", "video", video()).wait(10)
    assert job.error is not None and "no MCP endpoint" in job.error.message


def test_malformed_and_oversized_answers_are_protocol_errors(runtime_for, raw_server) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    garbage = raw_server(lambda body: web.Response(text="{not json", content_type="application/json"))
    started = time.monotonic()
    job = runtime_for(garbage.url).submit("wan2gp", "video", video()).wait(10)
    assert job.error is not None and job.error.code == "protocol_error", job.error
    assert time.monotonic() - started < 4  # never waits for a deadline

    huge = raw_server(lambda body: web.Response(body=b" " * (17 * 1024 * 1024), content_type="application/json"))
    job = runtime_for(huge.url).submit("wan2gp", "video", video()).wait(10)
    assert job.error is not None and job.error.code == "protocol_error" and "large" in job.error.message


def test_the_transport_is_chosen_by_url_or_option() -> None:
    client = wan.Wan2gpClient(BackendConfig(name="wan2gp", urls="http://127.0.0.1:7866/mcp"))
    assert client.transport_kind("http://127.0.0.1:7866/mcp") == "mcp"
    assert client.transport_kind("http://127.0.0.1:7866/mcp/") == "mcp"
    assert client.transport_kind("http://127.0.0.1:7860") == "gradio"
    forced = wan.Wan2gpClient(BackendConfig(name="wan2gp", urls="http://h:1", options={"transport": "mcp"}))
    assert forced.transport_kind("http://h:1") == "mcp"


def test_health_and_a_clean_stop(standin, runtime_for: Callable[..., Runtime]) -> None:  # type: ignore[no-untyped-def]
    before = thread_names()
    rt = runtime_for(standin.url)
    info = rt.check_health("wan2gp").result(10)
    assert info.ok and "WanGP over MCP" in info.message and info.latency_ms is not None
    assert rt.backend_states["wan2gp"][0] == "connected"
    assert rt.submit("wan2gp", "video", video()).wait(20).state is JobState.SUCCEEDED
    rt.stop()
    left = {n for n in thread_names() - before if not n.startswith("wan2gp-standin")}
    assert not left, left


def test_a_server_that_restarts_mid_job_has_lost_it(runtime_for) -> None:  # type: ignore[no-untyped-def]
    first = StandinServer(step_delay=0.05).start()
    try:
        rt = runtime_for(first.url, lost_after=10.0)
        h = rt.submit("wan2gp", "video", video(num_inference_steps=200))
        assert pump_until(rt, lambda: (h.status().progress.step or 0) >= 2, timeout=10)
    finally:
        first.stop()
    with StandinServer(port=first.port, step_delay=0.01):  # the same address, a fresh Wan2GP
        job = h.wait(15)
    assert job.state is JobState.FAILED and job.error is not None
    assert "no longer knows the job" in job.error.message and job.error.retryable


def test_get_status_asks_the_server_about_a_job(wan_rt: Runtime) -> None:
    from movie_director.clients.wan2gp.settings import Wan2gpSettings

    job = wan_rt.submit("wan2gp", "video", video(video_length=5)).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    client = wan_rt.client("wan2gp")
    status = wan_rt.call(client.get_status(job)).result(10)
    assert status.state is JobState.SUCCEEDED
    never_sent = job.model_copy(update={"id": "x", "server": None, "remote_id": None})
    assert wan_rt.call(client.get_status(never_sent)).result(10).state is None
    assert Wan2gpSettings(prompt="x", resolution="832x480").size == (832, 480)
