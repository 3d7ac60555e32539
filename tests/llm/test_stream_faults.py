"""Faults a mock model cannot make, from tiny OpenAI-like aiohttp servers: stalls, cut connections, retries before the
first event only, the structured-output repair round-trip, cancel and the request the client sends."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from llm_support import VALID_SHOTS, Handler, Server, chunk, completion, llm_config, run_client, start_stream
from movie_director.clients.llm import client as llm
from movie_director.runtime import JobState, Runtime
from support import pump_until

Serve = Callable[[Handler], Server]
MakeRt = Callable[..., Runtime]


def streaming(*frames: bytes, then: str = "done") -> Handler:
    """Send ``frames``, then ``done`` ([DONE]), ``end`` (end the body) or ``cut`` (drop the connection)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = await start_stream(request)
        for frame in frames:
            await resp.write(frame)
        if then == "end":
            return resp
        if then == "cut":
            assert request.transport is not None
            request.transport.close()
            return resp
        else:
            await resp.write(b"data: [DONE]\n\n")
        return resp

    return handler


def _stalling(serve: Serve, *frames: bytes) -> Server:
    """A server that sends ``frames`` and then nothing more until it is stopped."""
    holder: dict[str, Server] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = await start_stream(request)
        for frame in frames:
            await resp.write(frame)
        release = holder["server"].release
        assert release is not None
        await release.wait()
        return resp

    holder["server"] = serve(handler)
    return holder["server"]


def test_a_stream_that_stalls_after_its_first_chunk_times_out_cleanly(serve: Serve, make_rt: MakeRt) -> None:
    server = _stalling(serve, chunk("INT. ", role="assistant"))
    rt = make_rt(server.url, idle_timeout=0.3)
    pieces: list[str] = []
    start = time.monotonic()
    handle = rt.submit("llm", "chat_stream", {"prompt": "x"}).on_text(lambda job, d: pieces.append(d))
    job = handle.wait(5)
    assert job.state is JobState.FAILED and job.error and job.error.code == "timeout"
    assert "stopped sending in the middle of the answer (nothing for 0.3 s)" in job.error.message
    assert 0.3 <= time.monotonic() - start < 2.0
    assert pieces == ["INT. "] and len(server.bodies) == 1  # never retried once text arrived


def test_a_server_silent_before_its_first_event_is_retried_then_times_out(serve: Serve, make_rt: MakeRt) -> None:
    server = _stalling(serve)
    rt = make_rt(server.url, idle_timeout=0.2)
    job = rt.submit("llm", "chat_stream", {"prompt": "x"}).wait(5)
    assert job.state is JobState.FAILED and job.error and job.error.code == "timeout"
    assert "sent nothing for 0.2 s" in job.error.message
    assert len(server.bodies) == 3  # the first try and two retries: nothing had reached the user


def test_a_stream_that_ends_before_its_first_event_is_retried_then_fails(serve: Serve, make_rt: MakeRt) -> None:
    server = serve(streaming(b": ping\n\n", then="end"))
    job = make_rt(server.url).submit("llm", "chat_stream", {"prompt": "x"}).wait(5)
    assert job.state is JobState.FAILED and job.error and job.error.code == "backend_unavailable"
    assert "closed the connection before answering" in job.error.message
    assert len(server.bodies) == 3


def test_an_error_status_before_the_stream_is_retried(serve: Serve, make_rt: MakeRt) -> None:
    answers = [web.json_response({"error": {"message": "warming up", "code": "503"}}, status=503)]

    async def handler(request: web.Request) -> web.StreamResponse:
        if answers:
            return answers.pop()
        return await streaming(chunk("Hello", role="assistant"), chunk(finish="stop"))(request)

    server = serve(handler)
    job = make_rt(server.url).submit("llm", "chat_stream", {"prompt": "x"}).wait(10)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.text == "Hello" and len(server.bodies) == 2


def test_rate_limit_retry_after_ms_is_honoured(serve: Serve, make_rt: MakeRt) -> None:
    hits: list[float] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        hits.append(time.monotonic())
        if len(hits) == 1:
            body = {"error": {"message": "slow down", "type": "throttling_error", "code": "429"}}
            return web.json_response(body, status=429, headers={"retry-after-ms": "300"})
        return await streaming(chunk("ok", role="assistant"), chunk(finish="stop"))(request)

    server = serve(handler)
    job = make_rt(server.url).submit("llm", "chat_stream", {"prompt": "x"}).wait(10)
    assert job.state is JobState.SUCCEEDED and job.outputs.text == "ok"
    assert hits[1] - hits[0] >= 0.29  # the server's 300 ms, not the 10 ms backoff


