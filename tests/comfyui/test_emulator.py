"""The ComfyUI emulator against the recorded 0.3.75 transcripts: same routes, bodies and event sequences.

Every wait is bounded by a timeout and driven by the frames or answers it waits for; nothing sleeps hoping.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from movie_director.clients.comfyui import protocol
from movie_director.clients.comfyui.emulator import ComfyEmulator, EmulatorThread, render_picture
from movie_director.runtime.errors import ProtocolError
from PIL import Image, ImageFile

_LOCAL = Path(__file__).parent / "data" / "comfyui-0.3.75.json"
_SHARED = Path("/work/shared/protocols/comfyui-transcripts/comfyui-0.3.75.json")
TRANSCRIPT: dict[str, Any] = json.loads((_LOCAL if _LOCAL.exists() else _SHARED).read_text())
SCENARIOS = {s["scenario"]: s for s in TRANSCRIPT["scenarios"]}
EDGE = TRANSCRIPT["http_edge_cases"]
RECORDED_PROMPT: dict[str, Any] = next(iter(SCENARIOS["success"]["history"].values()))["prompt"][2]

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def recorded(steps: int = 4, delay: float = 0.05, prefix: str = "md_rec") -> dict[str, Any]:
    prompt = json.loads(json.dumps(RECORDED_PROMPT))
    prompt["2"]["inputs"].update(steps=steps, delay=delay)
    prompt["4"]["inputs"]["filename_prefix"] = prefix
    return prompt


def txt2img(text: str = "a red fox in the snow", seed: int = 7, steps: int = 3, size: int = 96) -> dict[str, Any]:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "emulator-v1.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": text, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "t2i", "images": ["8", 0]}},
    }


def token(frame: dict[str, Any]) -> str:
    return f"bin{int(frame['head_hex'][:8], 16)}" if frame.get("binary") else frame["type"]


def tokens_of(name: str) -> list[str]:
    return [token(f) for f in SCENARIOS[name]["frames"]]


Frame = protocol.WsMessage | protocol.PreviewFrame | protocol.TextFrame | protocol.UnknownFrame


def tok(frame: Frame) -> str:
    return frame.type if isinstance(frame, protocol.WsMessage) else f"bin{frame.event}"


class Client:
    """One websocket client of the emulator, as our real client will be."""

    def __init__(self, session: aiohttp.ClientSession, url: str, client_id: str | None = None) -> None:
        self.session = session
        self.url = url
        self.client_id = client_id or str(uuid.uuid4())
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.frames: list[Frame] = []

    async def connect(self, flags: bool = False) -> protocol.WsMessage:
        self.ws = await self.session.ws_connect(f"{self.url}/ws?clientId={self.client_id}", max_msg_size=0)
        if flags:
            await self.ws.send_str(json.dumps({"type": "feature_flags", "data": protocol.CLIENT_FEATURE_FLAGS}))
        first = await self.recv()
        assert isinstance(first, protocol.WsMessage)
        return first

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()

    async def recv(self, timeout: float = 10.0) -> Frame:
        assert self.ws is not None
        msg = await self.ws.receive(timeout)
        if msg.type == aiohttp.WSMsgType.TEXT:
            frame: Frame = protocol.parse_message(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            frame = protocol.parse_binary_frame(msg.data)
        else:
            raise ConnectionError(f"websocket ended: {msg.type!r}")
        self.frames.append(frame)
        return frame

    async def recv_until(self, predicate: Callable[[Frame], bool], timeout: float = 15.0) -> list[Frame]:
        got: list[Frame] = []
        deadline = time.monotonic() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            got.append(frame)
            if predicate(frame):
                return got

    async def until_done(self, prompt_id: str, timeout: float = 15.0) -> list[Frame]:
        def done(f: Frame) -> bool:
            return isinstance(f, protocol.WsMessage) and f.is_done and f.prompt_id == prompt_id

        return await self.recv_until(done, timeout)

    async def post(self, prompt: Any, **extra: Any) -> tuple[int, Any]:
        body = {"prompt": prompt, "client_id": self.client_id, **extra}
        async with self.session.post(f"{self.url}/prompt", json=body) as resp:
            return resp.status, await resp.json()

    async def submit(self, prompt: Any, **extra: Any) -> str:
        status, body = await self.post(prompt, **extra)
        assert status == 200, body
        return str(body["prompt_id"])

    async def get_json(self, path: str) -> Any:
        async with self.session.get(f"{self.url}{path}") as resp:
            assert resp.status == 200, path
            return await resp.json()

    async def history(self, prompt_id: str) -> dict[str, Any]:
        return await self.get_json(f"/history/{prompt_id}")


async def with_emulator(body: Callable[[ComfyEmulator, Client], Awaitable[T]], **options: Any) -> T:
    async with ComfyEmulator(**options) as emu, aiohttp.ClientSession() as session:
        client = Client(session, emu.url)
        try:
            return await body(emu, client)
        finally:
            await client.close()


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll an HTTP condition with a deadline (the emulator's state is only observable through its API)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


# ---- event sequences


def test_success_cached_and_metadata_runs_replay_the_transcripts() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        first = await client.connect()
        assert isinstance(first.data, protocol.StatusData) and first.data.sid == client.client_id
        pid = await client.submit(recorded(4), prompt_id="my-own-id-1")  # 0.3.75 takes any string
        assert pid == "my-own-id-1"
        frames = [first, *await client.until_done(pid)]
        assert [tok(f) for f in frames] == tokens_of("success")
        history = (await client.history(pid))[pid]  # complete by the time executing null arrived
        assert history["status"] == {
            "status_str": "success",
            "completed": True,
            "messages": history["status"]["messages"],
        }
        assert [m[0] for m in history["status"]["messages"]] == [
            "execution_start",
            "execution_cached",
            "execution_success",
        ]
        assert history["outputs"] == {
            "4": {"images": [{"filename": "md_rec_00001_.png", "subfolder": "", "type": "output"}]}
        }
        assert history["meta"] == next(iter(SCENARIOS["success"]["history"].values()))["meta"]
        assert history["prompt"][0] == 0 and history["prompt"][1] == pid and history["prompt"][4] == ["4"]
        assert set(history["prompt"][3]) == {"client_id", "create_time"}
        for frame in frames:
            if isinstance(frame, protocol.PreviewFrame):
                assert frame.media_type == "image/jpeg"
                Image.open(io.BytesIO(frame.image)).verify()
        await client.close()

        client.ws = None
        again = await client.connect()
        pid2 = await client.submit(recorded(4))
        frames2 = [again, *await client.until_done(pid2)]
        assert [tok(f) for f in frames2] == tokens_of("success_cached_again")
        cached = next(f for f in frames2 if f.type == "execution_cached")  # type: ignore[union-attr]
        assert cached.data.nodes == ["1", "2", "3", "4"]  # type: ignore[union-attr]
        executed = next(f for f in frames2 if f.type == "executed")  # type: ignore[union-attr]
        assert executed.data.files()[0].filename == "md_rec_00001_.png"  # type: ignore[union-attr]
        await client.close()

        meta_client = Client(client.session, emu.url)
        try:
            hello = await meta_client.connect(flags=True)
            pid3 = await meta_client.submit(recorded(3))
            frames3 = [hello, *await meta_client.until_done(pid3)]
            assert [tok(f) for f in frames3] == tokens_of("success_preview_metadata")
            flags = frames3[1]
            assert isinstance(flags, protocol.WsMessage) and flags.raw["data"] == protocol.SERVER_FEATURE_FLAGS
            previews = [f for f in frames3 if isinstance(f, protocol.PreviewFrame)]
            assert len(previews) == 3
            assert all(p.prompt_id == pid3 and p.node_id == "2" and p.media_type == "image/jpeg" for p in previews)
            done = (await meta_client.history(pid3))[pid3]
            assert done["outputs"]["4"]["images"][0]["filename"] == "md_rec_00002_.png"
        finally:
            await meta_client.close()

    run(with_emulator(body))


def test_progress_state_and_message_fields_match_the_transcript() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        pid = await client.submit(recorded(4))
        frames = await client.until_done(pid)
        mine = [f.raw for f in frames if isinstance(f, protocol.WsMessage)]
        theirs = text_frames = [f for f in SCENARIOS["success"]["frames"][1:] if not f.get("binary")]
        assert len(mine) == len(text_frames)
        for a, b in zip(mine, theirs, strict=True):
            assert a["type"] == b["type"] and set(a["data"]) == set(b["data"])
            if a["type"] == "progress_state":
                got = {k: (v["value"], v["max"], v["state"], sorted(v)) for k, v in a["data"]["nodes"].items()}
                want = {k: (v["value"], v["max"], v["state"], sorted(v)) for k, v in b["data"]["nodes"].items()}
                assert got == want

    run(with_emulator(body))


def test_txt2img_workflow_draws_the_prompt() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        pid = await client.submit(txt2img(steps=5))
        frames = await client.until_done(pid)
        progress = [f for f in frames if isinstance(f, protocol.WsMessage) and f.type == "progress"]
        assert [(p.data.value, p.data.max, p.data.node) for p in progress] == [(i, 5, "3") for i in range(1, 6)]  # type: ignore[union-attr]
        assert sum(isinstance(f, protocol.PreviewFrame) for f in frames) == 5
        executing = [f.data.node for f in frames if isinstance(f, protocol.WsMessage) and f.type == "executing"]  # type: ignore[union-attr]
        assert sorted(executing[:-1]) == ["3", "4", "5", "6", "7", "8", "9"] and executing[-1] is None
        assert executing.index("3") < executing.index("8") < executing.index("9")
        entry = protocol.parse_history(await client.history(pid))[pid]
        assert entry.succeeded
        (ref,) = entry.files()
        async with client.session.get(f"{emu.url}/view", params=ref.model_dump()) as resp:
            assert resp.status == 200 and resp.content_type == "image/png"
            png = Image.open(io.BytesIO(await resp.read()))
            assert png.size == (96, 96)
            assert json.loads(png.info["prompt"])["6"]["inputs"]["text"] == "a red fox in the snow"
            assert png.convert("RGB").tobytes() == render_picture("a red fox in the snow", 7, 96, 96).tobytes()
        other = await client.submit(txt2img(seed=8, steps=1))
        await client.until_done(other)
        assert protocol.parse_history(await client.history(other))[other].files()[0].filename == "t2i_00002_.png"

    run(with_emulator(body, step_delay=0.001))


def test_without_client_id_progress_goes_to_every_socket() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        async with client.session.post(f"{emu.url}/prompt", json={"prompt": recorded(2, 0.01)}) as resp:
            pid = (await resp.json())["prompt_id"]

        def last_status(f: Frame) -> bool:
            return isinstance(f, protocol.WsMessage) and f.type == "status" and f.data.queue_remaining == 0  # type: ignore[union-attr]

        frames = await client.recv_until(last_status)
        kinds = {tok(f) for f in frames}
        assert {"progress", "progress_state", "bin1"} <= kinds
        assert not kinds & {"executing", "executed", "execution_start", "execution_success"}
        assert (await client.history(pid))[pid]["status"]["status_str"] == "success"

    run(with_emulator(body))


def test_a_new_socket_with_the_same_client_id_takes_the_events() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        newer = Client(client.session, emu.url, client.client_id)
        try:
            await newer.connect()
            pid = await newer.submit(recorded(1, 0.0))
            await newer.until_done(pid)
            with pytest.raises(asyncio.TimeoutError):  # the old socket only saw broadcast status frames
                while True:
                    frame = await client.recv(timeout=0.3)
                    assert isinstance(frame, protocol.WsMessage) and frame.type == "status"
        finally:
            await newer.close()

    run(with_emulator(body))


# ---- failures


def test_execution_error_matches_the_transcript() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        form = aiohttp.FormData()
        form.add_field("image", b"this is not a png", filename="bad.png", content_type="image/png")
        async with client.session.post(f"{emu.url}/upload/image", data=form) as resp:
            assert await resp.json() == SCENARIOS["execution_error"]["upload_response"]
        first = await client.connect()
        recorded_prompt = next(iter(SCENARIOS["execution_error"]["history"].values()))["prompt"][2]
        pid = await client.submit(recorded_prompt)
        frames = [first, *await client.until_done(pid)]
        assert [tok(f) for f in frames] == tokens_of("execution_error")
        err = next(f for f in frames if isinstance(f, protocol.WsMessage) and f.type == "execution_error")
        want = next(f for f in SCENARIOS["execution_error"]["frames"] if f.get("type") == "execution_error")["data"]
        assert set(err.raw["data"]) == set(want)
        data = err.data
        assert isinstance(data, protocol.ExecutionErrorData)
        assert (data.node_id, data.node_type, data.executed) == ("1", "LoadImage", [])
        assert data.exception_type == "PIL.UnidentifiedImageError"
        assert data.exception_message.startswith("cannot identify image file") and data.exception_message.endswith(
            "bad.png'\n"
        )
        assert data.current_inputs == {"image": ["bad.png"]} and data.current_outputs == ["1", "2"]
        assert data.traceback and all(isinstance(line, str) for line in data.traceback)
        entry = (await client.history(pid))[pid]
        assert entry["status"]["status_str"] == "error" and entry["status"]["completed"] is False
        assert entry["outputs"] == {} and entry["meta"] == {}
        assert [m[0] for m in entry["status"]["messages"]] == ["execution_start", "execution_cached", "execution_error"]

    run(with_emulator(body))


def test_fail_next_fails_one_prompt_only() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        emu.fail_next = True
        pid = await client.submit(recorded(1, 0.0))
        frames = await client.until_done(pid)
        err = next(f for f in frames if isinstance(f, protocol.WsMessage) and f.type == "execution_error")
        assert err.data.exception_type == "RuntimeError" and err.data.node_id == "1"  # type: ignore[union-attr]
        assert emu.fail_next is False
        ok = await client.submit(recorded(1, 0.0))
        assert "execution_success" in [tok(f) for f in await client.until_done(ok)]

    run(with_emulator(body))


def test_interrupt_is_scoped_by_prompt_id() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        warm = await client.submit(recorded(1, 0.0))  # node 1 is cached for the next run, as in the transcript
        await client.until_done(warm)
        pid = await client.submit(recorded(100, 0.05))
        await client.recv_until(lambda f: isinstance(f, protocol.WsMessage) and f.type == "progress")
        async with client.session.post(f"{emu.url}/interrupt", json={"prompt_id": "someone-else"}) as resp:
            assert (resp.status, await resp.text()) == tuple(EDGE["interrupt_other"])
        # the run goes on: two more steps arrive
        for _ in range(2):
            await client.recv_until(lambda f: isinstance(f, protocol.WsMessage) and f.type == "progress")
        async with client.session.post(f"{emu.url}/interrupt", json={"prompt_id": pid}) as resp:
            assert resp.status == 200 and await resp.text() == ""
        frames = await client.until_done(pid)
        assert [tok(f) for f in frames][-3:] == ["execution_interrupted", "status", "executing"]
        stopped = next(f for f in frames if tok(f) == "execution_interrupted")
        want = next(f for f in SCENARIOS["interrupted"]["frames"] if f.get("type") == "execution_interrupted")["data"]
        assert isinstance(stopped, protocol.WsMessage) and set(stopped.raw["data"]) == set(want)
        assert (stopped.raw["data"]["node_id"], stopped.raw["data"]["node_type"]) == ("2", "SlowSteps")
        assert stopped.raw["data"]["executed"] == []
        entry = (await client.history(pid))[pid]
        assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}

    run(with_emulator(body))


def test_drop_ws_fault_closes_the_socket_and_the_run_finishes() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        emu.drop_ws_after_steps = 2
        pid = await client.submit(recorded(6, 0.01))
        with pytest.raises(ConnectionError):
            await client.recv_until(lambda f: False)
        assert sum(tok(f) == "progress" for f in client.frames) == 2
        emu.drop_ws_after_steps = None
        await client.close()
        client.ws = None
        await client.connect()  # same clientId: the server routes the rest of the run to us again

        async def finished() -> bool:
            return pid in await client.history(pid)

        await wait_until(finished)
        assert (await client.history(pid))[pid]["status"]["status_str"] == "success"

    run(with_emulator(body))


def test_malformed_frame_fault() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        emu.malformed_frame_next = True
        pid = await client.submit(recorded(1, 0.0))
        with pytest.raises(ProtocolError):
            await client.recv()
        frames = await client.until_done(pid)  # everything after the garbage parses
        assert frames[0].type == "status"  # type: ignore[union-attr]
        assert not emu.malformed_frame_next

    run(with_emulator(body))


def test_restart_loses_queue_and_history_but_keeps_port_and_files() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        pid = await client.submit(recorded(1, 0.0))
        await client.until_done(pid)
        pending = await client.submit(recorded(100, 0.05))
        url = emu.url
        await emu.restart()
        assert emu.url == url
        with pytest.raises(ConnectionError):
            await client.recv_until(lambda f: False)
        assert await client.history(pid) == {} and await client.history(pending) == {}
        assert await client.get_json("/queue") == {"queue_running": [], "queue_pending": []}
        params = {"filename": "md_rec_00001_.png", "type": "output"}
        async with client.session.get(f"{emu.url}/view", params=params) as resp:
            assert resp.status == 200
        client.ws = None
        await client.connect()
        again = await client.submit(recorded(1, 0.0))
        assert (await client.get_json("/queue"))["queue_running"] or await client.until_done(again)

    run(with_emulator(body))


# ---- HTTP routes


def test_prompt_400_bodies_match_the_transcripts() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        too_many = recorded(1000)
        assert await client.post(too_many) == (400, SCENARIOS["invalid_value"]["submit_body"])
        unknown = {"1": {"class_type": "NoSuchNode", "inputs": {}}}
        assert await client.post(unknown) == (400, SCENARIOS["unknown_node"]["submit_body"])
        assert await client.post({}) == tuple(EDGE["empty_prompt"])
        no_outputs = {"1": RECORDED_PROMPT["1"]}
        assert await client.post(no_outputs) == tuple(EDGE["no_outputs"])
        missing = {"1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}}}
        assert await client.post(missing) == tuple(EDGE["missing_input"])

        bad_slot = {"1": {"class_type": "SaveImage", "inputs": {"images": ["2", 3], "filename_prefix": "x"}}}
        bad_slot["2"] = RECORDED_PROMPT["1"]
        status, got = await client.post(bad_slot)
        want = json.loads(EDGE["bad_prompt_id"][1])
        assert status == 400 and got["error"] == want["error"]
        (err,) = got["node_errors"]["1"]["errors"]
        (want_err,) = want["node_errors"]["1"]["errors"]
        assert {k: err[k] for k in ("type", "message", "details")} == {
            k: want_err[k] for k in ("type", "message", "details")
        }
        assert err["extra_info"]["exception_type"] == "IndexError"

        no_class = {"1": {"inputs": {}}}
        status, got = await client.post(no_class)
        assert status == 400 and got["error"]["type"] == "invalid_prompt" and got["error"]["details"] == "Node ID '#1'"
        async with client.session.post(f"{emu.url}/prompt", json={"client_id": "x"}) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["type"] == "no_prompt"
        async with client.session.post(f"{emu.url}/prompt", data=b"{not json") as resp:
            assert resp.status == 400

    run(with_emulator(body))


@pytest.mark.parametrize(
    ("change", "kind", "details"),
    [
        ({"width": -1}, "value_smaller_than_min", "width"),
        ({"width": "wide"}, "invalid_input_type", "width, wide, invalid literal for int() with base 10: 'wide'"),
        ({"image": ["1", 0, 0]}, "bad_linked_input", "image"),
        (
            {"upscale_method": "magic"},
            "value_not_in_list",
            "upscale_method: 'magic' not in " + str(["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]),
        ),
    ],
)
def test_per_input_validation_errors(change: dict[str, Any], kind: str, details: str) -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        prompt = {
            "1": RECORDED_PROMPT["1"],
            "2": {
                "class_type": "ImageScale",
                "inputs": {
                    "image": ["1", 0],
                    "upscale_method": "bilinear",
                    "width": 32,
                    "height": 32,
                    "crop": "center",
                },
            },
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "s"}},
        }
        prompt["2"]["inputs"].update(change)
        status, got = await client.post(prompt)
        assert status == 400 and got["error"]["type"] == "prompt_outputs_failed_validation"
        node = got["node_errors"]["2"]
        assert node["class_type"] == "ImageScale" and node["dependent_outputs"] == ["3"]
        (err,) = node["errors"]
        assert (err["type"], err["details"]) == (kind, details)
        assert err["extra_info"]["input_name"] == next(iter(change))

    run(with_emulator(body))


def test_return_type_mismatch_and_partial_success() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        prompt = txt2img()
        prompt["8"]["inputs"]["vae"] = ["4", 1]  # CLIP into a VAE input
        prompt["10"] = {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": "ok"}}
        prompt["11"] = RECORDED_PROMPT["1"]
        status, got = await client.post(prompt)
        assert status == 200  # one output is fine, so the prompt runs; the bad one is reported
        (err,) = got["node_errors"]["8"]["errors"]
        assert err["type"] == "return_type_mismatch"
        assert err["details"] == "vae, received_type(CLIP) mismatch input_type(VAE)"
        assert got["node_errors"]["8"]["dependent_outputs"] == ["9"]

    run(with_emulator(body))


def test_view_rules_match_the_transcript() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        await client.until_done(await client.submit(recorded(1, 0.0)))
        for query in (
            "filename=nope.png&type=output",
            "filename=../x.png&type=output",
            "filename=md_rec_00001_.png&subfolder=../../etc&type=output",
            "filename=md_rec_00001_.png&type=output",
        ):
            status, _length, disposition, content_type = EDGE[query]
            async with client.session.get(f"{emu.url}/view?{query}") as resp:
                data = await resp.read()
                assert resp.status == status, query
                if status == 200:
                    assert resp.headers["Content-Disposition"] == disposition
                    assert resp.headers["Content-Type"] == content_type
                    assert Image.open(io.BytesIO(data)).size == (64, 48)
                else:
                    assert data == b""
        for query, status in (
            ("type=output", 404),
            ("filename=x.png&type=elsewhere", 400),
            ("filename=/etc/passwd", 400),
        ):
            async with client.session.get(f"{emu.url}/api/view?{query}") as resp:
                assert resp.status == status, query
        async with client.session.get(f"{emu.url}/view?filename=md_rec_00001_.png&preview=jpeg;80") as resp:
            assert resp.status == 200 and resp.content_type == "image/jpeg"
        async with client.session.get(f"{emu.url}/view?filename=md_rec_00001_.png&channel=a") as resp:
            assert resp.status == 200 and Image.open(io.BytesIO(await resp.read())).mode == "RGBA"
        emu.view_delay = 0.2
        start = time.monotonic()
        async with client.session.get(f"{emu.url}/view?filename=md_rec_00001_.png") as resp:
            assert resp.status == 200
        assert time.monotonic() - start >= 0.2

    run(with_emulator(body))


def test_upload_names_clash_unless_identical() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        async def upload(content: bytes, **fields: str) -> tuple[int, Any]:
            form = aiohttp.FormData()
            form.add_field("image", content, filename=fields.pop("filename", "a.png"), content_type="image/png")
            for key, value in fields.items():
                form.add_field(key, value)
            async with client.session.post(f"{emu.url}/upload/image", data=form) as resp:
                return resp.status, (await resp.json() if resp.status == 200 else None)

        png = io.BytesIO()
        Image.new("RGB", (8, 8), (255, 0, 0)).save(png, format="PNG")
        assert await upload(png.getvalue()) == (200, {"name": "a.png", "subfolder": "", "type": "input"})
        assert await upload(png.getvalue()) == (200, {"name": "a.png", "subfolder": "", "type": "input"})
        assert await upload(b"other") == (200, {"name": "a (1).png", "subfolder": "", "type": "input"})
        assert await upload(b"third") == (200, {"name": "a (2).png", "subfolder": "", "type": "input"})
        assert await upload(b"over", overwrite="true") == (200, {"name": "a.png", "subfolder": "", "type": "input"})
        assert (emu.folders.input_dir / "a.png").read_bytes() == b"over"
        assert await upload(b"x", subfolder="shots", type="temp") == (
            200,
            {"name": "a.png", "subfolder": "shots", "type": "temp"},
        )
        assert (emu.folders.temp_dir / "shots" / "a.png").exists()
        assert (await upload(b"x", type="elsewhere"))[0] == 400
        assert (await upload(b"x", subfolder="../../escape"))[0] == 400
        raw = (
            b'--B\r\nContent-Disposition: form-data; name="image"; filename="../up.png"\r\n'
            b"Content-Type: image/png\r\n\r\nx\r\n--B--\r\n"
        )
        headers = {"Content-Type": "multipart/form-data; boundary=B"}
        async with client.session.post(f"{emu.url}/upload/image", data=raw, headers=headers) as resp:
            assert resp.status == 400
        async with client.session.post(f"{emu.url}/upload/image", data={"nope": "1"}) as resp:
            assert resp.status == 400
        info = await client.get_json("/object_info/LoadImage")
        assert info["LoadImage"]["input"]["required"]["image"][0] == ["a (1).png", "a (2).png", "a.png"]

    run(with_emulator(body))


def test_queue_listing_delete_clear_and_front() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        assert await client.get_json("/queue") == EDGE["queue"][1]
        assert await client.get_json("/prompt") == {"exec_info": {"queue_remaining": 0}}
        await client.connect()
        running = await client.submit(recorded(100, 0.1))
        await client.recv_until(lambda f: tok(f) == "progress")
        later = await client.submit(recorded(1, 0.0, prefix="later"))
        status, jumped = await client.post(recorded(1, 0.0, prefix="front"), front=True)
        assert status == 200 and jumped["number"] < 0
        queue = protocol.parse_body(protocol.QueueState, await client.get_json("/queue"))
        assert queue.running_ids() == [running]
        assert queue.pending_ids() == [jumped["prompt_id"], later]
        assert await client.get_json("/api/prompt") == {"exec_info": {"queue_remaining": 3}}
        async with client.session.post(f"{emu.url}/queue", json={"delete": [later]}) as resp:
            assert (resp.status, await resp.text()) == tuple(EDGE["queue_delete"])
        queue = protocol.parse_body(protocol.QueueState, await client.get_json("/queue"))
        assert queue.pending_ids() == [jumped["prompt_id"]]
        async with client.session.post(f"{emu.url}/queue", json={"clear": True}) as resp:
            assert resp.status == 200
        assert protocol.parse_body(protocol.QueueState, await client.get_json("/queue")).pending_ids() == []
        async with client.session.post(f"{emu.url}/interrupt") as resp:  # no body: whatever runs
            assert resp.status == 200
        await client.until_done(running)
        assert await client.history(later) == {}

    run(with_emulator(body))


def test_history_listing_and_deletion() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        assert await client.history("nope") == json.loads(EDGE["history_unknown"][1])
        await client.connect()
        ids = []
        for i in range(3):
            ids.append(await client.submit(recorded(1, 0.0, prefix=f"h{i}")))
            await client.until_done(ids[-1])
        assert list(await client.get_json("/history")) == ids
        assert list(await client.get_json("/history?max_items=2")) == ids[1:]
        assert list(await client.get_json("/api/history?max_items=1&offset=0")) == ids[:1]
        async with client.session.post(f"{emu.url}/history", json={"delete": [ids[0]]}) as resp:
            assert resp.status == 200
        assert list(await client.get_json("/history")) == ids[1:]
        async with client.session.post(f"{emu.url}/history", json={"clear": True}) as resp:
            assert resp.status == 200
        assert await client.get_json("/history") == {}
        async with client.session.get(f"{emu.url}/history?max_items=lots") as resp:
            assert resp.status == 400

    run(with_emulator(body))


def test_object_info_and_system_stats_shapes() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        info = await client.get_json("/object_info")
        for name in (
            "CheckpointLoaderSimple",
            "CLIPTextEncode",
            "EmptyLatentImage",
            "KSampler",
            "VAEDecode",
            "SaveImage",
            "PreviewImage",
            "LoadImage",
            "EmptyImage",
            "ImageInvert",
            "ImageScale",
            "SlowSteps",
            "KSamplerEmulated",
            "SaveAnimatedWEBP",
        ):
            node = info[name]
            assert set(node) >= {
                "input",
                "input_order",
                "output",
                "output_is_list",
                "output_name",
                "name",
                "display_name",
                "description",
                "python_module",
                "category",
                "output_node",
            }
            assert node["name"] == name and list(node["input_order"]["required"]) == list(node["input"]["required"])
        sampler = info["KSampler"]
        assert sampler["output"] == ["LATENT"] and sampler["input"]["required"]["steps"][0] == "INT"
        assert "euler" in sampler["input"]["required"]["sampler_name"][0]
        assert info["SaveImage"]["output_node"] is True and info["SaveImage"]["input"]["hidden"]["prompt"] == "PROMPT"
        assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0][0] == "emulator-v1.safetensors"
        assert await client.get_json("/object_info/NoSuchNode") == {}
        stats = await client.get_json("/api/system_stats")
        assert stats["system"]["comfyui_version"].startswith("0.3.75")
        assert set(stats["system"]) >= {
            "os",
            "ram_total",
            "ram_free",
            "python_version",
            "pytorch_version",
            "embedded_python",
            "argv",
        }
        assert set(stats["devices"][0]) == {
            "name",
            "type",
            "index",
            "vram_total",
            "vram_free",
            "torch_vram_total",
            "torch_vram_free",
        }
        assert await client.get_json("/features") == protocol.SERVER_FEATURE_FLAGS

    run(with_emulator(body))


def test_animated_webp_preview_and_ksampler_emulated() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        prompt = {
            "1": {
                "class_type": "KSamplerEmulated",
                "inputs": {"prompt": "waves", "seed": 3, "steps": 2, "width": 64, "height": 48, "batch_size": 3},
            },
            "2": {
                "class_type": "SaveAnimatedWEBP",
                "inputs": {
                    "images": ["1", 0],
                    "filename_prefix": "anim/clip",
                    "fps": 8.0,
                    "lossless": False,
                    "quality": 80,
                    "method": "fastest",
                },
            },
            "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        }
        pid = await client.submit(prompt)
        frames = await client.until_done(pid)
        executed = {f.data.node: f.data.output for f in frames if tok(f) == "executed"}  # type: ignore[union-attr]
        assert executed["2"] == {
            "images": [{"filename": "clip_00001_.webp", "subfolder": "anim", "type": "output"}],
            "animated": [True],
        }
        temp = executed["3"]["images"]
        assert len(temp) == 3 and all(ref["type"] == "temp" for ref in temp)
        async with client.session.get(f"{emu.url}/view", params=executed["2"]["images"][0]) as resp:
            webp = Image.open(io.BytesIO(await resp.read()))
            assert resp.content_type == "image/webp" and webp.n_frames == 3
        async with client.session.get(f"{emu.url}/view", params=temp[0]) as resp:
            assert resp.status == 200

    run(with_emulator(body, step_delay=0.0))


def test_bad_inputs_fail_the_node_not_the_server() -> None:
    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        huge = {
            "1": {
                "class_type": "EmptyImage",
                "inputs": {"width": 16384, "height": 16384, "batch_size": 4096, "color": 0},
            },
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "../escape"}},
        }
        pid = await client.submit(huge)
        err = next(f for f in await client.until_done(pid) if tok(f) == "execution_error")
        assert err.data.exception_type == "MemoryError"  # type: ignore[union-attr]
        escape = recorded(1, 0.0, prefix="../../escape")
        pid = await client.submit(escape)
        err = next(f for f in await client.until_done(pid) if tok(f) == "execution_error")
        assert err.data.node_id == "4" and err.data.exception_type == "PermissionError"  # type: ignore[union-attr]
        literal = {"1": {"class_type": "PreviewImage", "inputs": {"images": 5}}}
        pid = await client.submit(literal)
        assert "execution_error" in [tok(f) for f in await client.until_done(pid)]
        cycle = {
            "1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "c"}},
        }
        status, got = await client.post(cycle)
        assert status == 400 and got["error"]["type"] == "prompt_outputs_failed_validation"
        for garbage in ([1, 2], "text", {"1": "x"}, {"1": {"class_type": ["x"]}}, {"1": {"class_type": "SaveImage"}}):
            status, got = await client.post(garbage)
            assert status == 400, garbage
        assert await client.get_json("/prompt") == {"exec_info": {"queue_remaining": 0}}

    run(with_emulator(body))


# ---- hosting


def test_emulator_thread_for_synchronous_callers(tmp_path: Path) -> None:
    with EmulatorThread(output_dir=tmp_path / "out", step_delay=0.0) as emu:
        with urllib.request.urlopen(f"{emu.url}/system_stats", timeout=10) as resp:
            assert json.load(resp)["system"]["comfyui_version"].startswith("0.3.75")
        emu.fail_next = True
        assert emu.emulator.fail_next is True and emu.fail_next is True
        emu.fail_next = False
        body = json.dumps({"prompt": recorded(1, 0.0), "prompt_id": "sync-1"}).encode()
        request = urllib.request.Request(f"{emu.url}/prompt", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.load(resp)["prompt_id"] == "sync-1"
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(f"{emu.url}/history/sync-1", timeout=10) as resp:
                if json.load(resp):
                    break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert (tmp_path / "out" / "md_rec_00001_.png").exists()
        url = emu.url
        emu.restart()
        with urllib.request.urlopen(f"{url}/history/sync-1", timeout=10) as resp:
            assert json.load(resp) == {}
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/system_stats", timeout=2)
    assert (tmp_path / "out" / "md_rec_00001_.png").exists()  # a caller's output_dir is kept


def test_stop_removes_its_own_folders_and_leaves_no_tasks() -> None:
    async def body() -> None:
        before = asyncio.all_tasks()
        emu = ComfyEmulator()
        await emu.start()
        scratch = emu.folders.output_dir.parent
        async with aiohttp.ClientSession() as session:
            client = Client(session, emu.url)
            await client.connect()
            await client.submit(recorded(50, 0.02))
            await client.recv_until(lambda f: tok(f) == "progress")
            await emu.stop()
            with contextlib.suppress(ConnectionError):
                await client.recv_until(lambda f: False, timeout=5)
            await client.close()
        assert not scratch.exists()
        assert asyncio.all_tasks() - before == set()

    run(body())


def test_command_line_entry_point() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "movie_director.clients.comfyui.emulator", "--port", "0", "--step-delay", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        url = line.strip().rsplit(" ", 1)[-1]
        with urllib.request.urlopen(f"{url}/object_info/KSampler", timeout=10) as resp:
            assert "KSampler" in json.load(resp)
        proc.send_signal(2)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# ---- validation never raises, whatever the prompt


def _prompt_strategy() -> Any:
    from hypothesis import strategies as st

    names = st.sampled_from(["1", "2", "3", "x"])
    leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    link = st.lists(names | st.integers() | leaf, min_size=0, max_size=3)
    value = leaf | link | st.dictionaries(st.sampled_from(["__value__", "k"]), leaf, max_size=2)
    input_names = st.sampled_from(
        [
            "image",
            "images",
            "width",
            "height",
            "steps",
            "delay",
            "color",
            "batch_size",
            "filename_prefix",
            "upscale_method",
            "crop",
            "seed",
            "text",
            "clip",
            "model",
            "positive",
            "negative",
            "latent_image",
            "samples",
            "vae",
            "ckpt_name",
        ]
    )
    class_type = (
        st.sampled_from(
            [
                "EmptyImage",
                "SlowSteps",
                "ImageInvert",
                "SaveImage",
                "ImageScale",
                "LoadImage",
                "KSampler",
                "VAEDecode",
                "CLIPTextEncode",
                "CheckpointLoaderSimple",
                "EmptyLatentImage",
                "PreviewImage",
                "Nope",
            ]
        )
        | leaf
    )
    node = st.fixed_dictionaries(
        {"class_type": class_type}, optional={"inputs": st.dictionaries(input_names, value, max_size=5) | leaf}
    )
    return st.dictionaries(names, node | leaf, max_size=4) | leaf


def test_validation_and_cache_keys_never_raise() -> None:
    from hypothesis import given, settings
    from movie_director.clients.comfyui.emulator.graph import node_signatures, validate_prompt
    from movie_director.clients.comfyui.emulator.nodes import NODES, Folders

    folders = Folders(Path("/nonexistent/in"), Path("/nonexistent/out"), Path("/nonexistent/tmp"))

    @settings(max_examples=400, deadline=None)
    @given(_prompt_strategy())
    def check(prompt: Any) -> None:
        result = validate_prompt(prompt, NODES, folders)
        json.dumps({"error": result.error, "node_errors": result.node_errors})
        assert result.ok or result.error is not None
        if isinstance(prompt, dict):
            assert set(node_signatures(prompt, NODES, folders)) == set(prompt)

    check()


def test_previews_fit_512_px_up_as_well_as_down() -> None:
    """As server.py's ``send_image``: ``ImageOps.contain(image, (512, 512))`` (a 96 px picture's 32 px latent
    preview arrives 512 px wide, as the real server sends it)."""

    async def body(emu: ComfyEmulator, client: Client) -> None:
        await client.connect()
        pid = await client.submit(txt2img(steps=2))
        frames = await client.until_done(pid)
        previews = [f for f in frames if isinstance(f, protocol.PreviewFrame)]
        assert previews
        for frame in previews:
            with Image.open(io.BytesIO(frame.image)) as img:
                assert max(img.size) == 512

    run(with_emulator(body, step_delay=0.001))


def test_a_truncated_png_upload_loads_as_on_the_real_server() -> None:
    """As ``node_helpers.pillow``: LoadImage retries with truncated images allowed."""

    async def body(emu: ComfyEmulator, client: Client) -> None:
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
        truncated = buf.getvalue()[: len(buf.getvalue()) - 40]
        form = aiohttp.FormData()
        form.add_field("image", truncated, filename="cut.png", content_type="image/png")
        async with client.session.post(f"{emu.url}/upload/image", data=form) as resp:
            assert resp.status == 200
        await client.connect()
        prompt = {
            "1": {"class_type": "LoadImage", "inputs": {"image": "cut.png"}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cut"}},
        }
        pid = await client.submit(prompt)
        await client.until_done(pid)
        entry = protocol.parse_history(await client.history(pid))[pid]
        assert entry.succeeded, entry.status
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # the retry leaves Pillow as it found it

    run(with_emulator(body, step_delay=0.001))
