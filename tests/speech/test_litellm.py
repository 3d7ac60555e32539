"""A real LiteLLM proxy routing ``/v1/audio/speech`` to the eSpeak NG stand-in: one proxy, one key, TTS voices."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest
from movie_director.clients.serving import AppThread
from movie_director.runtime import JobState, Runtime
from support import REPO

sys.path.insert(0, str(REPO / "scripts"))

from litellm_proxy import LiteLLMProxy, mock_model

RtFactory = Callable[..., Runtime]


@pytest.fixture(scope="module")
def speech_proxy(tts: AppThread) -> Iterator[LiteLLMProxy]:
    models = [
        mock_model("director-llm", "A chat model listed first, as a mixed proxy does"),
        {
            "model_name": "narrator-tts",
            "litellm_params": {"model": "openai/tts-1", "api_base": f"{tts.url}/v1", "api_key": "sk-upstream"},
        },
    ]
    with LiteLLMProxy(models) as proxy:
        yield proxy


def test_the_proxy_speaks_a_line_through_the_stand_in(speech_proxy: LiteLLMProxy, speech_rt: RtFactory) -> None:
    rt = speech_rt(speech_proxy.url, key=speech_proxy.key)
    job = rt.submit("speech", "speak", {"text": "Keep the light burning.", "voice": "en_gb_clara"}).wait(60)
    assert job.state is JobState.SUCCEEDED, (job.error, speech_proxy.log_text())
    assert job.outputs.data["model"] == "narrator-tts"  # the proxy's speech model, not its first (chat) model
    assert job.outputs.data["duration_s"] > 0.5 and job.outputs.files[0].media_type == "audio/wav"


def test_through_the_proxy_voices_are_typed_and_a_wrong_one_is_the_servers_error(
    speech_proxy: LiteLLMProxy, speech_rt: RtFactory
) -> None:
    rt = speech_rt(speech_proxy.url, key=speech_proxy.key)
    listing = rt.submit("speech", "voices", {"refresh": True}).wait(30)
    assert listing.outputs.data["listed"] is False and "narrator-tts" in listing.outputs.data["models"]
    job = rt.submit("speech", "speak", {"text": "Hello.", "voice": "nobody"}).wait(60)
    assert job.state is JobState.FAILED and job.error is not None
    assert "nobody" in job.error.message and speech_proxy.key not in job.error.message
