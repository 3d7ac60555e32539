"""Wan2GP requests checked against what each model declares (its schema, defaults and LoRAs, served by the MCP
stand-in as Wan2GP serves them): any declared setting goes through, anything else is refused by name before a
generation starts; the frame rate is the model's."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from movie_director.clients.wan2gp.schema import DEFAULT_FPS, ModelSchema
from movie_director.clients.wan2gp.standin_mcp import StandinServer
from movie_director.runtime import JobState, Runtime
from PIL import Image

SMALL = {"resolution": "96x64", "num_inference_steps": 3}


def video(prompt: str = "a harbour at dawn", **fields: Any) -> dict[str, Any]:
    return {"prompt": prompt, "video_length": 9, **SMALL, **fields}


def avi_fps(path: str) -> int:
    data = Path(path).read_bytes()
    at = data.index(b"avih") + 8
    (micro_per_frame,) = struct.unpack("<I", data[at : at + 4])
    return round(1_000_000 / micro_per_frame)


def test_any_setting_the_model_declares_reaches_the_server(wan_rt: Runtime, standin: StandinServer) -> None:
    extra = {"NAG_scale": 1.5, "guidance2_scale": 3.5, "switch_threshold": 900, "film_grain_intensity": 0.1}
    job = wan_rt.submit("wan2gp", "video", video(model_type="t2v_2_2", **extra)).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    sent = standin.engine.sources[-1]
    assert {k: sent[k] for k in extra} == extra and sent["model_type"] == "t2v_2_2"
    assert "guidance3_scale" not in sent  # unset settings are left to the model's defaults


def test_a_setting_the_model_does_not_declare_is_refused_by_name(wan_rt: Runtime, standin: StandinServer) -> None:
    cases = [
        ({"guidance_scal": 4}, "'guidance_scal' is not a setting of t2v_1.3B (did you mean guidance_scale"),
        ({"guidance2_scale": 4}, "'guidance2_scale' is not a setting of t2v_1.3B"),  # t2v_2_2 has it, this not
        ({"NAG_scale": "strong"}, "NAG_scale: must be a number, got 'strong'"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"video_length": 401}, "t2v_1.3B makes 5 to 97 frames, got 401"),
        ({"image_end": __file__}, "image_end: the model t2v_1.3B takes no end image"),
        ({"force_fps": "fast"}, "force_fps"),
    ]
    for fields, words in cases:
        job = wan_rt.submit("wan2gp", "video", video(model_type="t2v_1.3B", **fields)).wait(20)
        assert job.state is JobState.FAILED and job.error is not None, fields
        assert job.error.code == "invalid_request" and words in job.error.message, (fields, job.error.message)
    assert standin.engine.calls["generate"] == 0  # all refused before anything was generated


def test_loras_with_multipliers_and_an_end_image(wan_rt: Runtime, standin: StandinServer, tmp_path: Path) -> None:
    start, end = tmp_path / "start.png", tmp_path / "end.png"
    Image.new("RGB", (96, 64), (200, 40, 40)).save(start)
    Image.new("RGB", (96, 64), (40, 40, 200)).save(end)
    loras = [{"name": "orbit_shot.safetensors", "multiplier": 0.8}, {"name": "lightx2v_4step.safetensors"}]
    request = video(model_type="i2v_2_2", image_start=str(start), image_end=str(end), loras=loras)
    job = wan_rt.submit("wan2gp", "video", request).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    sent = standin.engine.sources[-1]
    assert sent["activated_loras"] == ["orbit_shot.safetensors", "lightx2v_4step.safetensors"]
    assert sent["loras_multipliers"] == "0.8 1"
    assert sent["image_start"] in standin.engine.gallery and sent["image_end"] in standin.engine.gallery
    bad = wan_rt.submit("wan2gp", "video", video(model_type="i2v_2_2", loras=[{"name": "nope.safetensors"}])).wait(20)
    assert bad.state is JobState.FAILED and bad.error is not None
    assert "no LoRA 'nope.safetensors' for i2v_2_2 (it has: lightx2v_4step.safetensors, orbit_shot" in bad.error.message


def test_the_frame_rate_is_the_models(wan_rt: Runtime) -> None:
    for model, fps in (("ltx2_22B_distilled", 24), ("t2v_1.3B", 16)):
        job = wan_rt.submit("wan2gp", "video", {"prompt": "x", "model_type": model, "duration": "1s", **SMALL}).wait(20)
        assert job.state is JobState.SUCCEEDED, job.error
        assert job.outputs.data["fps"] == fps and job.outputs.data["frames"] == fps
        assert avi_fps(job.outputs.files[0].path) == fps
    job = wan_rt.submit("wan2gp", "video", video(model_type="t2v_1.3B", force_fps="8")).wait(20)
    assert job.outputs.data["fps"] == 8


def test_without_a_model_the_servers_first_is_used(wan_rt: Runtime, standin: StandinServer) -> None:
    job = wan_rt.submit("wan2gp", "video", {"prompt": "rain on glass", **SMALL}).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.data["model_type"] == "t2v_1.3B" == standin.engine.sources[-1]["model_type"]
    assert job.outputs.data["frames"] == 81  # the model's default length, not one of ours


def test_a_schema_job_says_what_a_model_declares(wan_rt: Runtime) -> None:
    job = wan_rt.submit("wan2gp", "schema", {"model_type": "i2v_2_2"}).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    data = job.outputs.data
    assert data["fps"] == 16 and data["start_image"] and data["end_image"] and data["described"]
    assert data["loras"] == ["lightx2v_4step.safetensors", "orbit_shot.safetensors"]
    assert {"guidance2_scale", "NAG_scale", "image_end", "activated_loras"} <= set(data["settings"])
    assert data["defaults"]["flow_shift"] == 7.0 and data["frames_minimum"] == 5
    t2v = wan_rt.submit("wan2gp", "schema", {"model_type": "t2v_1.3B"}).wait(20).outputs.data
    assert not t2v["end_image"] and "image_start" not in t2v["settings"]
    missing = wan_rt.submit("wan2gp", "schema", {"model_type": "wan_9000"}).wait(20)
    assert missing.state is JobState.FAILED and "has no model 'wan_9000'" in missing.error.message


def test_hostile_schemas_are_protocol_errors_and_numbers_are_checked() -> None:
    for schema, defaults in ((None, {}), ({"metadata": []}, {}), ({"metadata": {}}, ["x"])):
        try:
            ModelSchema.parse("m", schema, defaults, None, url="http://x", backend="wan2gp")
        except Exception as exc:
            assert type(exc).__name__ == "ProtocolError", exc
        else:
            raise AssertionError(f"{schema!r}/{defaults!r} was accepted")
    parsed = ModelSchema.parse(
        "m", {"metadata": {"fps": "control", "frames_minimum": -3}}, {"seed": -1}, {"loras": "x"}, url="u", backend="b"
    )
    assert parsed.fps is None and parsed.frame_rate == DEFAULT_FPS and parsed.frames_minimum is None
    assert parsed.loras == ()  # a list that is not a list: none
