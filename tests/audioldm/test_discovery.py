"""Finding AudioLDM's text2audio in the shapes real apps describe it: named (Gradio 4+), auto-named, and the Gradio
3.x official demo that lists it by index with nothing but component labels."""

from __future__ import annotations

from typing import Any

import pytest
from movie_director.clients.audioldm.client import TEXT2AUDIO
from movie_director.clients.audioldm.standin import (
    CANDIDATES_LABEL,
    DURATION_LABEL,
    GUIDANCE_LABEL,
    SEED_LABEL,
    TEXT_LABEL,
)
from movie_director.clients.gradio_app.endpoints import match_endpoint, parse_info
from movie_director.runtime.errors import InvalidRequestError


def param(label: str, component: str, name: str = "", default: Any = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"label": label, "component": component, "type": {"type": "string"}}
    if name:
        spec.update(parameter_name=name, parameter_has_default=default is not None, parameter_default=default)
    return spec


OFFICIAL = [
    param(TEXT_LABEL, "Textbox"),
    param(DURATION_LABEL, "Slider"),
    param(GUIDANCE_LABEL, "Slider"),
    param(SEED_LABEL, "Number"),
    param(CANDIDATES_LABEL, "Slider"),
]


def test_the_gradio3_demo_is_found_by_labels_and_called_by_index() -> None:
    raw = {
        "named_endpoints": {},
        "unnamed_endpoints": {
            "0": {"parameters": [param("Share", "Textbox")], "returns": []},
            "2": {"parameters": OFFICIAL, "returns": [{"component": "Video"}]},
        },
    }
    info = parse_info(raw, url="http://a", version="3.44.4")
    match = match_endpoint(info.endpoints, [TEXT2AUDIO])
    assert match is not None and match.by == "parameters" and match.key == 2
    assert match.roles == {"text": 0, "duration": 1, "guidance_scale": 2, "seed": 3, "n_candidates": 4}
    args = match.arguments({"text": "a bell", "duration": 5.0, "guidance_scale": 2.5, "seed": 7, "n_candidates": 1})
    assert args == ["a bell", 5.0, 2.5, 7, 1]
    with pytest.raises(InvalidRequestError, match="Duration"):
        match.arguments({"text": "a bell"})  # Gradio 3 gave no defaults: every input must be filled


def test_audioldm2_has_no_duration_role() -> None:
    params = [
        param(TEXT_LABEL, "Textbox", "text", ""),
        param(GUIDANCE_LABEL, "Slider", "guidance_scale", 3.5),
        param(SEED_LABEL, "Number", "random_seed", 45),
        param(CANDIDATES_LABEL, "Slider", "n_candidates", 3),
    ]
    info = parse_info({"named_endpoints": {"/text2audio": {"parameters": params}}}, url="http://a")
    match = match_endpoint(info.endpoints, [TEXT2AUDIO])
    assert match is not None and match.by == "name" and not match.has("duration")
    assert match.arguments({"text": "wind"}) == ["wind", 3.5, 45, 3]


def test_an_auto_numbered_name_still_matches() -> None:
    info = parse_info({"named_endpoints": {"/text2audio_1": {"parameters": OFFICIAL}}}, url="http://a")
    match = match_endpoint(info.endpoints, [TEXT2AUDIO])
    assert match is not None and match.by == "name" and match.key == "/text2audio_1"


def test_an_app_without_the_inputs_is_not_mistaken_for_audioldm() -> None:
    params = [param("Input audio", "Audio"), param("Text", "Textbox", "text", "")]
    info = parse_info({"named_endpoints": {"/infer": {"parameters": params}}}, url="http://a")
    assert match_endpoint(info.endpoints, [TEXT2AUDIO]) is None
