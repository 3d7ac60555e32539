"""The RVC client's Gradio transport against the Applio 3.6 stand-in (a real Gradio app in its own process, wired as
Applio's own tabs are): voices, conversion through ``enforce_terms``, training as one staged job, cancel."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from movie_director.clients import media
from movie_director.runtime import Job, JobState, Runtime
from support import pump_until

#: Bound for a cancelled job to become terminal and for the app to stop its work.
SETTLE = 20.0


@pytest.fixture
def applio_rt(applio: Any, runtime_for: Callable[..., Runtime]) -> Runtime:
    return runtime_for(applio.url)  # no transport option: the client finds out it is a Gradio app


def test_converts_a_line_through_the_apps_inference_endpoint(applio_rt: Runtime, applio: Any, line: Path) -> None:
    job = applio_rt.submit("rvc", "convert", {"input": str(line), "voice": "bob", "pitch": -4}).wait(60)
    assert job.state is JobState.SUCCEEDED, job.error
    (out,) = job.outputs.files
    path = Path(out.path)
    folder = Path(applio_rt.output_root) / "rvc" / job.id
    assert path.parent == folder and path.name == "line_bob.wav" and sorted(folder.iterdir()) == [path]
    assert abs(media.wav_duration(path) - media.wav_duration(line)) <= 0.01 * media.wav_duration(line)
    assert path.read_bytes() != line.read_bytes()
    assert job.outputs.data["transport"] == "gradio" and job.outputs.data["voice"] == "bob"
    assert job.server == applio.url
    # Applio 3.6's own path: the terms box ticked (else it answers "You must agree..."), the recording uploaded
    # through "Upload Audio" under a name of its own, then chosen by that server path, converted next to it.
    uploads = sorted(p.name for p in (applio.root / "assets" / "audios").glob("md_*"))
    assert any(n.endswith(".wav") and "_output" not in n for n in uploads), uploads
    assert any(n.endswith("_output.wav") for n in uploads), uploads
    assert any("uploaded line.wav" in entry for entry in job.log), job.log


def test_an_app_answer_of_message_and_no_audio_fails_with_the_apps_message(
    applio_rt: Runtime, applio: Any, line: Path
) -> None:
    """Applio's ``enforce_terms`` turns a conversion that raised into ``(message, None)``: the job fails with it."""
    voice = applio.root / "logs" / "gone"
    voice.mkdir()
    (voice / "gone.pth").write_bytes(b"standin-rvc-model:gone")
    listed = applio_rt.submit("rvc", "voices", {"refresh": True}).wait(60)
    assert "gone" in listed.outputs.data["voices"]
    (voice / "gone.pth").unlink()  # the list is cached: the app is asked to convert with a model it lost
    job = applio_rt.submit("rvc", "convert", {"input": str(line), "voice": "gone"}).wait(60)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "job_failed", job.error
    assert "An error occurred during audio conversion" in job.error.message
    assert job.outputs.files == ()


def test_lists_the_apps_voices_and_names_the_known_ones_for_an_unknown_voice(applio_rt: Runtime, line: Path) -> None:
    voices = applio_rt.submit("rvc", "voices", {"refresh": True}).wait(60)
    assert voices.state is JobState.SUCCEEDED, voices.error
    assert {"alice", "bob", "carol"} <= set(voices.outputs.data["voices"])
    job = applio_rt.submit("rvc", "convert", {"input": str(line), "voice": "zed"}).wait(60)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "not_found"
    assert "'zed'" in job.error.message and "alice, bob, carol" in job.error.message


def test_a_pitch_method_the_app_lacks_is_refused_naming_its_methods(applio_rt: Runtime, line: Path) -> None:
    job = applio_rt.submit("rvc", "convert", {"input": str(line), "voice": "alice", "f0method": "harvest"}).wait(60)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "invalid_request"
    assert "'harvest'" in job.error.message and "crepe, crepe-tiny, rmvpe, fcpe" in job.error.message


