"""The AudioLDM client against real Gradio stand-ins of AudioLDM's and AudioLDM2's demo apps."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from gradio_support import GradioApp
from movie_director.clients.audioldm.probe import audio_duration
from movie_director.clients.gradio_app import GradioRunner
from movie_director.runtime import JobState, NetworkPolicy, Runtime
from movie_director.runtime.errors import JobFailedError
from support import pump_until

RtFactory = Callable[..., Runtime]


def sound(rt: Runtime, text: str, **params: object):  # type: ignore[no-untyped-def]
    return rt.submit("audioldm", "sound", {"text": text, **params})


@pytest.mark.parametrize("seconds", [2.5, 7.5])
def test_a_sound_of_the_requested_length(
    audioldm_apps: dict[str, GradioApp], sound_rt: RtFactory, seconds: float
) -> None:
    rt = sound_rt(audioldm_apps["audioldm"].url)
    job = sound(rt, "a door slams in an empty hall", duration=seconds, seed=-1, n_candidates=1).wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    (out,) = job.outputs.files
    assert out.media_type == "video/x-msvideo" and out.name.endswith(".avi")
    assert Path(out.path).parent == (Path(rt.output_root) / "audioldm" / job.id).resolve()
    assert audio_duration(out.path) == pytest.approx(seconds, abs=0.01)  # the AVI's audio track
    data = job.outputs.data
    assert data["duration_s"] == pytest.approx(seconds, abs=0.01) and data["requested_s"] == seconds
    assert isinstance(data["seed"], int) and data["endpoint"] == "/text2audio" and data["found_by"] == "name"


def test_different_prompts_make_different_sounds(audioldm_apps: dict[str, GradioApp], sound_rt: RtFactory) -> None:
    rt = sound_rt(audioldm_apps["audioldm"].url)
    jobs = [sound(rt, text, duration=2.5, seed=1).wait(30) for text in ("thunder", "birdsong", "thunder")]
    assert all(j.state is JobState.SUCCEEDED for j in jobs), [j.error for j in jobs]
    digests = [hashlib.sha256(Path(j.outputs.files[0].path).read_bytes()).hexdigest() for j in jobs]
    assert digests[0] != digests[1] and digests[0] == digests[2]


def test_an_app_without_endpoint_names_is_found_by_its_labels(
    audioldm_apps: dict[str, GradioApp], sound_rt: RtFactory
) -> None:
    rt = sound_rt(audioldm_apps["audioldm-unnamed"].url)
    job = sound(rt, "rain on a tin roof", duration=5.0, guidance_scale=3.0, n_candidates=1).wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.data["found_by"] == "parameters" and job.outputs.data["endpoint"] == "/lambda"
    assert audio_duration(job.outputs.files[0].path) == pytest.approx(5.0, abs=0.01)
    health = rt.check_health("audioldm").result(20)
    assert health.ok and "/lambda" in health.message


def test_audioldm2_always_makes_ten_seconds_and_says_so(
    audioldm_apps: dict[str, GradioApp], sound_rt: RtFactory
) -> None:
    rt = sound_rt(audioldm_apps["audioldm2"].url)
    lines: list[str] = []
    h = sound(rt, "wind through pines", duration=5.0, n_candidates=1).on_log(lambda job, line: lines.append(line))
    job = h.wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.data["duration_s"] == pytest.approx(10.0, abs=0.01)
    assert any("10 s" in line for line in lines)
    assert "AudioLDM2" in rt.check_health("audioldm").result(20).message


def test_bad_settings_are_refused_before_anything_is_sent(sound_rt: RtFactory) -> None:
    rt = sound_rt("http://127.0.0.1:9")  # nothing listens there: validation must come first
    for request, field in (({"text": "  "}, "text"), ({"text": "boom", "duration": 12}, "duration")):
        job = rt.submit("audioldm", "sound", request).wait(10)
        assert job.state is JobState.FAILED and job.error is not None and job.error.code == "invalid_request"
        assert field in job.error.message


def test_the_apps_gr_error_reaches_the_caller(audioldm_apps: dict[str, GradioApp], sound_rt: RtFactory) -> None:
    rt = sound_rt(audioldm_apps["audioldm"].url)
    runner = GradioRunner(audioldm_apps["audioldm"].url, backend="audioldm", network=NetworkPolicy())
    try:
        with pytest.raises(JobFailedError, match="Please describe the sound"):
            rt.call(runner.call("/text2audio", "", 5, 2.5, 1, 1, deadline=20)).result(30)
    finally:
        rt.call(runner.close()).result(10)


def test_cancelling_a_sound_stops_it(audioldm_apps: dict[str, GradioApp], sound_rt: RtFactory) -> None:
    rt = sound_rt(audioldm_apps["audioldm-unnamed"].url)
    h = sound(rt, "a long drone", duration=10.0, n_candidates=5)  # 50 steps at 0.05 s
    assert pump_until(rt, lambda: (h.status().progress.step or 0) >= 2, timeout=20)
    h.cancel()
    job = h.wait(5)
    assert job.state is JobState.CANCELLED
    assert not list((Path(rt.output_root) / "audioldm" / job.id).glob("*.avi"))


def test_a_sound_interrupted_by_a_restart_is_made_again(audioldm_apps: dict[str, GradioApp], tmp_path: Path) -> None:
    from movie_director.clients.audioldm import client as audioldm
    from movie_director.runtime import BackendConfig

    def make() -> Runtime:
        rt = Runtime(output_root=tmp_path / "out", journal=tmp_path / "journal.db")
        url = audioldm_apps["audioldm-unnamed"].url
        rt.register_backend("audioldm", audioldm.factory, BackendConfig(name="audioldm", urls=url, timeout=60.0))
        return rt

    first = make()
    h = sound(first, "a ship's horn in fog", duration=2.5, n_candidates=5)
    assert pump_until(first, lambda: (h.status().progress.step or 0) >= 1, timeout=20)
    first.stop()  # Blender quits mid-sound
    second = make()
    second.start()
    try:
        (again,) = second.jobs()
        job = again.wait(30)
        assert job.id == h.id and job.state is JobState.SUCCEEDED, job.error
        assert audio_duration(job.outputs.files[0].path) == pytest.approx(2.5, abs=0.01)
        assert any("making it again" in line for line in job.log)
    finally:
        second.stop()


def test_get_status_follows_a_sound_while_it_is_made(audioldm_apps: dict[str, GradioApp], sound_rt: RtFactory) -> None:
    from support import pump_until

    rt = sound_rt(audioldm_apps["audioldm"].url)
    h = sound(rt, "rain on a tin roof", duration=10.0, seed=1, n_candidates=1)
    client = rt.client("audioldm")
    assert pump_until(rt, lambda: h.status().state is JobState.RUNNING, timeout=20)
    status = rt.call(client.get_status(h.status())).result(5)
    # A Gradio session cannot be rejoined: once the call is over the client no longer follows it (state None).
    assert status.state in (JobState.RUNNING, JobState.SUBMITTED, None)
    job = h.wait(60)
    assert job.state is JobState.SUCCEEDED
    unknown = rt.call(client.get_status(job.model_copy(update={"id": "nope"}))).result(5)
    assert unknown.state is None