def test_a_connection_cut_mid_answer_fails_the_job_without_a_retry(serve: Serve, make_rt: MakeRt) -> None:
    server = serve(streaming(chunk("INT. ", role="assistant"), chunk("KITCHEN"), then="cut"))
    job = make_rt(server.url).submit("llm", "chat_stream", {"prompt": "x"}).wait(10)
    assert job.state is JobState.FAILED and job.error and job.error.code == "backend_unavailable"
    assert "middle of the answer" in job.error.message
    assert len(server.bodies) == 1


def test_a_stream_without_done_after_its_finish_reason_is_complete(serve: Serve, make_rt: MakeRt) -> None:
    server = serve(streaming(chunk("The end.", role="assistant"), chunk(finish="stop"), then="cut"))
    job = make_rt(server.url).submit("llm", "chat_stream", {"prompt": "x"}).wait(10)
    assert job.state is JobState.SUCCEEDED and job.outputs.text == "The end."


def test_pings_forever_hit_the_total_deadline(serve: Serve, make_rt: MakeRt) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = await start_stream(request)
        await resp.write(chunk("Thinking", role="assistant"))
        for _ in range(200):
            await resp.write(b": ping\n\n")
            await asyncio.sleep(0.02)
        return resp

    server = serve(handler)
    start = time.monotonic()
    job = make_rt(server.url, timeout=0.6, idle_timeout=0.3).submit("llm", "chat_stream", {"prompt": "x"}).wait(5)
    assert job.state is JobState.FAILED and job.error and job.error.code == "timeout"
    assert "did not finish within 0.6 s" in job.error.message
    assert time.monotonic() - start < 2.0


@pytest.mark.parametrize(
    ("frames", "words"),
    [
        ((b"data: {not json\n\n",), "not JSON"),
        ((chunk("a", role="assistant"), b"data: " + b"x" * (1024 * 1024 + 10)), "line longer"),
        ((b'data: {"choices": [{"delta": {"content": 7}}]}\n\n',), "not text"),
    ],
)
def test_malformed_streams_are_protocol_errors(
    serve: Serve, make_rt: MakeRt, frames: tuple[bytes, ...], words: str
) -> None:
    server = serve(streaming(*frames))
    job = make_rt(server.url).submit("llm", "chat_stream", {"prompt": "x"}).wait(10)
    assert job.state is JobState.FAILED and job.error and job.error.code == "protocol_error"
    assert words in job.error.message


def test_a_server_that_ignores_stream_true_is_refused_clearly(serve: Serve, make_rt: MakeRt) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(completion("whole"))

    job = make_rt(serve(handler).url).submit("llm", "chat_stream", {"prompt": "x"}).wait(10)
    assert job.state is JobState.FAILED and job.error and "did not stream its answer" in job.error.message


def test_cancel_closes_the_response_at_once(serve: Serve, make_rt: MakeRt) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = await start_stream(request)
        await resp.write(chunk("", role="assistant"))
        for i in range(2000):
            await resp.write(chunk(f"{i} "))
            await asyncio.sleep(0.01)
        return resp

    server = serve(handler)
    rt = make_rt(server.url)
    pieces: list[str] = []
    handle = rt.submit("llm", "chat_stream", {"prompt": "x"}).on_text(lambda job, d: pieces.append(d))
    assert pump_until(rt, lambda: len(pieces) >= 5, timeout=5)
    start = time.monotonic()
    handle.cancel()
    assert handle.wait(1.0).state is JobState.CANCELLED
    assert server.gone.wait(1.0), "the server still streams to a cancelled job"
    assert server.disconnected[0] - start < 1.0


def test_breaking_out_of_stream_chat_closes_the_connection(serve: Serve) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        resp = await start_stream(request)
        for i in range(2000):
            await resp.write(chunk(f"{i} "))
            await asyncio.sleep(0.01)
        return resp

    server = serve(handler)

    async def first_three(client: llm.LlmClient) -> list[str]:
        pieces = []
        stream = client.stream_chat("x", "stand-in")
        async for piece in stream:
            pieces.append(piece)
            if len(pieces) == 3:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        return pieces

    assert run_client(llm_config(server.url, None), first_three) == ["0 ", "1 ", "2 "]
    assert server.gone.wait(2.0)


