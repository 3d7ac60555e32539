"""Conversations fitted into a context window, strict schemas and the validation of structured answers."""

from __future__ import annotations

import json

import pytest
from llm_support import VALID_SHOTS
from movie_director.clients.llm import structured as st
from movie_director.clients.llm.conversation import Conversation, estimate_tokens, message_tokens
from movie_director.clients.llm.shots import ShotList
from movie_director.runtime.errors import InvalidRequestError


def test_tokens_are_estimated_from_utf8_bytes_plus_message_overhead() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2
    assert estimate_tokens("日本語") == 3  # 9 bytes: non-Latin text costs more, as in real tokenizers
    assert message_tokens({"role": "user", "content": "abcd"}) == 5
    conv = Conversation(system="abcd").user("abcdefgh")
    assert conv.estimate() == 5 + 6 + 3


def test_trimming_drops_the_oldest_turns_never_the_system_prompt() -> None:
    conv = Conversation(system="You are a screenwriter. " * 10)
    for i in range(10):
        conv.user(f"question {i} " * 20).assistant(f"answer {i} " * 20)
    conv.user("the last question")
    budget = conv.estimate() // 2
    trimmed = conv.trimmed(budget)
    assert trimmed.estimate() <= budget
    assert trimmed.system == conv.system and trimmed.messages()[0]["role"] == "system"
    assert trimmed.history[-1]["content"] == "the last question"
    assert trimmed.history[0]["role"] == "user"  # never starts with an answer to a dropped question
    assert trimmed.history == conv.history[-len(trimmed.history) :]  # only the oldest went
    assert len(conv.history) == 21  # the original is untouched


def test_a_conversation_that_fits_is_kept_whole() -> None:
    conv = Conversation(system="s").user("a").assistant("b").user("c")
    assert conv.trimmed(conv.estimate()).history == conv.history


def test_a_newest_message_too_long_for_the_window_is_refused_not_dropped() -> None:
    conv = Conversation(system="short").user("x" * 4000)
    with pytest.raises(InvalidRequestError, match="too long for the model") as info:
        conv.fit(context_window=1000, max_tokens=200)
    assert info.value.details["budget_tokens"] == 800
    with pytest.raises(InvalidRequestError, match="no room for the prompt"):
        conv.fit(context_window=100, max_tokens=100)


def test_fit_leaves_room_for_the_answer() -> None:
    conv = Conversation(system="s")
    for i in range(50):
        conv.user(f"q{i} " * 30).assistant(f"a{i} " * 30)
    conv.user("now")
    fitted = conv.fit(context_window=2000, max_tokens=500)
    assert fitted.estimate() + 500 <= 2000
    assert fitted.estimate() > 1000  # it keeps as much history as fits


def test_messages_are_read_and_checked() -> None:
    conv = Conversation.from_messages(
        [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}, {"role": "system", "content": "c"}],
        system="z",
    )
    assert conv.system == "z\n\na\n\nc" and conv.history == [{"role": "user", "content": "b"}]
    for bad in ([{"role": "wizard", "content": "x"}], [{"role": "user", "content": 3}], ["hello"]):
        with pytest.raises(InvalidRequestError):
            Conversation.from_messages(bad)  # type: ignore[arg-type]


def test_strict_schema_closes_every_object_and_requires_every_property() -> None:
    fmt = st.response_format(ShotList)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    objects = [schema, *schema["$defs"].values()]
    assert {o["title"] for o in objects} == {"ShotList", "Shot", "DialogueLine"}
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
    shot = schema["$defs"]["Shot"]["properties"]
    assert shot["duration_s"]["minimum"] == 0.5 and shot["duration_s"]["maximum"] == 60


def test_answers_are_validated_and_fenced_json_is_unwrapped() -> None:
    fenced = "```json\n" + json.dumps(VALID_SHOTS) + "\n```"
    value, errors = st.validate_answer(ShotList, fenced)
    assert errors == [] and isinstance(value, ShotList) and value.duration_s == 7.5
    bad = {"title": "t", "shots": [{"description": "d", "duration_s": 90, "dialogue": [], "sound_cues": []}]}
    value, errors = st.validate_answer(ShotList, json.dumps(bad))
    assert value is None
    assert any(e.startswith("shots.0.duration_s:") and "90" in e for e in errors)
    assert any(e.startswith("shots.0.camera:") for e in errors)
    _, errors = st.validate_answer(ShotList, "Sure! Here is your shot list.")
    assert errors and "(the whole answer)" in errors[0]
    _, errors = st.validate_answer(ShotList, json.dumps({"title": "t", "shots": []}))
    assert any("shots" in e for e in errors)


def test_the_repair_request_names_each_problem() -> None:
    text = st.repair_request(["shots.0.duration_s: too long"], {"type": "object"})
    assert "shots.0.duration_s: too long" in text and '{"type":"object"}' in text
    assert st.quote("x" * 1000).endswith("…") and len(st.quote("x" * 1000)) == st.QUOTE_CHARS + 1
