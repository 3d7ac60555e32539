"""Nothing stuck: a server that takes the request and never answers is given up on within the first-byte deadline
(issue 12 item 15), a malformed stream is a protocol error (item 18), and a POST that may have arrived is never
sent twice (item 2's audit)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from aiohttp import web
from hostile_support import Peer, Plain, assert_slot_released, wait_terminal
from movie_director.clients.llm import client as llm
from movie_director.runtime import BackendConfig, Runtime
from movie_director.runtime.errors import BackendUnavailableError, RequestTimeoutError
from movie_director.runtime.retry import RetryPolicy

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02, deadline=20.0)


def silent(peer_box: list[Peer]) -> Callable[[web.Request], object]:
    """Takes the request, then says nothing until the test ends."""

    async def handler(request: web.Request) -> web.StreamResponse:
        release = peer_box[0].release
        assert release is not None
        await release.wait()
        return web.Response(status=503)

    return handler


def silent_peer(serve: Callable[..., Peer]) -> Peer:
    box: list[Peer] = []
    peer = serve(silent(box))
    box.append(peer)
    return peer


@pytest.mark.parametrize("kind", ["chat", "chat_stream", "shot_list"])
def test_llm_without_any_answer_fails_within_the_first_byte_deadline(
    serve: Callable[..., Peer], make_rt: Callable[..., Runtime], kind: str
) -> None:
    peer = silent_peer(serve)
    options = {"model": "m", "idle_timeout": 0.5, "first_byte_timeout": 0.5}
    config = BackendConfig(name="llm", urls=peer.url, options=options, retry=FAST, timeout=600)
    rt = make_rt("llm", llm.factory, config)
    request = {"scene": "a kitchen"} if kind == "shot_list" else {"prompt": "hello"}
    job = wait_terminal(rt, rt.submit("llm", kind, request), bound=8)  # 3 attempts of 0.5 s, not 600 s
    assert job.error is not None and job.error.code == "timeout", job.error
    assert_slot_released(rt, "llm")


def test_plain_request_without_any_answer_times_out(serve: Callable[..., Peer]) -> None:
    peer = silent_peer(serve)

    async def main() -> None:
        client = Plain(BackendConfig(name="plain", urls=peer.url, retry=FAST))
        try:
            await client.request("GET", peer.url, "system_stats", read_timeout=0.3)
        finally:
            await client.close()

    start = time.monotonic()
    with pytest.raises(RequestTimeoutError, match="stopped answering"):
        asyncio.run(asyncio.wait_for(main(), 20))
    assert time.monotonic() - start < 5
    arrived = time.monotonic() + 5  # the server thread may record the last try after the client gave up on it
    while len(peer.hits) < 3 and time.monotonic() < arrived:
        time.sleep(0.01)
    assert len(peer.hits) == 3  # a GET may be asked again


def test_deep_json_in_a_stream_chunk_is_a_protocol_error(
    serve: Callable[..., Peer], make_rt: Callable[..., Runtime]
) -> None:
    depth = 200_000

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: " + b"[" * depth + b"]" * depth + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    peer = serve(handler)
    rt = make_rt("llm", llm.factory, BackendConfig(name="llm", urls=peer.url, options={"model": "m"}, retry=FAST))
    job = wait_terminal(rt, rt.submit("llm", "chat_stream", {"prompt": "hello"}), bound=10)
    assert job.error is not None and job.error.code == "protocol_error", job.error
    assert "nested too deeply" in job.error.message
    assert_slot_released(rt, "llm")


def test_a_post_whose_answer_was_lost_is_not_sent_again(serve: Callable[..., Peer]) -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        await request.read()
        assert request.transport is not None
        request.transport.close()  # the request arrived; its answer never leaves
        return web.Response()

    peer = serve(hang_up)

    async def main(method: str) -> None:
        client = Plain(BackendConfig(name="plain", urls=peer.url, retry=FAST))
        try:
            await client.request(method, peer.url, "work", json_body={"n": 1})
        finally:
            await client.close()

    with pytest.raises(BackendUnavailableError) as caught:
        asyncio.run(asyncio.wait_for(main("POST"), 20))
    assert len(peer.hits) == 1 and not caught.value.retryable
    peer.hits.clear()
    with pytest.raises(BackendUnavailableError):
        asyncio.run(asyncio.wait_for(main("PUT"), 20))  # idempotent: asking again is safe
    assert len(peer.hits) >= 3  # ours, plus aiohttp's own second try on a dropped keep-alive connection


def test_a_post_the_server_refused_unprocessed_is_sent_again(serve: Callable[..., Peer]) -> None:
    answers = [web.json_response({"error": "busy"}, status=503), web.json_response({"error": "slow"}, status=429)]

    async def handler(request: web.Request) -> web.StreamResponse:
        return answers.pop(0) if answers else web.json_response({"ok": True})

    peer = serve(handler)

    async def main() -> object:
        client = Plain(BackendConfig(name="plain", urls=peer.url, retry=FAST))
        try:
            return await client.request("POST", peer.url, "work", json_body={})
        finally:
            await client.close()

    assert asyncio.run(asyncio.wait_for(main(), 20)) == {"ok": True}
    assert len(peer.hits) == 3
