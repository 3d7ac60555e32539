"""The RVC client against the rvc-python stand-in: voices listed, loaded and converted; its failures; the voice
cache; one loaded voice per server."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from movie_director.clients import media
from movie_director.clients.rvc.standin_api import RvcApiStandin
from movie_director.clients.serving import AppThread
from movie_director.runtime import JobSpec, JobState, Runtime
from support import pump_until


def convert(rt: Runtime, line: Path, voice: str = "alice", **params: object):  # type: ignore[no-untyped-def]
    return rt.submit("rvc", "convert", {"input": str(line), "voice": voice, **params})


def test_converts_a_line_after_loading_the_voice_and_setting_its_params(
    api_rt: Runtime, api_standin: RvcApiStandin, line: Path
) -> None:
    job = convert(api_rt, line, "bob", pitch=5, index_rate=0.75, protect=0.4, f0method="harvest").wait(15)
    assert job.state is JobState.SUCCEEDED, job.error
    (out,) = job.outputs.files
    path = Path(out.path)
    assert path.parent == Path(api_rt.output_root) / "rvc" / job.id and path.name == "line_bob.wav"
    assert out.media_type == "audio/wav" and out.size == path.stat().st_size
    assert abs(media.wav_duration(path) - media.wav_duration(line)) <= 0.01 * media.wav_duration(line)
    assert path.read_bytes() != line.read_bytes()
    pcm, rate, channels = media.read_wav(path)  # a valid 16-bit WAV
    assert (rate, channels) == (40000, 1) and len(pcm) == 2 * round(2.0 * 40000)
    assert job.outputs.data["voice"] == "bob" and abs(job.outputs.data["duration_s"] - 2.0) < 0.01

    calls = [path for method, path in api_standin.calls if method == "POST"]
    assert calls == ["/models/bob", "/params", "/convert_file"]  # loaded, then set, then converted
    assert api_standin.params["f0up_key"] == 5 and api_standin.params["f0method"] == "harvest"
    assert api_standin.params["index_rate"] == 0.75 and api_standin.params["protect"] == 0.4
    assert api_standin.conversions[0]["model"] == "bob"
    assert job.log == [f"loaded the voice bob on {api_standin.url}"]


def test_the_loaded_voice_is_remembered(api_rt: Runtime, api_standin: RvcApiStandin, line: Path) -> None:
    for pitch in (0, 2, -3):
        assert convert(api_rt, line, pitch=pitch).wait(15).state is JobState.SUCCEEDED
    assert api_standin.loads == ["alice"]
    assert [c["params"]["f0up_key"] for c in api_standin.conversions] == [0, 2, -3]


def test_a_server_that_forgot_its_voice_gets_it_again_unseen(
    api_rt: Runtime, api_standin: RvcApiStandin, line: Path
) -> None:
    assert convert(api_rt, line).wait(15).state is JobState.SUCCEEDED
    api_standin.forget_model()  # as after a restart: the next convert answers 400 "No model loaded"
    job = convert(api_rt, line, pitch=4).wait(15)
    assert job.state is JobState.SUCCEEDED, job.error
    assert api_standin.loads == ["alice", "alice"]
    assert api_standin.conversions[-1]["params"]["f0up_key"] == 4
    assert any("no voice loaded" in entry for entry in job.log)


def test_an_unknown_voice_is_named_with_the_known_ones(api_rt: Runtime, api_standin: RvcApiStandin, line: Path) -> None:
    job = convert(api_rt, line, "zed").wait(15)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "not_found"
    assert "'zed'" in job.error.message
    assert all(v in job.error.message for v in ("alice", "bob", "carol"))
    assert job.error.details["known"] == ["alice", "bob", "carol"]
    assert ("POST", "/convert_file") not in api_standin.calls and api_standin.loads == []


def test_a_voice_removed_from_the_server_after_it_was_listed_is_reported_with_the_current_list(
    api_rt: Runtime, api_standin: RvcApiStandin, line: Path
) -> None:
    assert api_rt.submit("rvc", "voices").wait(15).outputs.data["voices"] == ["alice", "bob", "carol"]
    del api_standin.models["carol"]  # the cached list still has it: the load is refused ("Model carol not found.")
    job = convert(api_rt, line, "carol").wait(15)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "not_found"
    assert "'carol'" in job.error.message and job.error.details["known"] == ["alice", "bob"]
    assert ("POST", "/models/carol") in api_standin.calls and ("POST", "/convert_file") not in api_standin.calls


def test_a_voice_added_on_the_server_is_found_although_the_list_was_cached(
    api_rt: Runtime, api_standin: RvcApiStandin, line: Path
) -> None:
    assert api_rt.submit("rvc", "voices").wait(15).outputs.data["voices"] == ["alice", "bob", "carol"]
    api_standin.models["dave"] = {"pth": "dave/dave.pth", "index": None}
    job = convert(api_rt, line, "dave").wait(15)
    assert job.state is JobState.SUCCEEDED, job.error
    assert api_rt.submit("rvc", "voices").wait(15).outputs.data["voices"] == ["alice", "bob", "carol", "dave"]


def test_the_voice_list_is_cached_for_its_ttl_and_refreshed_on_request(
    runtime_for: Callable[..., Runtime], api_standin: RvcApiStandin
) -> None:
    def lists() -> int:
        return api_standin.calls.count(("GET", "/models"))

    rt = runtime_for(api_standin.url, voices_ttl=300)
    assert rt.submit("rvc", "voices").wait(15).outputs.data["voices"] == ["alice", "bob", "carol"]
    assert lists() == 1  # the transport probe's answer filled the cache
    del api_standin.models["carol"]
    api_standin.models["erin"] = {"pth": "erin/erin.pth", "index": None}
    batch = rt.submit_batch([JobSpec("rvc", "voices")] * 3).wait(15)
    assert [j.outputs.data["voices"] for j in batch] == [["alice", "bob", "carol"]] * 3  # younger than the TTL
    assert lists() == 1
    job = rt.submit("rvc", "voices", {"refresh": True}).wait(15)
    assert job.outputs.data["voices"] == ["alice", "bob", "erin"] and lists() == 2

    expired = runtime_for(api_standin.url, voices_ttl=0)  # a list is stale at once: every ask goes to the server
    for _ in range(2):
        assert expired.submit("rvc", "voices").wait(15).outputs.data["voices"] == ["alice", "bob", "erin"]
    assert lists() == 5  # its transport probe, then one per ask


def test_two_voices_on_one_server_take_turns(
    runtime_for: Callable[..., Runtime], api_standin: RvcApiStandin, line: Path
) -> None:
    rt = runtime_for(api_standin.url, concurrency=3)
    api_standin.convert_delay = 0.15
    handles = [convert(rt, line, voice) for voice in ("alice", "bob", "alice")]
    jobs = [h.wait(20) for h in handles]
    assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 3, [j.error for j in jobs]
    assert [j.outputs.data["voice"] for j in jobs] == ["alice", "bob", "alice"]
    assert api_standin.max_active == 1  # never two conversions at once on one server
    assert all(c["model"] == c["model_after"] for c in api_standin.conversions)  # no voice swapped mid-conversion
    assert sorted(c["model"] for c in api_standin.conversions) == ["alice", "alice", "bob"]
    assert sum(any(entry.startswith("waiting for") for entry in j.log) for j in jobs) >= 2


def test_jobs_go_to_the_server_that_has_the_voice(
    runtime_for: Callable[..., Runtime], api_standin: RvcApiStandin, line: Path
) -> None:
    with RvcApiStandin(["dora"]) as other:
        rt = runtime_for(f"{api_standin.url} {other.url}")
        first, second = convert(rt, line, "dora").wait(15), convert(rt, line, "bob").wait(15)
        assert first.state is second.state is JobState.SUCCEEDED
        assert first.server == other.url and second.server == api_standin.url
        assert other.loads == ["dora"] and api_standin.loads == ["bob"]
        voices = rt.submit("rvc", "voices").wait(15).outputs.data
        assert voices["voices"] == ["alice", "bob", "carol", "dora"]
        assert voices["by_server"] == {api_standin.url: ["alice", "bob", "carol"], other.url: ["dora"]}


def test_a_server_dying_mid_conversion_fails_the_job_cleanly(
    api_rt: Runtime, api_standin: RvcApiStandin, line: Path
) -> None:
    api_standin.die_mid_conversion = True
    start = time.monotonic()
    job = convert(api_rt, line).wait(20)
    assert time.monotonic() - start < 10
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "backend_unavailable" and "stopped answering" in job.error.message
    assert "line.wav" in job.error.message
    folder = Path(api_rt.output_root) / "rvc" / job.id
    assert not folder.exists() or list(folder.iterdir()) == []  # no half file, no temporary left behind


def test_bad_settings_are_refused_before_anything_is_sent(
    api_rt: Runtime, api_standin: RvcApiStandin, line: Path, tmp_path: Path
) -> None:
    job = convert(api_rt, line, pitch=30, pich=2).wait(10)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "invalid_request"
    assert "pitch (semitones, -24 to 24)" in job.error.message and "'pich' is not a setting" in job.error.message
    job = convert(api_rt, tmp_path / "missing.wav").wait(10)
    assert job.error is not None and "no audio file at" in job.error.message
    job = convert(api_rt, line, f0method="yin", protect=0.9).wait(10)
    assert job.error is not None and "pitch method" in job.error.message and "protection" in job.error.message
    job = api_rt.submit("rvc", "sing", {}).wait(10)
    assert job.error is not None and "cannot do 'sing'" in job.error.message
    assert api_standin.calls == []


def test_rvc_python_servers_cannot_train(api_rt: Runtime, api_standin: RvcApiStandin, line: Path) -> None:
    job = api_rt.submit("rvc", "train", {"name": "newvoice", "dataset": str(line.parent)}).wait(10)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "invalid_request"
    assert "cannot train voices" in job.error.message


def test_cancel_mid_conversion_frees_the_server_for_the_next_job(
    api_rt: Runtime, api_standin: RvcApiStandin, line: Path
) -> None:
    api_standin.convert_delay = 5.0
    h = convert(api_rt, line)
    assert pump_until(api_rt, lambda: h.status().progress.stage == "converting", timeout=10)
    h.cancel()
    assert h.wait(3).state is JobState.CANCELLED
    api_standin.convert_delay = 0.0
    assert convert(api_rt, line, "bob").wait(15).state is JobState.SUCCEEDED


def test_health_and_transport_detection(
    runtime_for: Callable[..., Runtime], api_standin: RvcApiStandin, api_rt: Runtime
) -> None:
    info = api_rt.check_health("rvc").result(10)
    assert info.ok and info.message == "rvc-python API with 3 voices"
    from aiohttp import web

    def blank() -> web.Application:
        return web.Application()  # answers 404 to everything

    server = AppThread(blank).start()
    try:
        info = runtime_for(server.url).check_health("rvc").result(10)
        assert not info.ok and "neither an rvc-python API server nor a Gradio app" in info.message
    finally:
        server.stop()
    info = runtime_for(api_standin.url, transport="grpc").check_health("rvc").result(10)
    assert not info.ok and "Unknown RVC transport 'grpc'" in info.message


def test_an_interrupted_conversion_runs_again_on_resume(api_standin, line: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """After a restart a conversion is simply redone: nothing of it lives on the server between calls."""
    from movie_director.clients.rvc import client as rvc
    from movie_director.runtime import BackendConfig
    from support import pump_until

    def make() -> Runtime:
        rt = Runtime(output_root=tmp_path / "out", journal=tmp_path / "j.db")
        rt.register_backend("rvc", rvc.factory, BackendConfig(name="rvc", urls=api_standin.url))
        return rt

    api_standin.convert_delay = 1.0
    first = make()
    h = first.submit("rvc", "convert", {"input": str(line), "voice": "alice"})
    assert pump_until(first, lambda: h.status().state is JobState.RUNNING, timeout=10)
    first.stop()  # Blender quits mid-conversion
    api_standin.convert_delay = 0.0
    second = make()
    second.start()
    try:
        (again,) = second.jobs()
        job = again.wait(20)
        assert job.id == h.id and job.state is JobState.SUCCEEDED, job.error
        assert len(job.outputs.files) == 1
    finally:
        second.stop()