def test_an_invalid_structured_answer_gets_one_repair_with_its_errors(serve: Serve, make_rt: MakeRt) -> None:
    bad = {"title": "Storm", "shots": [{"description": "waves", "duration_s": 90, "dialogue": [], "sound_cues": []}]}
    answers = [json.dumps(bad), "```json\n" + json.dumps(VALID_SHOTS) + "\n```"]

    async def handler(request: web.Request) -> web.StreamResponse:
        text = answers.pop(0)
        return await streaming(chunk(text[:10], role="assistant"), chunk(text[10:]), chunk(finish="stop"))(request)

    server = serve(handler)
    job = make_rt(server.url).submit("llm", "shot_list", {"scene": "A storm at sea."}).wait(10)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.data["tries"] == 2 and job.outputs.data["shot_list"]["title"] == "The Lighthouse"
    first, second = server.bodies
    for body in (first, second):
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "ShotList"
        assert fmt["json_schema"]["strict"] is True
    assert second["messages"][:2] == first["messages"]  # system prompt and scene, then the repair
    assert second["messages"][2] == {"role": "assistant", "content": json.dumps(bad)}
    repair = second["messages"][3]["content"]
    assert repair.startswith("Your answer does not match")
    assert "shots.0.duration_s" in repair and "shots.0.camera" in repair


def test_the_request_carries_the_key_the_model_and_a_fitted_history(serve: Serve, make_rt: MakeRt) -> None:
    server = serve(streaming(chunk("ok", role="assistant"), chunk(finish="stop")))
    history: list[dict[str, Any]] = []
    for i in range(40):
        history += [{"role": "user", "content": f"question {i} " * 40}, {"role": "assistant", "content": "yes " * 80}]
    request = {"messages": history, "prompt": "And now?", "system": "You are a screenwriter.", "max_tokens": 500}
    rt = make_rt(server.url, key="sk-stand-in-key", context_window=3000)
    job = rt.submit("llm", "chat_stream", request).wait(10)
    assert job.state is JobState.SUCCEEDED, job.error
    (body,) = server.bodies
    assert server.headers[0]["Authorization"] == "Bearer sk-stand-in-key"
    assert body["model"] == "stand-in" and body["stream"] is True and body["max_tokens"] == 500
    messages = body["messages"]
    assert messages[0] == {"role": "system", "content": "You are a screenwriter."}
    assert messages[-1] == {"role": "user", "content": "And now?"}
    assert messages[1]["role"] == "user" and 3 < len(messages) < 81  # oldest turns dropped to fit 3000 - 500
    assert sum(len(m["content"]) for m in messages) <= (3000 - 500) * 4


def test_blocking_chat_is_retried_on_5xx(serve: Serve) -> None:
    answers = [web.json_response({"error": {"message": "busy"}}, status=502)]

    async def handler(request: web.Request) -> web.StreamResponse:
        return answers.pop() if answers else web.json_response(completion("done"))

    server = serve(handler)
    assert run_client(llm_config(server.url, None, model="m"), lambda c: c.complete("x")) == "done"
    assert len(server.bodies) == 2 and "stream" not in server.bodies[1]


def test_unreachable_server_fails_health_and_jobs_in_words(make_rt: MakeRt) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rt = make_rt(f"http://127.0.0.1:{port}")
    info = rt.check_health("llm").result(10)
    assert not info.ok and "Cannot reach" in info.message
    job = rt.submit("llm", "chat", {"prompt": "x"}).wait(10)
    assert job.state is JobState.FAILED and job.error and job.error.code == "backend_unavailable"


def test_bad_requests_are_refused_before_anything_is_sent(serve: Serve, make_rt: MakeRt) -> None:
    server = serve(streaming())
    rt = make_rt(server.url)
    cases = [
        ("poem", {"prompt": "x"}, "cannot do 'poem'"),
        ("chat", {"prompt": "  "}, "Write a prompt first"),
        ("shot_list", {"scene": ""}, "Describe the scene first"),
        ("structured", {"prompt": "x", "output": "Nope"}, "needs an output model"),
        ("chat", {"prompt": "x", "temperature": 9}, "temperature"),
    ]
    for kind, request, words in cases:
        job = rt.submit("llm", kind, request).wait(5)
        assert job.state is JobState.FAILED and job.error and words in job.error.message, (kind, job.error)
    assert server.bodies == []
