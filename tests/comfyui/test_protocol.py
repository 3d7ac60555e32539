"""The ComfyUI wire vocabulary against a real 0.3.75 server's recorded frames, and its never-crash guarantee."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from movie_director.clients.comfyui import protocol
from movie_director.runtime.errors import ProtocolError

_LOCAL = Path(__file__).parent / "data" / "comfyui-0.3.75.json"
_SHARED = Path("/work/shared/protocols/comfyui-transcripts/comfyui-0.3.75.json")
TRANSCRIPT_PATH = _LOCAL if _LOCAL.exists() else _SHARED
if not TRANSCRIPT_PATH.exists():  # pragma: no cover - both copies are part of the project
    pytest.skip("ComfyUI transcripts not found", allow_module_level=True)
TRANSCRIPT: dict[str, Any] = json.loads(TRANSCRIPT_PATH.read_text())
SCENARIOS = {s["scenario"]: s for s in TRANSCRIPT["scenarios"]}


def text_frames(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in scenario.get("frames", []) if not f.get("binary")]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_recorded_text_frame_parses(name: str) -> None:
    for frame in text_frames(SCENARIOS[name]):
        for wire in (json.dumps(frame), json.dumps(frame).encode()):
            msg = protocol.parse_message(wire)
            assert msg.type == frame["type"]
            assert msg.known
            assert isinstance(msg.data, protocol.DATA_MODELS[frame["type"]])
            assert msg.raw == frame
            if "prompt_id" in frame["data"]:
                assert msg.prompt_id == frame["data"]["prompt_id"]


def test_recorded_frames_have_the_documented_meaning() -> None:
    frames = SCENARIOS["success"]["frames"]
    first = protocol.parse_message(json.dumps(frames[0]))
    assert isinstance(first.data, protocol.StatusData)
    assert first.data.sid and first.data.queue_remaining == 0
    last = protocol.parse_message(json.dumps(frames[-1]))
    assert last.is_done and last.prompt_id == SCENARIOS["success"]["submit_body"]["prompt_id"]
    executed = next(protocol.parse_message(json.dumps(f)) for f in frames if f.get("type") == "executed")
    assert isinstance(executed.data, protocol.ExecutedData)
    assert executed.data.files() == [protocol.FileRef(filename="md_rec_00001_.png", subfolder="", type="output")]
    state = next(protocol.parse_message(json.dumps(f)) for f in frames if f.get("type") == "progress_state")
    assert isinstance(state.data, protocol.ProgressStateData)
    assert state.data.nodes["1"].state == "running" and state.data.nodes["1"].parent_node_id is None

    err = next(f for f in SCENARIOS["execution_error"]["frames"] if f.get("type") == "execution_error")
    data = protocol.parse_message(json.dumps(err)).data
    assert isinstance(data, protocol.ExecutionErrorData)
    assert data.exception_type == "PIL.UnidentifiedImageError" and data.node_type == "LoadImage"
    assert data.current_outputs == ["1", "2"] and data.executed == []


def test_recorded_bodies_parse() -> None:
    for scenario in SCENARIOS.values():
        if scenario["submit_status"] == 200:
            ok = protocol.parse_body(protocol.PromptResponse, scenario["submit_body"])
            assert ok.node_errors == {}
        else:
            bad = protocol.parse_body(protocol.PromptErrorResponse, scenario["submit_body"])
            assert bad.summary()
        if "history" in scenario:
            entries = protocol.parse_history(scenario["history"])
            entry = entries[scenario["submit_body"]["prompt_id"]]
            assert entry.finished
            assert entry.succeeded == (entry.status is not None and entry.status.status_str == "success")
    invalid = protocol.parse_body(protocol.PromptErrorResponse, SCENARIOS["invalid_value"]["submit_body"])
    assert "steps" in invalid.summary() and "bigger than max" in invalid.summary()
    edge = TRANSCRIPT["http_edge_cases"]
    assert protocol.parse_history(json.loads(edge["history_unknown"][1])) == {}
    queue = protocol.parse_body(protocol.QueueState, edge["queue"][1])
    assert queue.running_ids() == [] and queue.pending_ids() == []
    for key in ("empty_prompt", "no_outputs", "missing_input"):
        body = protocol.parse_body(protocol.PromptErrorResponse, edge[key][1])
        assert isinstance(body.error, protocol.PromptErrorInfo)
    bad_link = protocol.parse_body(protocol.PromptErrorResponse, json.loads(edge["bad_prompt_id"][1]))
    assert bad_link.node_errors["1"].errors[0].type == "exception_during_validation"


def test_history_helpers() -> None:
    entry = protocol.parse_history(SCENARIOS["execution_error"]["history"])
    (value,) = entry.values()
    assert not value.succeeded and value.files() == []
    assert value.message("execution_error")["exception_type"] == "PIL.UnidentifiedImageError"  # type: ignore[index]
    assert value.message("nope") is None
    with pytest.raises(ProtocolError):
        protocol.parse_history([1, 2])
    with pytest.raises(ProtocolError):
        protocol.parse_history({"x": {"outputs": "no"}})


def test_recorded_binary_heads() -> None:
    """The transcripts keep 16 bytes of each binary frame: event 1 parses, event 4's metadata is cut short."""
    for scenario in SCENARIOS.values():
        for frame in scenario.get("frames", []):
            if not frame.get("binary"):
                continue
            head = bytes.fromhex(frame["head_hex"])
            event = struct.unpack(">I", head[:4])[0]
            if event == 1:
                parsed = protocol.parse_binary_frame(head)
                assert isinstance(parsed, protocol.PreviewFrame)
                assert parsed.media_type == "image/jpeg" and parsed.metadata is None and parsed.prompt_id is None
            else:
                assert event == 4
                with pytest.raises(ProtocolError):
                    protocol.parse_binary_frame(head)


