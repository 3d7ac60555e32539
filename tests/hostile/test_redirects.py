"""Loopback means loopback, and a client talks only to its own server: every redirect hop is checked (issue 12
items 11; ``0.0.0.0`` the same everywhere). "Another server" is 127.0.0.2, or a ``.invalid`` name that must be
refused before anything resolves it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import hostile_support
import pytest
from aiohttp import web
from hostile_support import KEY, Peer, assert_no_key, assert_slot_released, files_under, wait_terminal
from movie_director.clients.http import download_to, safe_path
from movie_director.clients.llm import client as llm
from movie_director.runtime import BackendConfig, Runtime
from movie_director.runtime.backend import NetworkPolicy
from movie_director.runtime.errors import MovieDirectorError, OnlineAccessError, ProtocolError, register_secret
from movie_director.runtime.retry import RetryPolicy
from movie_director.runtime.urls import is_loopback

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02, deadline=10.0)


class Plain(hostile_support.Plain):
    async def fetch(self, path: str, folder: Path) -> Path:
        """What the ComfyUI client does for /view: a GET on its session, streamed into the job folder."""
        target = safe_path(folder, "out.png")
        try:
            async with self.session(self.config.url).get(path) as resp:
                if resp.status >= 300:
                    raise ProtocolError(f"status {resp.status}")
                await download_to(resp, target, backend=self.name)
        except MovieDirectorError:
            raise
        except Exception as exc:
            raise self._error_from_exception(exc, self.config.url) from exc
        return target


def redirect_to(location: str, status: int = 302) -> Callable[[web.Request], object]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handler


async def body(request: web.Request) -> web.StreamResponse:
    return web.Response(body=b"\x89PNG from the other server", content_type="image/png")


def run(client: Plain, coro: object) -> object:
    async def main() -> object:
        try:
            return await coro  # type: ignore[misc]
        finally:
            await client.close()

    return asyncio.run(asyncio.wait_for(main(), 20))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_to_another_server_is_refused_and_nothing_is_saved(
    serve: Callable[..., Peer], tmp_path: Path, status: int
) -> None:
    other = serve(body, host="127.0.0.2")
    peer = serve(redirect_to(f"{other.url}/view?filename=x.png", status))
    client = Plain(BackendConfig(name="plain", urls=peer.url, api_key=KEY, retry=FAST))
    folder = tmp_path / "job"
    folder.mkdir()
    with pytest.raises(ProtocolError, match="another server") as caught:
        run(client, client.fetch("view?filename=x.png", folder))
    assert other.hits == []  # never contacted: nothing of it can be saved, no key can reach it
    assert files_under(folder) == []
    assert len(peer.hits) == 1  # a refusal, not a retried failure
    assert not caught.value.retryable


def test_json_request_redirected_elsewhere_is_refused(serve: Callable[..., Peer]) -> None:
    other = serve(body, host="127.0.0.2")
    peer = serve(redirect_to(f"{other.url}/system_stats"))
    client = Plain(BackendConfig(name="plain", urls=peer.url, retry=FAST))
    with pytest.raises(ProtocolError, match="another server"):
        run(client, client.request("GET", peer.url, "system_stats"))
    assert other.hits == []


def test_redirect_to_an_unresolvable_host_is_refused_before_resolving(serve: Callable[..., Peer]) -> None:
    peer = serve(redirect_to("http://elsewhere.invalid:9/x"))
    client = Plain(BackendConfig(name="plain", urls=peer.url, retry=FAST), NetworkPolicy(online_access=False))
    with pytest.raises(ProtocolError, match=r"elsewhere\.invalid"):  # not "cannot reach" (a DNS failure): refused
        run(client, client.request("GET", peer.url, "x"))


def test_a_redirect_on_the_same_server_is_still_followed(serve: Callable[..., Peer]) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/old":
            return web.Response(status=307, headers={"Location": "/new"})
        return web.json_response({"ok": True})

    peer = serve(handler)
    client = Plain(BackendConfig(name="plain", urls=peer.url, retry=FAST))
    assert run(client, client.request("GET", peer.url, "old")) == {"ok": True}
    assert [h.path for h in peer.hits] == ["/old", "/new"]


def test_llm_post_redirected_elsewhere_fails_the_job_cleanly(
    serve: Callable[..., Peer],
    make_rt: Callable[..., Runtime],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    register_secret(KEY)
    other = serve(body, host="127.0.0.2")
    peer = serve(redirect_to(f"{other.url}/v1/chat/completions", 307))
    config = BackendConfig(name="llm", urls=peer.url, api_key=KEY, options={"model": "m"}, retry=FAST)
    rt = make_rt("llm", llm.factory, config)
    for kind in ("chat", "chat_stream"):
        job = wait_terminal(rt, rt.submit("llm", kind, {"prompt": "hello"}), bound=10)
        assert job.error is not None and job.error.code == "protocol_error", job.error
        assert "another server" in job.error.message
    assert other.hits == []
    assert_slot_released(rt, "llm")
    rt.stop()
    assert_no_key(KEY, job.model_dump_json(), paths=(tmp_path,), caplog=caplog)


@pytest.mark.parametrize(
    "url", ["http://0.0.0.0:8188", "http://[::]:7860", "ws://0.0.0.0/ws", "http://[::ffff:127.0.0.1]:8188"]
)
def test_unspecified_addresses_are_this_computer_everywhere(url: str) -> None:
    assert is_loopback(url)
    NetworkPolicy(online_access=False).check(url, "t")  # allowed offline, like 127.0.0.1


def test_offline_policy_checks_the_first_hop_too(serve: Callable[..., Peer]) -> None:
    client = Plain(BackendConfig(name="plain", urls="http://198.51.100.7:9", retry=FAST), NetworkPolicy(False))
    with pytest.raises(OnlineAccessError):
        run(client, client.request("GET", "http://198.51.100.7:9", "x"))


def test_a_mapped_remote_address_is_not_loopback() -> None:
    assert not is_loopback("http://[::ffff:192.0.2.1]:8188")


def test_the_mcp_transport_keeps_every_hop_on_its_server(serve: Callable[..., Peer]) -> None:
    """Wan2GP's MCP client (httpx, redirects followed for Wan2GP's /mcp -> /mcp/) uses the same hop rule."""
    from movie_director.clients.wan2gp.mcp_session import _http_client

    other = serve(body, host="127.0.0.2")
    peer = serve(redirect_to(f"{other.url}/mcp/", 307))

    async def main() -> None:
        async with _http_client({"Authorization": f"Bearer {KEY}"}, 1 << 20, f"{peer.url}/mcp") as http:
            await http.post(f"{peer.url}/mcp", json={"jsonrpc": "2.0"})

    with pytest.raises(ProtocolError, match="another server"):
        asyncio.run(asyncio.wait_for(main(), 20))
    assert other.hits == [] and len(peer.hits) == 1
