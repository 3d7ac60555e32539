"""The ComfyUI client against the emulator: the whole life of a prompt, its failures and its cancellations."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.runtime import BackendConfig, Job, JobState, Runtime
from PIL import Image
from support import pump_until, txt2img


def comfy_client(rt: Runtime) -> comfy.ComfyClient:
    client = rt.client("comfyui")
    assert isinstance(client, comfy.ComfyClient)
    return client


def on_loop(rt: Runtime, fn):  # type: ignore[no-untyped-def]
    """Run ``fn()`` on the runtime's loop (client state lives there)."""

    async def call():  # type: ignore[no-untyped-def]
        return fn()

    return rt.call(call()).result(5)


def test_generates_an_image_with_progress_and_previews(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    emulator.step_delay = 0.05  # progress is coalesced between pumps: give the pump time to see each step
    seen: list[Job] = []
    h = comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=6)}, on_progress=seen.append)
    assert pump_until(comfy_rt, lambda: h.done, timeout=20)
    job = h.wait(1)
    assert job.state is JobState.SUCCEEDED, job.error
    (out,) = job.outputs.files
    assert out.media_type == "image/png" and out.node == "7"
    path = Path(out.path)
    assert path.is_file() and path.parent == Path(comfy_rt.output_root) / "comfyui" / job.id
    with Image.open(path) as img:
        assert img.size == (96, 64)
    assert seen, "no progress was reported"
    assert all(j.progress.fraction < 1.0 for j in seen)
    assert any(j.progress.stage == "sampling" and j.progress.total == 6 for j in seen)
    assert any(j.progress.preview and j.progress.preview_media_type == "image/jpeg" for j in seen)
    assert job.progress.fraction == 1.0


def test_prompt_is_sent_with_its_connections_client_id_and_the_job_id(
    comfy_rt: Runtime, emulator: EmulatorThread
) -> None:
    job = comfy_rt.submit("comfyui", "image", {"workflow": txt2img()}).wait(20)
    assert job.remote_id == job.id
    entry = emulator.emulator.history[job.id]
    conn_id = on_loop(comfy_rt, lambda: comfy_client(comfy_rt).connection(emulator.url).client_id)
    assert entry["prompt"][3]["client_id"] == conn_id


def test_preflight_names_every_missing_node_type_and_model(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    wf = txt2img()
    wf["1"]["inputs"]["ckpt_name"] = "sdxl-base.safetensors"
    wf["9"] = {"class_type": "UltimateUpscale", "inputs": {}}
    job = comfy_rt.submit("comfyui", "image", {"workflow": wf}).wait(10)
    assert job.state is JobState.FAILED and job.error and job.error.code == "invalid_request"
    assert "sdxl-base.safetensors" in job.error.message and "UltimateUpscale" in job.error.message
    assert job.id not in emulator.emulator.history  # refused before submit


def test_validation_errors_keep_comfyui_node_errors(comfy_rt: Runtime) -> None:
    job = comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=100_000)}).wait(10)
    assert job.state is JobState.FAILED and job.error
    assert "steps" in job.error.message and "bigger than max" in job.error.message
    node = job.error.details["node_errors"]["5"]
    assert node["class_type"] == "KSampler" and node["errors"][0]["type"] == "value_bigger_than_max"


def test_execution_error_fails_the_job_naming_the_node(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    emulator.fail_next = True
    job = comfy_rt.submit("comfyui", "image", {"workflow": txt2img()}).wait(10)
    assert job.state is JobState.FAILED and job.error and job.error.code == "job_failed"
    assert "failed" in job.error.message and job.error.details.get("node_type")


def _wait_running(rt: Runtime, h) -> None:  # type: ignore[no-untyped-def]
    assert pump_until(rt, lambda: h.status().progress.step is not None, timeout=10)


def test_cancel_before_sending_never_reaches_the_server(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    comfy_rt.pause("comfyui")
    h = comfy_rt.submit("comfyui", "image", {"workflow": txt2img()})
    h.cancel()
    job = h.wait(2)
    assert job.state is JobState.CANCELLED and job.submitted_at is None
    comfy_rt.resume("comfyui")
    assert job.id not in emulator.emulator.history


def test_cancel_while_pending_deletes_from_server_queue(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    emulator.step_delay = 0.2
    first = comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=20, seed=1)})
    _wait_running(comfy_rt, first)
    second = comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=20, seed=2)})
    assert pump_until(comfy_rt, lambda: second.status().state is JobState.SUBMITTED)
    start = time.monotonic()
    second.cancel()
    assert second.wait(2).state is JobState.CANCELLED
    assert time.monotonic() - start < 1.0

    assert pump_until(comfy_rt, lambda: second.id not in emulator.call(_queue_ids(emulator)), timeout=2)
    emulator.step_delay = 0.0
    assert first.wait(20).state is JobState.SUCCEEDED  # cancelling one prompt never touches another
    assert second.id not in emulator.emulator.history