def test_preview_with_metadata_encodes_like_the_real_server() -> None:
    scenario = SCENARIOS["success_preview_metadata"]
    prompt_id = scenario["submit_body"]["prompt_id"]
    head = next(f for f in scenario["frames"] if f.get("binary"))
    meta = {
        "node_id": "2",
        "prompt_id": prompt_id,
        "display_node_id": "2",
        "parent_node_id": None,
        "real_node_id": "2",
        "image_type": "image/jpeg",
    }
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 32
    frame = protocol.encode_preview_frame_with_metadata(jpeg, meta)
    assert frame[:16].hex() == head["head_hex"]
    parsed = protocol.parse_binary_frame(frame)
    assert isinstance(parsed, protocol.PreviewFrame)
    assert parsed.event == protocol.BinaryEventType.PREVIEW_IMAGE_WITH_METADATA
    assert (parsed.prompt_id, parsed.node_id, parsed.media_type, parsed.image) == (prompt_id, "2", "image/jpeg", jpeg)


def test_binary_roundtrips() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 10
    for fmt, media in ((1, "image/jpeg"), ("PNG", "image/png"), (protocol.PreviewFormat.PNG, "image/png")):
        parsed = protocol.parse_binary_frame(protocol.encode_preview_frame(png, fmt))
        assert isinstance(parsed, protocol.PreviewFrame) and parsed.media_type == media and parsed.image == png
    with pytest.raises(ValueError):
        protocol.encode_preview_frame(png, "gif")
    text = protocol.parse_binary_frame(protocol.encode_text_frame("12", "héllo"))
    assert text == protocol.TextFrame(event=3, node_id="12", text="héllo")
    # event 4 without image_type: the media type is sniffed from the bytes
    sniffed = protocol.parse_binary_frame(protocol.encode_preview_frame_with_metadata(png, {"node_id": "3"}))
    assert isinstance(sniffed, protocol.PreviewFrame) and sniffed.media_type == "image/png"
    unknown = protocol.parse_binary_frame(struct.pack(">I", 99) + b"abc")
    assert unknown == protocol.UnknownFrame(event=99, payload=b"abc")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00\x00",
        struct.pack(">I", 1),
        struct.pack(">II", 1, 1),
        struct.pack(">II", 1, 7) + b"img",
        struct.pack(">II", 3, 10) + b"ab",
        struct.pack(">II", 3, 2) + b"\xff\xfe",
        struct.pack(">II", 4, 100) + b"{}",
        struct.pack(">II", 4, 2) + b"[]" + b"img",
        struct.pack(">II", 4, 3) + b"{x}" + b"img",
        struct.pack(">II", 4, 2) + b"{}",
        struct.pack(">II", 4, 2) + b"{}" + b"not an image",
    ],
)
def test_bad_binary_frames_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse_binary_frame(data)
    assert info.value.backend == "comfyui"


