"""The LLM client against a real LiteLLM proxy: answers, streams, shot lists, every error it makes, cancel."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from llm_support import (
    INVALID_SHOTS,
    LONG_ANSWER,
    PLAIN_ANSWER,
    VALID_SHOTS,
    LiteLLMProxy,
    llm_config,
    proxy_events,
    run_client,
    wait_for,
)
from movie_director.clients.llm import client as llm
from movie_director.clients.llm.shots import ShotList
from movie_director.runtime import BackendConfig, JobState, Runtime
from movie_director.runtime.errors import AuthenticationError, register_secret
from movie_director.runtime.retry import NO_RETRY
from support import pump_until


def test_chat_returns_the_whole_answer(llm_rt: Runtime) -> None:
    job = llm_rt.submit("llm", "chat", {"prompt": "Open the scene."}).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.text == PLAIN_ANSWER
    assert job.outputs.data["finish_reason"] == "stop" and job.outputs.data["usage"]["total_tokens"] > 0


def test_chat_stream_delivers_every_piece_in_order_on_the_pumping_thread(llm_rt: Runtime) -> None:
    pieces: list[str] = []
    threads: set[threading.Thread] = set()
    progress: list[int] = []
    handle = llm_rt.submit("llm", "chat_stream", {"prompt": "Write the harbour scene.", "model": "director-long"})
    handle.on_text(lambda job, delta: (pieces.append(delta), threads.add(threading.current_thread())))
    handle.on_progress(lambda job: progress.append(job.progress.step or 0))
    job = handle.wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    assert "".join(pieces) == LONG_ANSWER == job.outputs.text
    assert len(pieces) == -(-len(LONG_ANSWER) // 3)  # LiteLLM's mock sends 3 characters a chunk: none lost or merged
    assert threads == {threading.current_thread()}
    assert progress and job.progress.stage == "writing"


def test_models_job_and_health_list_the_servers_models(llm_rt: Runtime, proxy: LiteLLMProxy) -> None:
    job = llm_rt.submit("llm", "models").wait(10)
    assert job.state is JobState.SUCCEEDED, job.error
    assert {"director-llm", "shots-valid", "always-429"} <= set(job.outputs.data["models"])
    info = llm_rt.check_health("llm").result(10)
    assert info.ok and info.url == proxy.url and "director-llm" in info.details["models"]
    assert info.message.startswith("LiteLLM, ") and info.details["server"] == "LiteLLM"
    assert llm_rt.backend_states["llm"][0] == "connected"


def test_without_a_model_name_the_servers_first_model_is_used(proxy: LiteLLMProxy) -> None:
    config = llm_config(proxy.url, proxy.key)
    text = run_client(config, lambda c: c.complete("Hello"))
    assert text == PLAIN_ANSWER  # director-llm is the first model of the proxy's config


def test_shot_list_is_validated_into_the_model(llm_rt: Runtime) -> None:
    job = llm_rt.submit("llm", "shot_list", {"scene": "A keeper alone in a lighthouse.", "model": "shots-valid"}).wait(
        20
    )
    assert job.state is JobState.SUCCEEDED, job.error
    shots = ShotList.model_validate(job.outputs.data["shot_list"])
    assert shots.model_dump() == ShotList.model_validate(VALID_SHOTS).model_dump()
    assert shots.shots[1].dialogue[0].character == "MARA" and job.outputs.data["tries"] == 1


def test_an_answer_that_stays_invalid_fails_showing_what_came_back(llm_rt: Runtime) -> None:
    job = llm_rt.submit("llm", "shot_list", {"scene": "A storm.", "model": "shots-invalid"}).wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "job_failed"
    message = job.error.message
    assert "not a valid ShotList, even after one correction" in message
    assert "shots.0.duration_s" in message and "shots.0.camera" in message
    assert INVALID_SHOTS["title"] in message  # what came back is quoted
    assert job.error.details["answer"] == job.error.details["first_answer"]


def test_structured_job_names_its_output_model(llm_rt: Runtime) -> None:
    request = {"prompt": "A lighthouse.", "output": "ShotList", "model": "shots-valid", "temperature": 0.2}
    job = llm_rt.submit("llm", "structured", request).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.data["output"] == "ShotList" and job.outputs.data["value"]["shots"][0]["duration_s"] == 4.5


def test_structured_in_loop_api_returns_an_instance(proxy: LiteLLMProxy) -> None:
    config = llm_config(proxy.url, proxy.key)
    value = run_client(config, lambda c: c.structured(ShotList, "A lighthouse.", "shots-valid"))
    assert isinstance(value, ShotList) and value.title == "The Lighthouse"


def test_stream_chat_in_loop_api_yields_text_pieces(proxy: LiteLLMProxy) -> None:
    async def read(client: llm.LlmClient) -> list[str]:
        return [piece async for piece in client.stream_chat([{"role": "user", "content": "Go"}], "director-llm")]

    pieces = run_client(llm_config(proxy.url, proxy.key), read)
    assert "".join(pieces) == PLAIN_ANSWER and len(pieces) > 5


@pytest.mark.parametrize(
    ("model", "kind", "code", "words"),
    [
        ("no-such-model", "chat", "invalid_request", "Invalid model name"),
        ("no-such-model", "chat_stream", "invalid_request", "Invalid model name"),
        ("boom", "chat", "server_error", "mock internal server error"),
        ("stream-error", "chat_stream", "server_error", "mock error raised mid-stream"),
    ],
)
def test_server_errors_map_onto_the_shared_hierarchy(
    llm_rt: Runtime, model: str, kind: str, code: str, words: str
) -> None:
    job = llm_rt.submit("llm", kind, {"prompt": "x", "model": model}).wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == code, job.error
    assert words in job.error.message


def test_a_failure_in_the_middle_of_a_stream_keeps_the_text_sent_and_is_not_retried(llm_rt: Runtime) -> None:
    pieces: list[str] = []
    handle = llm_rt.submit("llm", "chat_stream", {"prompt": "x", "model": "mid-stream-error"})
    handle.on_text(lambda job, delta: pieces.append(delta))
    job = handle.wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "server_error"
    assert "failed in the middle of its answer: the model crashed mid-stream" in job.error.message
    assert "".join(pieces) == PLAIN_ANSWER[:9]  # three chunks, once: a retry would have sent them again


def test_a_wrong_key_is_an_authentication_error_that_says_why(proxy: LiteLLMProxy, tmp_path: Path) -> None:
    wrong = "sk-wrong-key-0123456789abcdef"
    register_secret(wrong)
    rt = Runtime(output_root=tmp_path)
    rt.register_backend("llm", llm.factory, llm_config(proxy.url, wrong, model="director-llm"))
    try:
        job = rt.submit("llm", "chat_stream", {"prompt": "x"}).wait(10)
        assert job.state is JobState.FAILED and job.error and job.error.code == "authentication"
        assert "refused the API key" in job.error.message and "master key" in job.error.message
        assert wrong not in job.error.message and wrong not in repr(job.error)
        info = rt.check_health("llm").result(10)
        assert not info.ok and "refused the API key" in info.message
    finally:
        rt.stop()


def test_no_key_at_all_is_an_authentication_error(proxy: LiteLLMProxy) -> None:
    with pytest.raises(AuthenticationError, match="without an API key"):
        run_client(llm_config(proxy.url, None, model="director-llm"), lambda c: c.complete("x"))


def test_rate_limits_carry_the_servers_retry_after(proxy: LiteLLMProxy) -> None:
    config = BackendConfig(name="llm", urls=proxy.url, api_key=proxy.key, retry=NO_RETRY)

    async def until_cooldown(client: llm.LlmClient) -> list[tuple[str, float | None]]:
        seen = []
        for _ in range(4):  # the first calls hit a deployment; then every deployment cools down for 30 s
            try:
                await client.complete("x", "always-429")
            except Exception as exc:
                seen.append((type(exc).__name__, getattr(exc, "retry_after", None)))
                if seen[-1][1] is not None:
                    break
        return seen

    seen = run_client(config, until_cooldown)
    assert all(name == "RateLimitedError" for name, _ in seen)
    assert seen[-1][1] == 30.0


def test_cancel_closes_the_stream_at_once_and_the_proxy_sees_the_disconnect(
    llm_rt: Runtime, proxy: LiteLLMProxy
) -> None:
    before = len(proxy_events(proxy))
    pieces: list[str] = []
    handle = llm_rt.submit("llm", "chat_stream", {"prompt": "x", "model": "slow-stream"})
    handle.on_text(lambda job, delta: pieces.append(delta))
    assert pump_until(llm_rt, lambda: len(pieces) >= 3, timeout=15)
    start = time.monotonic()
    handle.cancel()
    job = handle.wait(1.0)
    assert job.state is JobState.CANCELLED
    assert time.monotonic() - start < 1.0
    assert wait_for(lambda: len(proxy_events(proxy)) > before, timeout=3), "the proxy never saw the client leave"
    assert proxy_events(proxy)[before].startswith("disconnected after")
    assert len(pieces) < len(LONG_ANSWER) // 3  # it stopped long before the end
