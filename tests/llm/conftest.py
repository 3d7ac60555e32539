"""Fixtures of the LLM tests: the real LiteLLM proxy (one per session), a runtime pointed at it, and tiny stand-in
servers for the faults a mock model cannot produce. Helpers the tests import live in ``tests/llm_support.py``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import llm_support
import pytest
from llm_support import Handler, LiteLLMProxy, Server, llm_config
from movie_director.clients.llm import client as llm
from movie_director.runtime import Runtime


@pytest.fixture(scope="session")
def proxy() -> Iterator[LiteLLMProxy]:
    yield llm_support.acquire()
    llm_support.release()


@pytest.fixture
def llm_rt(proxy: LiteLLMProxy, tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose ``llm`` backend is the real proxy (fast retries so failing cases stay quick)."""
    rt = Runtime(output_root=tmp_path / "out")
    rt.register_backend("llm", llm.factory, llm_config(proxy.url, proxy.key, model="director-llm"))
    yield rt
    rt.stop()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    """Start tiny aiohttp stand-ins; every one is stopped after the test."""
    servers: list[Server] = []

    def start(handler: Handler) -> Server:
        server = Server(handler)
        server.thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def make_rt(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """``make_rt(url, key=..., timeout=..., **options)``: a runtime whose ``llm`` backend is ``url``; stopped after."""
    runtimes: list[Runtime] = []

    def make(url: str, *, key: str | None = "sk-stand-in-key", timeout: float = 30.0, **options: Any) -> Runtime:
        rt = Runtime(output_root=tmp_path / f"out{len(runtimes)}")
        config = llm_config(url, key, **{"model": "stand-in", **options}).model_copy(update={"timeout": timeout})
        rt.register_backend("llm", llm.factory, config)
        runtimes.append(rt)
        return rt

    yield make
    for rt in runtimes:
        rt.stop()
