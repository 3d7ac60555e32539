"""HttpBackendClient and the HTTP helpers against real aiohttp servers (AppThread); nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import socket
import time
import unicodedata
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from movie_director.clients.http import (
    HttpBackendClient,
    download_to,
    guess_media_type,
    safe_filename,
    safe_path,
    unique_path,
)
from movie_director.clients.serving import AppThread
from movie_director.runtime.backend import BackendConfig, HealthInfo, NetworkPolicy
from movie_director.runtime.errors import (
    AuthenticationError,
    BackendUnavailableError,
    InvalidRequestError,
    MovieDirectorError,
    NotFoundError,
    OnlineAccessError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    register_secret,
)
from movie_director.runtime.retry import NO_RETRY, RetryPolicy
from movie_director.runtime.urls import is_loopback, validate_url
from pydantic import ValidationError

FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02, deadline=10.0)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Client(HttpBackendClient):
    """The smallest concrete HTTP client: only what the base class needs to be instantiated."""

    name = "testhttp"

    async def submit(self, job: Any, ctx: Any) -> str | None:
        raise NotImplementedError

    async def get_result(self, job: Any, ctx: Any) -> Any:
        raise NotImplementedError

    async def health(self) -> HealthInfo:
        return HealthInfo(ok=True)

    async def fetch_to(self, base_url: str, path: str, target: Path, max_bytes: int) -> tuple[int, str]:
        """Download ``path`` into ``target``, mapping transport errors the way real clients do."""
        try:
            async with self.session(base_url).get(path) as resp:
                return await download_to(resp, target, backend=self.name, max_bytes=max_bytes, digest=True)
        except MovieDirectorError:
            raise
        except Exception as exc:
            raise self._error_from_exception(exc, base_url) from exc


def run_client(
    url: str | tuple[str, ...],
    fn: Callable[[Client], Awaitable[Any]],
    *,
    retry: RetryPolicy = FAST,
    key: str | None = None,
    online: bool = True,
) -> Any:
    """Build a client, run ``fn(client)`` on a fresh loop (bounded), always close the client."""

    async def main() -> Any:
        config = BackendConfig(name="testhttp", urls=url, api_key=key, retry=retry)
        client = Client(config, NetworkPolicy(online_access=online))
        try:
            return await fn(client)
        finally:
            await client.close()

    return asyncio.run(asyncio.wait_for(main(), 30))


class Server:
    """A real aiohttp server on its own thread; counts hits and remembers when they came and from which port."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1") -> None:
        self.handler = handler
        self.hits: list[float] = []
        self.ports: list[int] = []
        self.release: asyncio.Event | None = None
        self.thread = AppThread(self._make_app, host=host)

    async def _make_app(self) -> web.Application:
        self.release = asyncio.Event()  # created on the server's loop; set at stop so hung handlers end

        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits.append(time.monotonic())
            self.ports.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
            return await self.handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    @property
    def url(self) -> str:
        host = self.thread.host
        return f"http://[{host}]:{self.thread.port}" if ":" in host else f"http://{host}:{self.thread.port}"

    def stop(self) -> None:
        if self.thread.loop is not None and self.release is not None:
            self.thread.loop.call_soon_threadsafe(self.release.set)
        self.thread.stop()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(handler: Handler, host: str = "127.0.0.1") -> Server:
        server = Server(handler, host)
        server.thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def json_handler(status: int, body: Any, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status, headers=headers)

    return handler


def sequence(*responses: tuple[int, Any]) -> Handler:
    """Answer with each (status, body) in turn, then keep repeating the last one."""
    answers = list(responses)

    async def handler(request: web.Request) -> web.StreamResponse:
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        return web.json_response(body, status=status)

    return handler


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------- status mapping


@pytest.mark.parametrize("status", [401, 403])
def test_auth_statuses_map_to_authentication_error(serve, status: int) -> None:
    server = serve(json_handler(status, {"error": {"message": "bad key"}}))
    with pytest.raises(AuthenticationError) as info:
        run_client(server.url, lambda c: c.request("GET", server.url, "models"))
    assert info.value.status == status and info.value.message == "bad key"
    assert len(server.hits) == 1  # not retryable


def test_404_maps_to_not_found(serve) -> None:
    server = serve(json_handler(404, {"error": "no such model"}))
    with pytest.raises(NotFoundError) as info:
        run_client(server.url, lambda c: c.request("GET", server.url, "/models/x"))
    assert info.value.status == 404 and "no such model" in str(info.value)
    assert len(server.hits) == 1


