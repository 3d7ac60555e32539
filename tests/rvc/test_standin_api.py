"""The rvc-python stand-in speaks rvc-python's wire shapes (so the client is tested against the real protocol), and
the small RVC helpers: request checks, WAV headers, the per-server gate, the stand-ins' transform."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import wave
import zipfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from movie_director.clients import media
from movie_director.clients.rvc import standin_dsp
from movie_director.clients.rvc.gate import VoiceGate
from movie_director.clients.rvc.request import ConvertRequest, TrainRequest, parse_request
from movie_director.clients.rvc.standin_api import RvcApiStandin
from movie_director.clients.rvc.wavinfo import wav_info
from movie_director.runtime.errors import InvalidRequestError


async def _call(url: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as s, s.request(method, url + path, **kwargs) as r:
        body = await r.read()
        kind = r.headers.get("Content-Type", "")
        return r.status, (await r.json() if kind.startswith("application/json") else body), kind


def call(url: str, method: str, path: str, **kwargs: Any) -> tuple[int, Any, str]:
    return asyncio.run(_call(url, method, path, **kwargs))


def upload(data: bytes, filename: str = "upload.bin") -> aiohttp.FormData:
    """A multipart body with one ``file`` field, as rvc-python's routes take it."""
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(data), filename=filename)
    return form


def test_the_standin_speaks_rvc_pythons_shapes(api_standin: RvcApiStandin, line: Path) -> None:
    url = api_standin.url
    assert call(url, "GET", "/models")[:2] == (200, {"models": ["alice", "bob", "carol"]})
    assert call(url, "GET", "/params")[1] == {
        "f0method": "harvest",
        "f0up_key": 0,
        "index_rate": 0.5,
        "filter_radius": 3,
        "resample_sr": 0,
        "rms_mix_rate": 1,
        "protect": 0.33,
    }
    status, body, _ = call(url, "POST", "/convert_file", data=upload(line.read_bytes(), "line.wav"))
    assert (status, body) == (400, {"detail": "No model loaded. Please load a model first."})
    assert call(url, "POST", "/models/zed")[:2] == (400, {"detail": "Model zed not found."})
    assert call(url, "POST", "/models/bob")[:2] == (200, {"message": "Model bob loaded successfully"})
    status, body, _ = call(url, "POST", "/params", json={"f0up_key": 3})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "params"]
    assert call(url, "POST", "/params", json={"params": {"f0up_key": 3, "bogus": 1}})[0] == 200
    assert call(url, "GET", "/params")[1]["f0up_key"] == 3 and "bogus" not in api_standin.params
    encoded = base64.b64encode(line.read_bytes()).decode()
    status, body, kind = call(url, "POST", "/convert", json={"audio_data": encoded})
    assert status == 200 and kind == "audio/wav" and body[:4] == b"RIFF"
    assert call(url, "POST", "/convert", json={"audio_data": "***"})[:2] == (400, {"detail": "Invalid audio data"})
    assert call(url, "POST", "/set_device", json={"device": "cuda:1"})[:2] == (200, {"message": "Device set to cuda:1"})
    assert call(url, "POST", "/set_device", json={"device": "gpu"})[0] == 400
    assert call(url, "GET", "/nowhere")[:2] == (404, {"detail": "Not Found"})
    assert call(url, "DELETE", "/models")[:2] == (405, {"detail": "Method Not Allowed"})


def test_the_standin_serves_voices_from_a_models_folder(tmp_path: Path) -> None:
    models = tmp_path / "rvc_models"
    for name in ("ann", "ben"):
        (models / name).mkdir(parents=True)
        (models / name / f"{name}.pth").write_bytes(b"x")
    (models / "empty").mkdir()  # no .pth: not a voice
    with RvcApiStandin(models_dir=models) as standin:
        assert call(standin.url, "GET", "/models")[1] == {"models": ["ann", "ben"]}
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("cat/cat.pth", b"x")
        assert call(standin.url, "POST", "/upload_model", data=upload(buf.getvalue(), "voices.zip"))[0] == 200
        assert call(standin.url, "GET", "/models")[1] == {"models": ["ann", "ben", "cat"]}
        evil = io.BytesIO()
        with zipfile.ZipFile(evil, "w") as zf:
            zf.writestr("../escape/x.pth", b"x")
        assert call(standin.url, "POST", "/upload_model", data=upload(evil.getvalue(), "evil.zip"))[0] == 500
        assert not (tmp_path / "escape").exists()
        other = tmp_path / "other"
        (other / "dan").mkdir(parents=True)
        (other / "dan" / "dan.pth").write_bytes(b"x")
        assert call(standin.url, "POST", "/set_models_dir", json={"models_dir": str(other)})[0] == 200
        assert call(standin.url, "GET", "/models")[1] == {"models": ["dan"]}


