"""A Gradio client talks only to its app: a ``/config`` that names another server is refused (issue 12 items 8 and
12), and no Gradio backend ever contacts huggingface.co in-process (item 10), proven without HF_HUB_OFFLINE by a
guard on every name lookup and connection of a clean Python process during a real Gradio call."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hostile_support import KEY, Peer, assert_no_key
from movie_director.clients.gradio_app import GradioRunner
from movie_director.runtime.backend import NetworkPolicy
from movie_director.runtime.errors import ProtocolError, register_secret

TESTS = Path(__file__).resolve().parents[1]


def fake_gradio(config: Callable[[], dict[str, Any]]) -> Callable[[web.Request], object]:
    """Just enough of a Gradio 5 app for gradio_client to connect: /config and /gradio_api/info."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.path == "/config":
            return web.json_response(config())
        if request.path.endswith("/info"):
            return web.json_response({"named_endpoints": {}, "unnamed_endpoints": {}})
        return web.json_response({"detail": "Not Found"}, status=404)

    return handler


def base_config(**extra: Any) -> dict[str, Any]:
    return {
        "version": "5.9.1",
        "protocol": "sse_v3",
        "mode": "blocks",
        "components": [],
        "dependencies": [],
        "api_prefix": "/gradio_api",
        "connect_heartbeat": False,
        **extra,
    }


def connect(url: str, **kw: Any) -> Any:
    async def main() -> Any:
        runner = GradioRunner(url, backend="audioldm", network=NetworkPolicy(), hf_token=KEY, **kw)
        try:
            return await runner.info()
        finally:
            await runner.close()

    return asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("prefix", ["http://{other}/gradio_api", "HTTPS://{other}/", "ws://{other}/x"])
def test_an_api_prefix_on_another_server_is_refused(serve: Callable[..., Peer], prefix: str) -> None:
    register_secret(KEY)
    other = serve(fake_gradio(base_config), host="127.0.0.2")
    other_host = other.url.removeprefix("http://")
    app = serve(fake_gradio(lambda: base_config(api_prefix=prefix.format(other=other_host))))
    with pytest.raises(ProtocolError, match="another server") as caught:
        connect(app.url)
    assert other.hits == []  # neither the key nor anything else went there
    assert_no_key(KEY, str(caught.value))
    assert [h.path for h in app.hits] == ["/config"]


def test_a_root_naming_another_server_is_ignored(serve: Callable[..., Peer]) -> None:
    other = serve(fake_gradio(base_config), host="127.0.0.2")
    app = serve(fake_gradio(lambda: base_config(root=other.url)))
    info = connect(app.url)
    assert info.url == app.url and info.version == "5.9.1"
    assert other.hits == []
    assert {h.path for h in app.hits} == {"/config", "/gradio_api/info"}
    assert all(h.headers.get("x-hf-authorization") == f"Bearer {KEY}" for h in app.hits)  # the key, only here


GUARDED_CALL = textwrap.dedent(
    """
    import asyncio, ipaddress, json, socket, sys

    attempts = []

    def is_local(host):
        if host is None:
            return True
        host = host.decode() if isinstance(host, bytes) else str(host)
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host.split("%")[0]).is_loopback
        except ValueError:
            return False

    def guard(event, args):
        if event == "socket.getaddrinfo" and not is_local(args[0]):
            attempts.append(f"resolve {args[0]}")
            raise OSError("blocked by the test: " + str(args[0]))
        if event == "socket.connect":
            address = args[1]
            host = address[0] if isinstance(address, tuple) else None
            if host is not None and not is_local(host):
                attempts.append(f"connect {host}")
                raise OSError("blocked by the test: " + str(host))

    sys.addaudithook(guard)

    from movie_director.clients.gradio_app import GradioRunner
    from movie_director.runtime.backend import NetworkPolicy

    async def main(url):
        runner = GradioRunner(url, backend="audioldm", network=NetworkPolicy(online_access=True), hf_token="sk-x1234")
        try:
            result = await runner.call("/remember", "hello", deadline=30)
            return result.data
        finally:
            await runner.close()

    data = asyncio.run(main(sys.argv[1]))
    ours = list(attempts)
    # The control: huggingface_hub's own header builder, in this same environment, does try to reach the Hub.
    import huggingface_hub.utils
    huggingface_hub.utils.build_hf_headers(token=False, library_name="x", library_version="1")
    print(json.dumps({"data": data, "ours": ours, "control": attempts[len(ours):]}))
    """
)


@pytest.fixture(scope="module")
def gradio_app() -> Iterator[Any]:
    sys.path.insert(0, str(TESTS))
    from gradio_support import GradioApp

    app = GradioApp("hostile-gradio", [str(TESTS / "gradio" / "app.py"), "--port", "{port}"]).spawn().wait_ready()
    try:
        yield app
    finally:
        app.stop()


def test_no_gradio_call_contacts_huggingface(gradio_app: Any, tmp_path: Path) -> None:
    script = tmp_path / "guarded_call.py"
    script.write_text(GUARDED_CALL)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGINGFACE", "GRADIO_", "DO_NOT_TRACK")) and k not in ("NO_PROXY", "no_proxy")
    }
    env["HF_HOME"] = str(tmp_path / "hf-home")  # no cached answer from an earlier run: the Hub would be asked
    done = subprocess.run(
        [sys.executable, str(script), gradio_app.url], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["data"], out
    assert out["ours"] == [], f"a Gradio call reached beyond this computer: {out['ours']}"
    assert any("huggingface" in a for a in out["control"]), out  # the guard would have seen it


def test_a_missing_upload_is_named_and_the_slot_is_released(gradio_app: Any, tmp_path: Path) -> None:
    from movie_director.runtime.errors import InvalidRequestError

    missing = tmp_path / "nonexistent" / "in.wav"

    async def main() -> Any:
        runner = GradioRunner(gradio_app.url, backend="rvc", network=NetworkPolicy(), max_workers=1)
        try:
            with pytest.raises(InvalidRequestError) as caught:
                await runner.call("/upload_size", missing, deadline=20)
            assert str(missing) in str(caught.value) and "does not exist" in str(caught.value)
            assert runner.busy == 0
            return (await runner.call("/remember", "still works", deadline=20)).data  # the only slot is free
        finally:
            await runner.close()

    assert asyncio.run(asyncio.wait_for(main(), 60))
