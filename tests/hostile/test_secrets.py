"""A key never leaves the request that needs it: echoed keys are redacted before any cut, pasted keys are cleaned,
and a key no header can carry is a bad-key message (issue 12 items 5 and 9)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from hostile_support import KEY, Peer, Plain, assert_no_key, assert_slot_released, wait_terminal
from movie_director.clients.http import clean_key
from movie_director.clients.llm import client as llm
from movie_director.runtime import BackendConfig, Runtime
from movie_director.runtime.errors import AuthenticationError, MovieDirectorError, excerpt, register_secret
from movie_director.runtime.retry import NO_RETRY


def echo_key_at(offset: int, status: int = 500) -> Callable[[web.Request], object]:
    """An error page that quotes the caller's key so that a 200-character cut falls inside it."""

    async def handler(request: web.Request) -> web.StreamResponse:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return web.Response(status=status, text="x" * offset + key + " was refused", content_type="text/plain")

    return handler


@pytest.mark.parametrize("offset", [180, 190, 195, 199])
def test_plain_http_error_redacts_before_it_cuts(serve: Callable[..., Peer], offset: int) -> None:
    register_secret(KEY)
    peer = serve(echo_key_at(offset))

    async def main() -> MovieDirectorError:
        client = Plain(BackendConfig(name="plain", urls=peer.url, api_key=KEY, retry=NO_RETRY))
        try:
            await client.request("GET", peer.url, "anything")
        except MovieDirectorError as exc:
            return exc
        finally:
            await client.close()
        raise AssertionError("the request should have failed")

    error = asyncio.run(asyncio.wait_for(main(), 20))
    assert error.status == 500
    assert_no_key(KEY, str(error), repr(error), str(error.details))


@pytest.mark.parametrize("offset", [185, 195])
def test_llm_job_error_redacts_before_it_cuts(
    serve: Callable[..., Peer],
    make_rt: Callable[..., Runtime],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    offset: int,
) -> None:
    register_secret(KEY)
    peer = serve(echo_key_at(offset, status=400))
    config = BackendConfig(name="llm", urls=peer.url, api_key=KEY, options={"model": "m"}, retry=NO_RETRY)
    rt = make_rt("llm", llm.factory, config)
    job = wait_terminal(rt, rt.submit("llm", "chat", {"prompt": "hello"}), bound=10)
    assert job.error is not None and job.error.code == "invalid_request"
    assert "xxxxxxxx***" in job.error.message  # the server's words are kept, the key replaced, then the cut
    rt.stop()
    assert_no_key(KEY, job.model_dump_json(), paths=(tmp_path,), caplog=caplog)
    assert peer.hits and peer.hits[0].headers["Authorization"] == f"Bearer {KEY}"  # the key went where it belongs


def test_excerpt_never_keeps_part_of_a_key() -> None:
    register_secret(KEY)
    for cut in range(1, 120):
        text = "a" * cut + KEY + "b" * 50
        for limit in (cut + 3, cut + 10, cut + len(KEY) - 1):
            assert_no_key(KEY, excerpt(text, limit), excerpt(text.encode(), limit))


def test_key_pasted_with_a_newline_is_sent_clean(serve: Callable[..., Peer], make_rt: Callable[..., Runtime]) -> None:
    async def ok(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"choices": [{"message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}]}
        )

    peer = serve(ok)
    config = BackendConfig(name="llm", urls=peer.url, api_key=f"  {KEY}\r\n", options={"model": "m"})
    assert config.key() == KEY
    rt = make_rt("llm", llm.factory, config)
    job = wait_terminal(rt, rt.submit("llm", "chat", {"prompt": "hello"}), bound=10)
    assert job.error is None and job.outputs.text == "fine"
    assert peer.hits[0].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("bad", [f"{KEY[:10]}\n{KEY[10:]}", f"{KEY}\u00e9", f"{KEY[:5]}\x00{KEY[5:]}"])
def test_a_key_no_header_can_carry_is_a_bad_key_message(
    serve: Callable[..., Peer],
    make_rt: Callable[..., Runtime],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    bad: str,
) -> None:
    register_secret(bad)
    peer = serve(echo_key_at(0))
    config = BackendConfig(name="llm", urls=peer.url, api_key=bad, options={"model": "m"})
    rt = make_rt("llm", llm.factory, config)
    job = wait_terminal(rt, rt.submit("llm", "chat", {"prompt": "hello"}), bound=10)
    assert job.error is not None and job.error.code == "authentication", job.error
    assert "API key" in job.error.message and "preferences" in job.error.message
    assert not job.error.retryable
    assert peer.hits == []  # refused here, before anything was sent
    assert_slot_released(rt, "llm")
    rt.stop()
    assert_no_key(bad.replace("\n", "").replace("\x00", ""), job.model_dump_json(), paths=(tmp_path,), caplog=caplog)
    with pytest.raises(AuthenticationError):
        clean_key(bad, "llm")