def test_400_keeps_the_servers_openai_style_message(serve) -> None:
    body = {"error": {"message": "width must be a multiple of 8", "type": "invalid_request_error"}}
    server = serve(json_handler(400, body))
    with pytest.raises(InvalidRequestError) as info:
        run_client(server.url, lambda c: c.request("POST", server.url, "generate", json_body={"width": 7}))
    assert info.value.message == "width must be a multiple of 8"
    assert info.value.details["error"]["type"] == "invalid_request_error"
    assert len(server.hits) == 1


def test_429_carries_retry_after(serve) -> None:
    server = serve(json_handler(429, {"error": {"message": "slow down"}}, {"retry-after": "1"}))
    with pytest.raises(RateLimitedError) as info:
        run_client(server.url, lambda c: c.request("GET", server.url, "x"), retry=NO_RETRY)
    assert info.value.retry_after == 1 and info.value.status == 429
    assert len(server.hits) == 1


def test_429_retry_waits_about_retry_after(serve) -> None:
    calls = []

    async def handler(request: web.Request) -> web.StreamResponse:
        calls.append(1)
        if len(calls) == 1:
            return web.json_response({"error": "slow down"}, status=429, headers={"retry-after": "1"})
        return web.json_response({"ok": True})

    server = serve(handler)
    retry = RetryPolicy(max_retries=1, base_delay=0.01, deadline=10.0)
    assert run_client(server.url, lambda c: c.request("GET", server.url, "x"), retry=retry) == {"ok": True}
    assert len(server.hits) == 2
    gap = server.hits[1] - server.hits[0]
    assert 0.9 <= gap < 1.6, gap


def test_429_wait_is_bounded_by_the_deadline(serve) -> None:
    server = serve(json_handler(429, {"error": "later"}, {"retry-after": "100"}))
    start = time.monotonic()
    with pytest.raises(RateLimitedError) as info:
        run_client(server.url, lambda c: c.request("GET", server.url, "x", deadline=2.0))
    assert time.monotonic() - start < 1.0  # gave up at once instead of sleeping past the deadline
    assert info.value.retry_after == 100 and len(server.hits) == 1


def test_503_twice_then_200_succeeds_after_retries(serve) -> None:
    server = serve(sequence((503, {"error": "busy"}), (503, {"error": "busy"}), (200, {"answer": 42})))
    assert run_client(server.url, lambda c: c.request("GET", server.url, "x")) == {"answer": 42}
    assert len(server.hits) == 3


def test_500_forever_gives_up_after_1_plus_max_retries(serve) -> None:
    server = serve(json_handler(500, {"error": {"message": "CUDA out of memory"}}))
    retry = RetryPolicy(max_retries=3, base_delay=0.01, max_delay=0.02, deadline=10.0)
    with pytest.raises(ServerError) as info:
        run_client(server.url, lambda c: c.request("GET", server.url, "x"), retry=retry)
    assert info.value.message == "CUDA out of memory" and info.value.status == 500
    assert len(server.hits) == 4


def test_connection_refused_is_unavailable_and_names_the_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(BackendUnavailableError) as info:
        run_client(url, lambda c: c.request("GET", url, "x"))
    assert url in str(info.value) and info.value.retryable


def test_server_that_never_answers_times_out_within_the_deadline(serve) -> None:
    entered: list[float] = []

    async def hang(request: web.Request) -> web.StreamResponse:
        entered.append(time.monotonic())
        assert server.release is not None
        await asyncio.wait_for(server.release.wait(), 30)
        return web.json_response({})

    server = serve(hang)
    deadline = 0.6
    start = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        run_client(server.url, lambda c: c.request("GET", server.url, "x", deadline=deadline))
    assert time.monotonic() - start < deadline + 0.5
    assert entered  # the request did reach the server: it was the answer that never came


# ------------------------------------------------------------------------------------------- body handling


def test_non_json_body_is_a_protocol_error(serve) -> None:
    async def html(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>proxy login</html>", content_type="text/html")

    server = serve(html)
    with pytest.raises(ProtocolError, match="not JSON"):
        run_client(server.url, lambda c: c.request("GET", server.url, "x"))
    assert len(server.hits) == 1


def test_body_over_limit_with_content_length(serve) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * 5000)

    server = serve(big)
    with pytest.raises(ProtocolError) as info:
        run_client(server.url, lambda c: c.request("GET", server.url, "x", expect_json=False, max_bytes=1000))
    assert "limit 1000" in str(info.value) and "5000" in str(info.value)


