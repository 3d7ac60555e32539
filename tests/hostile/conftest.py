"""Hostile servers: real aiohttp apps on loopback that misbehave on purpose (fixtures; helpers in
``tests/hostile_support.py``).

Each server runs in its own thread (``AppThread``) on a loopback address; "another host" is 127.0.0.2 (still this
computer: no test ever leaves it) or a name under ``.invalid`` that must be refused before anything resolves it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hostile_support import Hit, Peer
from movie_director.clients.serving import AppThread
from movie_director.runtime import BackendConfig, Runtime

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
def serve() -> Iterator[Callable[..., Peer]]:
    """``serve(handler, host="127.0.0.1") -> Peer``: every request is recorded, then handed to ``handler``."""
    peers: list[Peer] = []

    def start(handler: Handler, host: str = "127.0.0.1") -> Peer:
        peer = Peer(AppThread(lambda: make_app(peer, handler), host=host))
        peer.thread.start()
        peers.append(peer)
        return peer

    async def make_app(peer: Peer, handler: Handler) -> web.Application:
        peer.release = asyncio.Event()

        async def handle(request: web.Request) -> web.StreamResponse:
            peer.hits.append(Hit(request.method, request.path, dict(request.headers)))
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    yield start
    for peer in peers:
        peer.stop()


@pytest.fixture
def make_rt(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """``make_rt(name, factory, config, online=True)``: a runtime with a journal and one backend; stopped after."""
    runtimes: list[Runtime] = []

    def make(name: str, factory: Any, config: BackendConfig, *, online: bool = True) -> Runtime:
        from movie_director.runtime.backend import NetworkPolicy

        root = tmp_path / f"rt{len(runtimes)}"
        rt = Runtime(output_root=root / "out", journal=root / "jobs.db", network=NetworkPolicy(online_access=online))
        rt.register_backend(name, factory, config)
        runtimes.append(rt)
        return rt

    yield make
    for rt in runtimes:
        rt.stop()


@pytest.fixture(autouse=True)
def _info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="movie_director")