def test_the_transform_keeps_the_length_and_changes_the_sound(line: Path) -> None:
    data = line.read_bytes()
    for pitch in (-12, 0, 7):
        out = standin_dsp.convert(data, "alice", pitch=pitch)
        with wave.open(io.BytesIO(out)) as w:
            assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (2, 1, 40000)
            assert abs(w.getnframes() / 40000 - 2.0) < 0.02
        assert out != data
    assert standin_dsp.convert(data, "alice") != standin_dsp.convert(data, "bob")  # voices sound different
    with pytest.raises(ValueError):
        standin_dsp.convert(b"not audio", "alice")


def test_wav_info_reads_pcm_and_float_and_refuses_the_rest(tmp_path: Path, line: Path) -> None:
    info = wav_info(line)
    assert (info.rate, info.channels, info.bits) == (44100, 1, 16) and abs(info.duration - 2.0) < 1e-6
    samples = 1000
    fmt = struct.pack("<HHIIHH", 3, 2, 48000, 48000 * 8, 8, 32)  # IEEE float stereo, as scipy writes
    data = b"\0" * samples * 8
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"LIST" + struct.pack("<I", 3) + b"abc\0"
    body += b"data" + struct.pack("<I", len(data)) + data
    (tmp_path / "f.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    info = wav_info(tmp_path / "f.wav")
    assert (info.rate, info.channels, info.bits, info.frames) == (48000, 2, 32, samples)
    for junk in (b"", b'{"detail": "x"}', b"RIFF\0\0\0\0WAVE", b"RIFF\0\0\0\0WAVEdata\4\0\0\0abcd"):
        (tmp_path / "j.wav").write_bytes(junk)
        with pytest.raises(ValueError):
            wav_info(tmp_path / "j.wav")


def test_requests_are_checked_with_readable_messages(line: Path) -> None:
    req = parse_request(ConvertRequest, {"input": str(line), "voice": "a", "f0up_key": -3}, backend="rvc", what="x")
    assert req.pitch == -3 and req.server_params()["f0up_key"] == -3
    with pytest.raises(InvalidRequestError) as err:
        parse_request(ConvertRequest, {"input": str(line), "voice": "a", "resample_sr": 8000}, backend="rvc", what="x")
    assert "16000 Hz and above" in str(err.value)
    with pytest.raises(InvalidRequestError) as err:
        parse_request(ConvertRequest, {"input": str(line)}, backend="rvc", what="voice conversion")
    assert "Bad voice conversion: voice is missing" in str(err.value)
    (line.parent / "notes.txt").write_text("hi")
    with pytest.raises(InvalidRequestError, match="not an audio file"):
        parse_request(ConvertRequest, {"input": str(line.parent / "notes.txt"), "voice": "a"}, backend="r", what="x")
    with pytest.raises(InvalidRequestError, match="either a local dataset"):
        parse_request(TrainRequest, {"name": "n"}, backend="rvc", what="x")
    with pytest.raises(InvalidRequestError, match="sample rate"):
        parse_request(TrainRequest, {"name": "n", "dataset_path": "d", "sample_rate": 44100}, backend="r", what="x")


def test_the_gate_lets_jobs_through_one_at_a_time_in_order() -> None:
    async def scenario() -> list[str]:
        gate = VoiceGate()
        order: list[str] = []
        release = asyncio.Event()

        async def job(name: str, voice: str) -> None:
            async with gate.hold(voice):
                order.append(f"{name}:{gate.voice}")
                await release.wait()

        first = asyncio.create_task(job("a", "alice"))
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(job(n, v)) for n, v in (("b", "bob"), ("c", "alice"), ("d", "bob"))]
        await asyncio.sleep(0)
        assert gate.load == 4 and order == ["a:alice"]
        waiting[1].cancel()  # a job cancelled while waiting leaves the queue
        await asyncio.sleep(0)
        assert gate.load == 3
        release.set()
        await asyncio.gather(first, *waiting, return_exceptions=True)
        assert gate.load == 0 and gate.voice is None
        return order

    assert asyncio.run(scenario()) == ["a:alice", "b:bob", "d:bob"]


def test_media_helpers_make_what_the_tests_feed(tmp_path: Path) -> None:
    path = media.write_wav(tmp_path / "t.wav", media.tone(0.5))
    assert abs(media.wav_duration(path) - 0.5) < 1e-3