def test_body_over_limit_chunked_without_content_length(serve) -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b"y" * 500)
        await resp.write_eof()
        return resp

    server = serve(chunked)

    async def go(c: Client) -> Any:
        return await c.request("GET", server.url, "x", expect_json=False, max_bytes=1000)

    with pytest.raises(ProtocolError) as info:
        run_client(server.url, go)
    assert "1000-byte limit" in str(info.value)
    # and a body within the limit still comes through whole
    assert run_client(server.url, lambda c: c.request("GET", server.url, "x", expect_json=False)) == b"y" * 5000


# ---------------------------------------------------------------------------------------- session pooling


def test_one_session_per_server_reuses_one_connection(serve) -> None:
    server = serve(json_handler(200, {"ok": True}))

    async def go(c: Client) -> list[aiohttp.ClientSession]:
        sessions = []
        for i in range(4):
            assert await c.request("GET", server.url, f"n/{i}") == {"ok": True}
            sessions.append(c.session(server.url))
        return sessions

    sessions = run_client(server.url, go)
    assert len(server.ports) == 4 and len(set(server.ports)) == 1, server.ports
    assert all(s is sessions[0] for s in sessions)
    assert sessions[0].closed  # close() closed it


def test_close_releases_the_session_without_resource_warning(serve) -> None:
    server = serve(json_handler(200, {"ok": True}))

    async def go() -> tuple[aiohttp.ClientSession, aiohttp.ClientSession]:
        client = Client(BackendConfig(name="t", urls=server.url, retry=FAST))
        await client.request("GET", server.url, "a")
        first = client.session(server.url)
        await client.close()
        assert first.closed and first.connector is None
        await client.request("GET", server.url, "b")  # a closed client can be used again: a fresh session
        second = client.session(server.url)
        await client.close()
        return first, second

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = asyncio.run(asyncio.wait_for(go(), 30))
        assert first is not second and second.closed
        del first, second
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], [str(w.message) for w in caught]
    assert len(server.ports) == 2 and server.ports[0] != server.ports[1]  # the first connection was really closed


# ------------------------------------------------------------------------------------------------ secrets


def test_api_key_goes_in_authorization_and_never_in_errors(serve) -> None:
    key = "sk-md-test-7f3c9a1b2e4d6f80"
    register_secret(key)
    seen: list[str] = []

    async def echo(request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        seen.append(auth)
        if request.path == "/ok":
            return web.json_response({"ok": True})
        message = f"Incorrect API key provided: {auth}"
        return web.json_response({"error": {"message": message, "key": key}}, status=401)

    server = serve(echo)

    async def go(c: Client) -> MovieDirectorError:
        assert await c.request("GET", server.url, "ok") == {"ok": True}
        try:
            await c.request("GET", server.url, "fail")
        except MovieDirectorError as exc:
            return exc
        raise AssertionError("no error")

    err = run_client(server.url, go, key=key)
    assert seen == [f"Bearer {key}"] * 2
    assert isinstance(err, AuthenticationError) and "Incorrect API key" in err.message
    for text in (str(err), repr(err), err.message, json.dumps(err.to_dict()), str(err.details), str(err.args)):
        assert key not in text, text
    assert "***" in err.message


# ------------------------------------------------------------------------------------- network policy, URLs


def test_offline_refuses_a_remote_url_before_connecting() -> None:
    url = "http://192.0.2.1:8188"  # TEST-NET-1: must never be contacted
    attempts: list[Any] = []

    async def go() -> Client:
        loop = asyncio.get_running_loop()

        async def no_connect(*args: Any, **kwargs: Any) -> Any:
            attempts.append(args)
            raise AssertionError("tried to connect")

        loop.create_connection = no_connect  # type: ignore[method-assign]
        loop.sock_connect = no_connect  # type: ignore[method-assign]
        client = Client(BackendConfig(name="t", urls=url, retry=FAST), NetworkPolicy(online_access=False))
        try:
            with pytest.raises(OnlineAccessError) as info:
                await client.request("GET", url, "system_stats")
            assert "192.0.2.1" in str(info.value) and "online access" in str(info.value)
            assert "Preferences > System > Network" in str(info.value)
            assert not info.value.retryable
            return client
        finally:
            await client.close()

    start = time.monotonic()
    client = asyncio.run(asyncio.wait_for(go(), 10))
    assert time.monotonic() - start < 1.0
    assert attempts == [] and client._sessions == {}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_always_works_offline(serve, host: str) -> None:
    bind = "127.0.0.1" if host == "localhost" else host
    if host == "::1":
        try:
            with socket.socket(socket.AF_INET6) as sock:
                sock.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
    server = serve(json_handler(200, {"ok": True}), host=bind)
    url = server.url.replace("127.0.0.1", "localhost") if host == "localhost" else server.url
    assert is_loopback(url)
    assert run_client(url, lambda c: c.request("GET", url, "x"), online=False) == {"ok": True}
    assert len(server.hits) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8188", True),
        ("http://127.9.8.7", True),
        ("http://localhost:8188", True),
        ("http://LOCALHOST", True),
        ("http://render.localhost", True),
        ("http://[::1]:8188", True),
        ("ws://localhost/ws", True),
        ("http://192.0.2.1:8188", False),
        ("http://10.0.0.5:8188", False),
        ("https://api.openai.com/v1", False),
        ("http://localhost.evil.example", False),
        ("http://127.0.0.1.nip.io", False),
        ("http://[2001:db8::1]", False),
        ("", False),
    ],
)
def test_is_loopback(url: str, expected: bool) -> None:
    assert is_loopback(url) is expected


