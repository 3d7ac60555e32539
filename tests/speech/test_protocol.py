"""The speech wire shapes as the real servers send them (see docs/protocols/speech.md), and error pages."""

from __future__ import annotations

import doctest
import json

import pytest
from movie_director.clients import errorpage
from movie_director.clients.speech import protocol
from movie_director.clients.speech.client import parse_request
from movie_director.runtime.errors import InvalidRequestError


def test_the_doctests_hold() -> None:
    for module in (protocol, errorpage):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


@pytest.mark.parametrize(
    ("payload", "voices"),
    [
        ({"voices": [{"id": "af_heart", "name": "af_heart"}, {"id": "am_adam"}]}, ["af_heart", "am_adam"]),
        ({"voices": ["af_heart", "af_heart", " bf_emma "]}, ["af_heart", "bf_emma"]),  # Kokoro ?legacy=true
        ({"object": "list", "data": [{"id": "alloy"}, {"name": "echo"}]}, ["alloy", "echo"]),
        ([{"voice_id": "x"}, 7, None, {"id": ""}, "y" * 201], ["x"]),  # junk is skipped, never trusted
    ],
)
def test_voice_lists_in_every_known_shape(payload: object, voices: list[str]) -> None:
    assert protocol.parse_voices(payload) == voices


def test_a_voice_list_of_another_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="no 'voices' or 'data'"):
        protocol.parse_voices({"detail": "Not Found"})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"detail": {"error": "validation_error", "message": "Voice 'x' not found"}}, "Voice 'x' not found"),
        ({"error": {"message": "No deployments for tts", "type": "None", "code": "400"}}, "No deployments for tts"),
        ({"message": "Empty Input", "code": 400, "type": "BadRequestError", "param": "input"}, "Empty Input"),
        ({"detail": [{"loc": ["body", "speed"], "msg": "too fast", "type": "x"}]}, "speed: too fast"),
        ({"detail": "Not authenticated"}, "Not authenticated"),
    ],
)
def test_error_messages_of_kokoro_litellm_and_openedai(body: dict[str, object], message: str) -> None:
    assert protocol.error_message(400, json.dumps(body).encode()) == message


def test_requests_are_checked_before_they_are_sent() -> None:
    assert parse_request({"text": "  Hello.  "}).body("tts-1", "af_heart") == {
        "model": "tts-1", "input": "Hello.", "voice": "af_heart", "response_format": "wav", "speed": 1.0
    }  # fmt: skip
    for bad, why in [
        ({"text": "x", "speed": 9}, "speed"),
        ({"text": "x" * 5000}, "text"),
        ({"text": "x", "response_format": "ogg"}, "response_format"),
        ({"text": "x", "volume": 2}, "volume"),
    ]:
        with pytest.raises(InvalidRequestError, match=why):
            parse_request(bad)


def test_web_pages_are_told_apart_from_api_errors() -> None:
    assert errorpage.page_message(502, b"<!DOCTYPE html><html><body><h1>Bad &lt;Gateway&gt;</h1>", "http://h:81/x") == (
        "HTTP 502 from h:81: Bad <Gateway>"
    )
    assert errorpage.page_message(500, b'{"error": {"message": "boom"}}', "http://h") is None
    untitled = errorpage.page_message(503, b"<html>no title", "https://user:pw@host/v1")
    assert untitled == "HTTP 503 from host: an error page"  # no credentials from the URL either