def test_unknown_types_are_generic_not_errors() -> None:
    msg = protocol.parse_message('{"type": "crystools.monitor", "data": {"cpu": 12}}')
    assert not msg.known and isinstance(msg.data, protocol.GenericData) and msg.raw["data"] == {"cpu": 12}
    odd = protocol.parse_message('{"type": "custom", "data": [1, 2]}')
    assert isinstance(odd.data, protocol.GenericData) and odd.prompt_id is None
    reconnect = protocol.parse_message('{"type": "executing", "data": {"node": "7"}}')
    assert isinstance(reconnect.data, protocol.ExecutingData) and not reconnect.is_done


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1, 2]",
        "null",
        '{"data": {}}',
        '{"type": 5, "data": {}}',
        '{"type": "status"}',
        '{"type": "status", "data": [1]}',
        '{"type": "execution_start", "data": {}}',
        '{"type": "executing", "data": {"node": 5}}',
        '{"type": "progress", "data": {"value": "x", "max": 3}}',
        '{"type": "progress_state", "data": {"prompt_id": "p", "nodes": {"1": 3}}}',
        '{"type": "executed", "data": {"node": "1", "output": [1]}}',
        '{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": "many"}}}}',
        "[" * 100_000,
        '{"type": "x", "data": ' + "1" * 10_000 + "}",
        b"\xff\xfe\x00garbage",
        '{"type": "progress", "data": {"value": 1, "max": ',
    ],
)
def test_malformed_messages_raise_protocol_error(text: str | bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse_message(text)
    assert info.value.backend == "comfyui"


def test_encode_message_roundtrip() -> None:
    wire = protocol.encode_message("progress", {"value": 2, "max": 5, "prompt_id": "p", "node": "3"})
    msg = protocol.parse_message(wire)
    assert isinstance(msg.data, protocol.ProgressData) and (msg.data.value, msg.data.max) == (2, 5)
    model = protocol.ExecutionSuccessData(prompt_id="p", timestamp=1)
    assert protocol.parse_message(protocol.encode_message("execution_success", model)).prompt_id == "p"
    assert set(protocol.DATA_MODELS) == {t.value for t in protocol.MessageType}


def test_collect_file_refs_accepts_any_output_key() -> None:
    output = {
        "images": [{"filename": "a.webp", "subfolder": "s", "type": "output"}],
        "animated": [True],
        "gifs": [{"filename": "b.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4"}],
        "text": ["hello"],
        "bad": [{"filename": 3}],
    }
    names = [ref.filename for ref in protocol.collect_file_refs(output)]
    assert names == ["a.webp", "b.mp4"]
    assert protocol.collect_file_refs([]) == []  # type: ignore[arg-type]


# ---- property tests: nothing but ProtocolError, whatever arrives

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_field_names = st.sampled_from(
    [
        "prompt_id",
        "node",
        "nodes",
        "value",
        "max",
        "status",
        "sid",
        "output",
        "exec_info",
        "queue_remaining",
        "timestamp",
        "executed",
        "traceback",
        "node_id",
        "state",
        "display_node",
        "supports_preview_metadata",
    ]
)
_data = st.dictionaries(_field_names, _json, max_size=6) | _json


def _only_protocol_errors(call: Any, value: Any) -> None:
    try:
        call(value)
    except ProtocolError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_parse_message_arbitrary_text(text: str) -> None:
    _only_protocol_errors(protocol.parse_message, text)


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_parse_message_arbitrary_bytes(data: bytes) -> None:
    _only_protocol_errors(protocol.parse_message, data)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([*protocol.DATA_MODELS, "unknown", ""]), _data)
def test_parse_message_known_types_with_arbitrary_data(msg_type: str, data: Any) -> None:
    for wire in (json.dumps({"type": msg_type, "data": data}), json.dumps({"type": msg_type, "data": {"x": data}})):
        _only_protocol_errors(protocol.parse_message, wire)


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_parse_binary_frame_arbitrary_bytes(data: bytes) -> None:
    _only_protocol_errors(protocol.parse_binary_frame, data)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([1, 2, 3, 4, 5]), st.integers(0, 2**32 - 1), st.binary(max_size=64))
def test_parse_binary_frame_known_events(event: int, second: int, rest: bytes) -> None:
    _only_protocol_errors(protocol.parse_binary_frame, struct.pack(">II", event, second) + rest)
    _only_protocol_errors(protocol.parse_binary_frame, struct.pack(">II", event, min(second, len(rest))) + rest)


@settings(max_examples=200, deadline=None)
@given(_json, st.binary(max_size=16))
def test_parse_binary_frame_arbitrary_metadata(meta: Any, image: bytes) -> None:
    blob = json.dumps(meta).encode()
    _only_protocol_errors(protocol.parse_binary_frame, struct.pack(">II", 4, len(blob)) + blob + image)


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "progress_state", "data": {"nodes": {}}}',
        '{"type": "progress_state", "data": {"prompt_id": "p", "nodes": [1]}}',
        '{"type": "progress_state", "data": {"prompt_id": "p", "nodes": {"1": {"state": 7}}}}',
        '{"type": "progress_state", "data": {"prompt_id": "p", "nodes": {"1": {"value": "x"}}}}',
        '{"type": "progress_state", "data": {"prompt_id": "p"' + ', "x": [' * 5000 + "]" * 5000 + "}}",
        '{"type": "progress_state", "data": ',
    ],
)
def test_progress_state_frames_read_in_one_pass_refuse_what_the_general_path_refuses(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse_message(text)
    assert info.value.backend == "comfyui"
    assert "progress_state" in info.value.message or "JSON" in info.value.message


def test_progress_state_read_in_one_pass_equals_the_general_reading() -> None:
    frame = {
        "type": "progress_state",
        "data": {"prompt_id": "p", "nodes": {"3": {"value": 2, "max": 4, "state": "running", "node_id": "3"}}},
        "extra": 1,
    }
    fast = protocol.parse_message(json.dumps(frame))
    general = protocol.parse_message(json.dumps(frame, indent=1))  # not the server's spelling: the general path
    assert isinstance(fast.data, protocol.ProgressStateData)
    assert fast.data == general.data and fast.prompt_id == "p"
    assert fast.data.nodes["3"].state == "running" and fast.data.nodes["3"].value == 2.0