def test_online_policy_allows_remote_urls() -> None:
    NetworkPolicy(online_access=True).check("http://192.0.2.1:8188", "t")  # no exception
    with pytest.raises(OnlineAccessError):
        NetworkPolicy(online_access=False).check("http://192.0.2.1:8188", "t")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x", "is not a server URL; write it like http://127.0.0.1:8188"),
        ("localhost:8188", "is not a server URL; write it like http://127.0.0.1:8188"),
        ("http://", "is not a server URL"),
        ("", "is not a server URL"),
        ("http://host:99999", "has an invalid port"),
        ("http://host:port", "has an invalid port"),
    ],
)
def test_validate_url_refuses_with_clear_messages(url: str, message: str) -> None:
    with pytest.raises(ValueError, match="(?s)" + message.replace(".", r"\.")) as info:
        validate_url(url)
    assert repr(url.strip().rstrip("/")) in str(info.value)


def test_validate_url_accepts_and_normalises() -> None:
    assert validate_url(" http://127.0.0.1:8188/ ") == "http://127.0.0.1:8188"
    assert validate_url("https://api.example.com/v1") == "https://api.example.com/v1"
    assert validate_url("ws://[::1]:8188") == "ws://[::1]:8188"


def test_backend_config_splits_url_strings() -> None:
    config = BackendConfig(name="c", urls="http://a:1, http://b:2 http://c:3/")
    assert config.urls == ("http://a:1", "http://b:2", "http://c:3")
    assert config.url == "http://a:1"
    assert BackendConfig(name="c", urls=" , ").urls == ()
    with pytest.raises(ValidationError, match="is not a server URL"):
        BackendConfig(name="c", urls="http://ok:1, localhost:8188")


@pytest.mark.parametrize("concurrency", [0, -1])
def test_backend_config_refuses_bad_concurrency(concurrency: int) -> None:
    with pytest.raises(ValidationError) as info:
        BackendConfig(name="c", concurrency=concurrency)
    errors = info.value.errors()
    assert len(errors) == 1 and errors[0]["loc"] == ("concurrency",)
    assert "greater than or equal to 1" in errors[0]["msg"]


def test_backend_config_never_shows_the_key() -> None:
    key = "sk-md-config-0a1b2c3d4e5f"
    config = BackendConfig(name="c", api_key=key)
    assert config.key() == key
    assert key not in repr(config) and key not in str(config)


# ----------------------------------------------------------------------------------------- safe file names


@pytest.fixture(scope="module")
def out_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("safe")


