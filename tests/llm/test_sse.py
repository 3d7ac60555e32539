"""The SSE decoder and the stream-chunk parser: exact events whatever the chunking, bounded, and strict."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from movie_director.clients.llm.protocol import error_from_payload, parse_chunk, parse_completion
from movie_director.clients.llm.sse import SseDecoder, SseEvent
from movie_director.runtime.errors import (
    AuthenticationError,
    InvalidRequestError,
    ProtocolError,
    RateLimitedError,
    ServerError,
)

# Text without line breaks, rich in multibyte characters (2-, 3- and 4-byte UTF-8).
LINE_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from('aZ :{}"[]é✓🎬日本ü\t'), st.characters(blacklist_categories=("Cs",))),
    max_size=30,
).map(lambda s: s.replace("\r", "").replace("\n", ""))

EVENT = st.fixed_dictionaries(
    {
        "data": st.lists(LINE_TEXT, min_size=1, max_size=3),
        "event": st.one_of(st.none(), st.sampled_from(["message", "error", "update"])),
        "id": st.one_of(st.none(), st.text(alphabet="abc123", min_size=1, max_size=5)),
        "comment": st.booleans(),
    }
)


def render(events: list[dict], endings: list[str]) -> tuple[bytes, list[SseEvent]]:  # type: ignore[type-arg]
    """The stream's bytes (line ends drawn from ``endings`` in turn) and the events a correct decoder yields."""
    lines: list[str] = []
    expected: list[SseEvent] = []
    last_id = None
    for ev in events:
        if ev["comment"]:
            lines.append(": ping")
        if ev["event"]:
            lines.append(f"event: {ev['event']}")
        if ev["id"]:
            lines.append(f"id: {ev['id']}")
            last_id = ev["id"]
        lines.extend(f"data: {d}" for d in ev["data"])
        lines.append("")
        expected.append(SseEvent("\n".join(ev["data"]), ev["event"] or "message", last_id))
    out = []
    previous = ""
    for i, line in enumerate(lines):
        end = endings[i % len(endings)]
        if previous == "\r" and end == "\n" and line == "":
            end = "\r\n"  # CR then a lone LF would read as one CRLF: that is not a blank line
        out.append(line + end)
        previous = end
    return "".join(out).encode("utf-8"), expected


def decode(data: bytes, cuts: list[int]) -> list[SseEvent]:
    decoder = SseDecoder()
    events: list[SseEvent] = []
    start = 0
    for cut in sorted(set(cuts)):
        events += decoder.feed(data[start:cut])
        start = cut
    events += decoder.feed(data[start:])
    events += decoder.close()
    assert not decoder.truncated
    return events


@settings(max_examples=400, deadline=None)
@given(
    events=st.lists(EVENT, min_size=1, max_size=6),
    endings=st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=1, max_size=4),
    cuts=st.lists(st.floats(min_value=0, max_value=1), max_size=12),
    bom=st.booleans(),
)
def test_any_split_of_any_stream_gives_the_same_exact_events(events, endings, cuts, bom) -> None:  # type: ignore[no-untyped-def]
    data, expected = render(events, endings)
    if bom:
        data = b"\xef\xbb\xbf" + data
    positions = [int(c * len(data)) for c in cuts]
    assert decode(data, positions) == expected
    assert decode(data, list(range(len(data)))) == expected  # one byte at a time: every split at once


def test_a_litellm_stream_split_inside_a_character_and_inside_data() -> None:
    frames = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "INT"}}]},
        {"choices": [{"index": 0, "delta": {"content": " ✓🎬"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    data = b"".join(b"data: " + json.dumps(f, ensure_ascii=False).encode() + b"\r\n\r\n" for f in frames)
    data += b": keep-alive\r\ndata: [DONE]\r\n\r\n"
    emoji = data.index("🎬".encode()) + 2  # inside the 4-byte character
    inside_field = data.index(b"data:") + 3  # between "dat" and "a:"
    events = decode(data, [inside_field, emoji, len(data) - 1])
    assert [e.data for e in events][-1] == "[DONE]"
    deltas = [parse_chunk(e.data, "llm") for e in events[:-1]]
    assert "".join(d.content for d in deltas) == "INT ✓🎬"
    assert deltas[-1].finish_reason == "stop"


def test_multi_line_data_fields_and_retry() -> None:
    events = SseDecoder().feed(b"event: note\nid: 7\nretry: 1500\ndata: first\ndata:second\ndata\n\n")
    assert events == [SseEvent("first\nsecond\n", "note", "7", 1500)]


def test_an_event_cut_off_by_the_end_of_the_stream_is_dropped_and_flagged() -> None:
    decoder = SseDecoder()
    assert decoder.feed(b"data: complete\n\ndata: cut off") == [SseEvent("complete")]
    assert decoder.close() == []
    assert decoder.truncated


def test_lines_and_events_are_bounded() -> None:
    with pytest.raises(ProtocolError, match="line longer"):
        SseDecoder(max_line_bytes=100).feed(b"data: " + b"x" * 200)
    decoder = SseDecoder(max_event_bytes=100)
    with pytest.raises(ProtocolError, match="event larger"):
        for _ in range(20):
            decoder.feed(b"data: " + b"y" * 20 + b"\n")


def test_bytes_that_are_not_utf8_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not UTF-8"):
        SseDecoder().feed(b"data: \xff\xfe\n\n")


@pytest.mark.parametrize(
    ("payload", "cls"),
    [
        ({"error": {"message": "slow down", "type": "throttling_error", "code": "429"}}, RateLimitedError),
        ({"error": {"message": "the model crashed", "type": "None", "param": "None", "code": "500"}}, ServerError),
        ({"error": {"message": "overloaded", "code": "529"}}, ServerError),
        ({"error": {"message": "bad key", "code": "401"}}, AuthenticationError),
        ({"error": {"message": "No connected db.", "type": "no_db_connection", "code": "400"}}, AuthenticationError),
        ({"error": {"message": "messages is required", "param": "messages", "code": "400"}}, InvalidRequestError),
        ({"error": "something broke"}, ServerError),
    ],
)
def test_an_error_event_mid_stream_raises_the_right_error(payload: dict, cls: type) -> None:  # type: ignore[type-arg]
    with pytest.raises(cls) as info:
        parse_chunk(json.dumps(payload), "llm")
    assert "middle of its answer" in info.value.message or cls is AuthenticationError


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[1, 2]",
        '{"choices": "x"}',
        '{"choices": [{"delta": "x"}]}',
        '{"choices": [{"delta": {"content": 3}}]}',
    ],
)
def test_malformed_chunks_are_protocol_errors(data: str) -> None:
    with pytest.raises(ProtocolError):
        parse_chunk(data, "llm")


def test_usage_only_chunks_and_whole_answers() -> None:
    assert parse_chunk('{"choices": [], "usage": {"total_tokens": 3}}', "llm").usage == {"total_tokens": 3}
    body = {"model": "m", "choices": [{"finish_reason": "stop", "message": {"content": "hi"}}], "usage": {}}
    assert parse_completion(body, "llm").text == "hi"
    for bad in (None, [], {"choices": []}, {"choices": [{"message": "x"}]}):
        with pytest.raises(ProtocolError):
            parse_completion(bad, "llm")


def test_rate_limit_reads_retry_after_ms_first() -> None:
    headers = {"retry-after-ms": "1500", "retry-after": "30"}
    err = error_from_payload({"error": {"message": "wait"}}, status=429, headers=headers, backend="llm")
    assert isinstance(err, RateLimitedError) and err.retry_after == 1.5