async def _queue_ids(emulator: EmulatorThread) -> list[str]:
    async with __import__("aiohttp").ClientSession() as s, s.get(f"{emulator.url}/queue") as r:
        body = await r.json()
    return [item[1] for item in body["queue_running"] + body["queue_pending"]]


def test_cancel_while_running_interrupts_that_prompt(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    emulator.step_delay = 0.2
    h = comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=50)})
    _wait_running(comfy_rt, h)
    start = time.monotonic()
    h.cancel()
    assert h.wait(2).state is JobState.CANCELLED
    assert time.monotonic() - start < 1.0
    # The server stops its work: the prompt ends interrupted in its history.
    assert pump_until(comfy_rt, lambda: h.id in emulator.emulator.history, timeout=5)
    status = emulator.emulator.history[h.id]["status"]
    assert status["status_str"] == "error"
    assert any(m[0] == "execution_interrupted" for m in status["messages"])


def test_dropped_websocket_mid_run_still_finishes(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    emulator.drop_ws_after_steps = 2
    emulator.step_delay = 0.05
    h = comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=8)})
    job = h.wait(20)
    assert job.state is JobState.SUCCEEDED and len(job.outputs.files) == 1
    assert on_loop(comfy_rt, lambda: comfy_client(comfy_rt).connection(emulator.url).reconnects) >= 1


def test_server_restart_resubmits_a_lost_prompt_once(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    emulator.step_delay = 0.1
    h = comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=10)})
    _wait_running(comfy_rt, h)
    emulator.restart()
    emulator.step_delay = 0.01
    job = h.wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    assert any("sent it again" in line for line in job.log)


def test_a_prompt_lost_twice_fails_with_a_clear_error(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    emulator.step_delay = 0.2
    h = comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=30)})
    _wait_running(comfy_rt, h)
    emulator.restart()
    assert pump_until(comfy_rt, lambda: any("sent it again" in line for line in h.status().log), timeout=10)
    _wait_running(comfy_rt, h)
    emulator.restart()
    job = h.wait(30)
    assert job.state is JobState.FAILED and job.error and "lost the job twice" in job.error.message


def test_a_malformed_frame_is_skipped_and_the_job_finishes(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    emulator.step_delay = 0.05
    h = comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=6)})
    _wait_running(comfy_rt, h)
    emulator.malformed_frame_next = True
    job = h.wait(20)
    assert job.state is JobState.SUCCEEDED
    assert on_loop(comfy_rt, lambda: comfy_client(comfy_rt).connection(emulator.url).protocol_errors) == 1
    assert any("malformed" in line for line in job.log)


def test_uploads_are_deduplicated_by_content(comfy_rt: Runtime, emulator: EmulatorThread, tmp_path: Path) -> None:
    src = tmp_path / "frame.png"
    Image.new("RGB", (32, 24), (200, 10, 10)).save(src)
    copy = tmp_path / "same-pixels.png"
    copy.write_bytes(src.read_bytes())
    wf = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "placeholder"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inv"}},
    }
    client = comfy_client(comfy_rt)
    conn = client.connection(emulator.url)
    name1 = comfy_rt.call(client.upload(conn, src)).result(5)
    name2 = comfy_rt.call(client.upload(conn, copy)).result(5)
    assert name1 == name2
    assert len(list(emulator.folders.input_dir.iterdir())) == 1
    wf["1"]["inputs"]["image"] = name1
    job = comfy_rt.submit("comfyui", "image", {"workflow": wf}).wait(10)
    assert job.state is JobState.SUCCEEDED
    with Image.open(job.outputs.files[0].path) as img:
        assert img.getpixel((0, 0)) == (55, 245, 245)


def test_jobs_go_to_the_least_busy_reachable_server(tmp_path: Path) -> None:
    with EmulatorThread(step_delay=0.2) as busy, EmulatorThread(step_delay=0.01) as idle:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens there once closed
        rt = Runtime(output_root=tmp_path)
        urls = f"{dead} {busy.url} {idle.url}"
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=urls, concurrency=4))
        try:
            # Fill the busy server's queue directly, as another user would.
            for seed in range(3):
                busy.call(_post(busy.url, txt2img(steps=20, seed=seed)))
            job = rt.submit("comfyui", "image", {"workflow": txt2img()}).wait(20)
            assert job.state is JobState.SUCCEEDED and job.server == idle.url
            conn = on_loop(rt, lambda: comfy_client_any(rt).connection(dead))
            assert conn.down_until > time.monotonic()
        finally:
            rt.stop()


def comfy_client_any(rt: Runtime) -> comfy.ComfyClient:
    return comfy_client(rt)