def _assert_plain_name(name: str) -> None:
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not any(unicodedata.category(ch)[0] == "C" for ch in name), ascii(name)
    assert len(name.encode("utf-8")) <= 255


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.one_of(st.text(), st.text(min_size=100, max_size=400), st.from_regex(r"[./\\:A-Za-z\x00]{0,40}")))
def test_safe_path_is_always_inside_the_folder(out_folder: Path, name: str) -> None:
    path = safe_path(out_folder, name)
    assert path.resolve().parent == out_folder.resolve()
    _assert_plain_name(path.name)
    path.touch()  # the file system accepts the name
    path.unlink()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../x", "x"),
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("C:\\Windows\\x.png", "x.png"),
        ("C:x.png", "x.png"),
        ("..", "output"),
        (".", "output"),
        ("", "output"),
        ("...", "output"),
        ("\x00evil", "evil"),
        ("a\u202egnp.exe", "agnp.exe"),
        ("line\nbreak\r.png", "linebreak.png"),
        (".hidden", "hidden"),
        ("MD_00001_.png", "MD_00001_.png"),
        ("lighthouse at night (v2).webp", "lighthouse at night (v2).webp"),
    ],
)
def test_safe_filename_cases(out_folder: Path, name: str, expected: str) -> None:
    assert safe_filename(name) == expected
    assert safe_path(out_folder, name) == out_folder.resolve() / expected


@pytest.mark.parametrize(
    "name",
    ["a" * 1000 + ".png", "é" * 300 + ".webm", "灯塔" * 100 + ".png", "x" * 5 + "." + "y" * 300, "z" * 500],
)
def test_very_long_names_are_capped(out_folder: Path, name: str) -> None:
    safe = safe_filename(name)
    _assert_plain_name(safe)
    assert len(safe) <= 120
    if name.endswith((".png", ".webm")):
        assert safe.endswith(name[name.rindex(".") :]) and len(safe) > len(name[name.rindex(".") :])
    path = safe_path(out_folder, name)
    path.touch()
    path.unlink()


def test_unique_path_numbers_taken_names(tmp_path: Path) -> None:
    target = tmp_path / "shot.png"
    assert unique_path(target) == target
    target.write_bytes(b"1")
    assert unique_path(target) == tmp_path / "shot (1).png"
    (tmp_path / "shot (1).png").write_bytes(b"2")
    assert unique_path(target) == tmp_path / "shot (2).png"
    bare = tmp_path / "README"
    bare.write_bytes(b"")
    assert unique_path(bare) == tmp_path / "README (1)"


def test_guess_media_type() -> None:
    assert guess_media_type("a.webp") == "image/webp"
    assert guess_media_type("A.MP4") == "video/mp4"
    assert guess_media_type("a.png") == "image/png"
    assert guess_media_type("a.flac") == "audio/flac"
    assert guess_media_type("a.unknown-ext") == "application/octet-stream"
    assert guess_media_type("noext", "image/png") == "image/png"


# ------------------------------------------------------------------------------------------------ downloads


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_streams_to_target(serve, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4000  # ~1 MB: several chunks

    async def send(request: web.Request) -> web.StreamResponse:
        return web.Response(body=payload, content_type="image/png")

    server = serve(send)
    target = tmp_path / "out.png"
    size, digest = run_client(server.url, lambda c: c.fetch_to(server.url, "view", target, 10 * 1024 * 1024))
    assert size == len(payload) and digest == hashlib.sha256(payload).hexdigest()
    assert target.read_bytes() == payload
    assert _leftovers(tmp_path) == ["out.png"]


def test_download_cut_off_mid_body_leaves_nothing(serve, tmp_path: Path) -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.content_length = 100_000
        await resp.prepare(request)
        await resp.write(b"p" * 10_000)
        assert request.transport is not None
        request.transport.close()  # hang up with 90% of the announced body missing
        return resp

    server = serve(cut)
    target = tmp_path / "cut.png"
    with pytest.raises(BackendUnavailableError) as info:
        run_client(server.url, lambda c: c.fetch_to(server.url, "view", target, 10 * 1024 * 1024))
    assert server.url in str(info.value)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("chunked", [False, True])
def test_download_over_max_bytes_leaves_nothing(serve, tmp_path: Path, chunked: bool) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=b"b" * 50_000)
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for _ in range(10):
            await resp.write(b"b" * 5_000)
        await resp.write_eof()
        return resp

    server = serve(big)
    target = tmp_path / "big.mp4"
    with pytest.raises(ProtocolError, match=r"too large|limit"):
        run_client(server.url, lambda c: c.fetch_to(server.url, "view", target, 10_000))
    assert _leftovers(tmp_path) == []
