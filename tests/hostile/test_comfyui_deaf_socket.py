"""The deaf socket: ComfyUI keeps one socket per client id and the handler of a closing socket unregisters that id
unconditionally (server.py ``websocket_handler``'s ``finally``). After a half-open drop the server notices the old
socket late, so a client that reconnected under the same id loses its NEW registration: the socket stays open but
hears nothing. The emulator reproduces that; the client survives it by taking a fresh id per connection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import ComfyEmulator, EmulatorThread
from movie_director.clients.faultproxy import FaultProxy
from movie_director.runtime import BackendConfig, Job, JobState, RetryPolicy, Runtime
from support import eventually, txt2img

CLEANUP_DELAY = 1.0  # how late the server notices that the old socket closed
SILENCE_CHECK = 15.0  # the client's fallback: with no message for this long it asks /history itself


async def _drain(ws: aiohttp.ClientWebSocketResponse, quiet: float) -> list[str]:
    """Every text frame until none arrives for ``quiet`` seconds."""
    frames = []
    while True:
        try:
            msg = await ws.receive(timeout=quiet)
        except TimeoutError:
            return frames
        if msg.type != aiohttp.WSMsgType.TEXT:
            return frames
        frames.append(msg.data)


def test_the_emulator_silences_a_reconnect_under_the_same_id() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        async with ComfyEmulator(step_delay=0.0, socket_cleanup_delay=0.3) as emu, aiohttp.ClientSession() as http:
            old = await http.ws_connect(f"{emu.url}/ws?clientId=same")
            await old.receive(timeout=5)  # status: registered
            await old.close()  # the old socket goes; its handler's clean-up comes late
            same = await http.ws_connect(f"{emu.url}/ws?clientId=same")
            fresh = await http.ws_connect(f"{emu.url}/ws?clientId=fresh")
            for _ in range(100):  # bounded: the late clean-up of the old socket
                if emu.socket_cleanups >= 1:
                    break
                await asyncio.sleep(0.05)
            assert emu.socket_cleanups == 1
            await _drain(same, 0.2)
            await _drain(fresh, 0.2)
            for client_id, prompt_id in (("same", "p-same"), ("fresh", "p-fresh")):
                body = {"prompt": txt2img(steps=2), "client_id": client_id, "prompt_id": prompt_id}
                async with http.post(f"{emu.url}/prompt", json=body) as resp:
                    assert resp.status == 200
            for _ in range(200):
                if {"p-same", "p-fresh"} <= set(emu.history):
                    break
                await asyncio.sleep(0.05)
            heard_same, heard_fresh = await _drain(same, 0.5), await _drain(fresh, 0.5)
            for ws in (same, fresh):
                await ws.close()
            return heard_same, heard_fresh

    heard_same, heard_fresh = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert heard_same == [], "the reconnect under the same id should be deaf, as on the real server"
    assert any('"p-fresh"' in f and '"executing"' in f for f in heard_fresh)


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    emu = EmulatorThread(step_delay=0.05, socket_cleanup_delay=CLEANUP_DELAY).start()
    yield emu
    emu.stop()


def test_the_client_hears_every_job_after_a_half_open_drop(emulator: EmulatorThread, tmp_path: Path) -> None:
    with FaultProxy(urlsplit(emulator.url).port or 0) as proxy:
        rt = Runtime(output_root=tmp_path / "out")
        try:
            config = BackendConfig(name="comfyui", urls=proxy.url, concurrency=1, retry=RetryPolicy(base_delay=0.05))
            rt.register_backend("comfyui", comfy.factory, config)
            first = rt.submit("comfyui", "image", {"workflow": txt2img(steps=2)}).wait(30)
            assert first.state is JobState.SUCCEEDED, first.error
            cleanups = emulator.emulator.socket_cleanups
            proxy.reset_all()  # the socket drops; we reconnect at once, the server cleans up a second later
            assert eventually(lambda: emulator.emulator.socket_cleanups > cleanups, timeout=10)

            seen: list[Job] = []
            start = time.monotonic()
            handle = rt.submit("comfyui", "image", {"workflow": txt2img(steps=6, seed=2)}, on_progress=seen.append)
            job = handle.wait(30)
            elapsed = time.monotonic() - start
        finally:
            rt.stop()
    assert job.state is JobState.SUCCEEDED, job.error
    assert elapsed < SILENCE_CHECK / 2, f"the job finished only through the silence fallback ({elapsed:.1f} s)"
    assert any(j.progress.step is not None for j in seen), "no progress came over the socket: it is deaf"
    assert any(j.progress.preview for j in seen), "no preview came over the socket: it is deaf"


def test_a_socket_gone_silent_is_caught_by_the_silence_watch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A socket that stays open but hears nothing of our prompt (any server that lost our registration): the
    silence watch beside the reader asks /history and the job ends, once per silent period, not per frame."""
    from movie_director.clients.comfyui import connection

    monkeypatch.setattr(connection, "SILENCE_CHECK", 0.5)
    with EmulatorThread(step_delay=0.0) as emu:
        server = emu.emulator
        speak = server.send
        muted: list[str] = []

        def deaf(event: str, data: object, sid: str | None) -> None:
            if sid is None:  # broadcasts (queue status) still come: the socket is alive, just deaf to our prompt
                speak(event, data, sid)
            else:
                muted.append(event)

        server.send = deaf  # type: ignore[method-assign]
        rt = Runtime(output_root=tmp_path / "out")
        try:
            rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emu.url))
            start = time.monotonic()
            job = rt.submit("comfyui", "image", {"workflow": txt2img(steps=2)}).wait(10)
            elapsed = time.monotonic() - start
        finally:
            rt.stop()
    assert "executing" in muted, "the stand-in did not run the prompt silently"
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.files, "the silence watch found the prompt finished but fetched no output"
    assert elapsed >= 0.5, "the job cannot have ended through the socket: it heard nothing"