async def _post(url: str, wf: dict) -> None:  # type: ignore[type-arg]
    import aiohttp

    async with aiohttp.ClientSession() as s, s.post(f"{url}/prompt", json={"prompt": wf}) as r:
        assert r.status == 200


def test_health_reports_the_server_version(comfy_rt: Runtime) -> None:
    info = comfy_rt.check_health("comfyui").result(5)
    assert info.ok and "ComfyUI" in info.message and info.version
    comfy_rt.pump()
    assert comfy_rt.backend_states["comfyui"][0] == "connected"


def test_get_status_follows_a_prompt(comfy_rt: Runtime) -> None:
    h = comfy_rt.submit("comfyui", "image", {"workflow": txt2img()})
    job = h.wait(20)
    status = comfy_rt.call(comfy_client(comfy_rt).get_status(job)).result(5)
    assert status.state is JobState.SUCCEEDED
    unknown = job.model_copy(update={"id": "00000000-0000-0000-0000-000000000000"})
    assert comfy_rt.call(comfy_client(comfy_rt).get_status(unknown)).result(5).state is None


def test_unreachable_server_fails_cleanly(tmp_path: Path) -> None:
    rt = Runtime(output_root=tmp_path)
    rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls="http://127.0.0.1:9"))
    try:
        job = rt.submit("comfyui", "image", {"workflow": txt2img()}).wait(30)
        assert job.state is JobState.FAILED and job.error and job.error.code == "backend_unavailable"
        assert "127.0.0.1:9" in job.error.message
        assert not rt.check_health("comfyui").result(10).ok
    finally:
        rt.stop()


@pytest.mark.parametrize("name", ["../../evil.png", "/etc/passwd", "..\\..\\win.png", "C:\\x\\y.png", "ﬁ\u202egnp.exe"])
def test_server_file_names_never_escape_the_output_folder(comfy_rt: Runtime, tmp_path: Path, name: str) -> None:
    from aiohttp import web
    from movie_director.clients.comfyui.protocol import FileRef
    from movie_director.clients.serving import AppThread

    async def view(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG\r\n\x1a\nfake", content_type="image/png")

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_get("/view", view)
        return app

    folder = tmp_path / "job"
    folder.mkdir()
    with AppThread(make_app) as evil:
        client = comfy_client(comfy_rt)
        conn = client.connection(evil.url)
        out = comfy_rt.call(client.download(conn, "9", FileRef(filename=name), folder)).result(5)
    path = Path(out.path)
    assert path.parent == folder.resolve() and path.is_file()
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [path.name]


def test_runtime_stop_closes_sockets_and_listeners(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    from support import client_sockets_to, eventually, open_fds, thread_names

    port = int(emulator.url.rsplit(":", 1)[1])
    before = open_fds()
    comfy_rt.submit("comfyui", "image", {"workflow": txt2img()}).wait(20)
    assert client_sockets_to(port) >= 2  # the pooled HTTP connection and the event socket
    comfy_rt.stop()
    assert "movie-director-loop" not in thread_names()
    assert client_sockets_to(port) == 0  # closed by stop() itself, before it returns
    # The emulator in this process closes its side of each connection a moment later.
    assert eventually(lambda: open_fds() <= before), (open_fds(), before)


def test_animated_outputs_are_downloaded_with_their_media_type(comfy_rt: Runtime) -> None:
    wf = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 24, "batch_size": 4, "color": 255}},
        "2": {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {"images": ["1", 0], "filename_prefix": "anim", "fps": 8.0, "lossless": False, "quality": 80,
                       "method": "default"},
        },
    }  # fmt: skip
    job = comfy_rt.submit("comfyui", "image", {"workflow": wf}).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    (out,) = job.outputs.files
    assert out.media_type == "image/webp" and out.name.endswith(".webp")
    with Image.open(out.path) as img:
        assert img.format == "WEBP" and img.size == (32, 24)


def test_object_info_is_fetched_once_and_cached(comfy_rt: Runtime, emulator: EmulatorThread) -> None:
    client = comfy_client(comfy_rt)
    info = comfy_rt.call(client.object_info()).result(10)
    assert "KSampler" in info and "input" in info["KSampler"]
    again = comfy_rt.call(client.object_info(emulator.url)).result(10)
    assert again is info  # served from the connection's cache, no second request


def test_finished_jobs_leave_nothing_behind_in_the_client(comfy_rt: Runtime) -> None:
    """A session that makes thousands of images must not keep one entry per job for ever."""
    handles = [comfy_rt.submit("comfyui", "image", {"workflow": txt2img(steps=1)}) for _ in range(5)]
    assert all(h.wait(30).state is JobState.SUCCEEDED for h in handles)
    client = on_loop(comfy_rt, lambda: comfy_client(comfy_rt))
    assert on_loop(comfy_rt, lambda: len(client._job_conn)) == 0