def test_trains_a_voice_in_one_job_with_stage_progress_in_order(applio_rt: Runtime, tmp_path: Path, line: Path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for i, freq in enumerate((180.0, 240.0)):
        media.write_wav(dataset / f"take{i}.wav", media.tone(1.0, freq=freq))
    stages: list[str] = []

    def seen(job: Job) -> None:
        if job.progress.stage and (not stages or stages[-1] != job.progress.stage):
            stages.append(job.progress.stage)

    h = applio_rt.submit("rvc", "train", {"name": "dora", "dataset": str(dataset), "epochs": 8}, on_progress=seen)
    job = h.wait(90)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.data["voice"] == "dora" and job.outputs.data["model"].endswith("dora.pth")
    assert [entry.split(":")[0] for entry in job.log if entry.endswith(": started")] == [
        "preprocess",
        "extract",
        "train",
        "index",
    ]
    order = ["upload", "preprocess", "extract", "train", "index"]
    ranks = [order.index(stage.split()[0]) for stage in stages if stage.split()[0] in order]
    assert ranks == sorted(ranks) and {"preprocess", "extract", "train", "index"} <= {
        o for o in order if order.index(o) in ranks
    }, stages
    assert "trained successfully" in " ".join(job.outputs.data["messages"])
    # The new voice is listed at once (the cache was dropped) and converts.
    assert "dora" in applio_rt.submit("rvc", "voices").wait(60).outputs.data["voices"]
    converted = applio_rt.submit("rvc", "convert", {"input": str(line), "voice": "dora"}).wait(60)
    assert converted.state is JobState.SUCCEEDED, converted.error


def test_a_step_the_app_answers_with_failed_fails_the_job_with_its_message(applio_rt: Runtime, applio: Any) -> None:
    """Applio's training steps return "... failed ..." instead of raising: that is a failed job, not a success."""
    (applio.root / "assets" / "datasets" / "empty").mkdir(parents=True)
    job = applio_rt.submit("rvc", "train", {"name": "eve", "dataset_path": "assets/datasets/empty"}).wait(60)
    assert job.state is JobState.FAILED and job.error is not None, job.error
    assert "preprocess failed" in job.error.message and "Preprocessing failed for model eve" in job.error.message


def test_cancelling_a_training_stops_it_on_the_app(applio_rt: Runtime, applio: Any, tmp_path: Path) -> None:
    """Cancelling the Gradio event would leave Applio's training process running: the client presses its Stop."""
    dataset = tmp_path / "takes"
    dataset.mkdir()
    media.write_wav(dataset / "take.wav", media.tone(1.0, freq=200.0))
    training = threading.Event()

    def seen(job: Job) -> None:
        if job.progress.stage.startswith("train"):
            training.set()

    h = applio_rt.submit("rvc", "train", {"name": "fay", "dataset": str(dataset), "epochs": 5000}, on_progress=seen)
    assert pump_until(applio_rt, training.is_set, 60), h.status().progress
    assert applio.wait_for("training fay: 5000 epochs", SETTLE)
    h.cancel()
    job = h.wait(SETTLE)
    assert job.state is JobState.CANCELLED, job.error
    assert applio.wait_for("training fay: stopped", SETTLE), applio.output[-10:]
    assert not (applio.root / "logs" / "fay" / "fay.pth").exists()


def test_training_refuses_a_missing_dataset_before_contacting_the_app(applio_rt: Runtime, tmp_path: Path) -> None:
    job = applio_rt.submit("rvc", "train", {"name": "x", "dataset": str(tmp_path / "none")}).wait(30)
    assert job.state is JobState.FAILED and job.error is not None and "holds no audio files" in job.error.message
    job = applio_rt.submit("rvc", "train", {"name": "../x", "dataset_path": "assets/datasets/x"}).wait(30)
    assert job.error is not None and "voice name" in job.error.message


def test_health_says_what_the_app_is(applio_rt: Runtime) -> None:
    info = applio_rt.check_health("rvc").result(60)
    assert info.ok, info.message
    assert info.message.startswith("Applio-style app (Gradio") and "voices" in info.message
