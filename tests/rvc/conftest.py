"""Real peers for the RVC client: the rvc-python stand-in (aiohttp, own thread), the Applio stand-in (a real Gradio
app in its own process), and runtimes whose ``rvc`` backend points at them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from movie_director.clients import media
from movie_director.clients.rvc import client as rvc
from movie_director.clients.rvc.standin_api import RvcApiStandin
from movie_director.runtime import BackendConfig, RetryPolicy, Runtime
from rvc_support import AppProcess

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FAST_RETRY = RetryPolicy(max_retries=2, base_delay=0.05, max_delay=0.1, deadline=30.0)
VOICES = ("alice", "bob", "carol")


@pytest.fixture
def api_standin() -> Iterator[RvcApiStandin]:
    with RvcApiStandin(VOICES) as standin:
        yield standin


def make_runtime(tmp_path: Path, urls: str, **options: Any) -> Runtime:
    concurrency = options.pop("concurrency", 2)
    rt = Runtime(output_root=tmp_path / "out")
    config = BackendConfig(name="rvc", urls=urls, concurrency=concurrency, retry=FAST_RETRY, options=options)
    rt.register_backend("rvc", rvc.factory, config)
    return rt


@pytest.fixture
def runtime_for(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """``runtime_for(urls, **options)``: a runtime with an ``rvc`` backend; every one made is stopped afterwards."""
    made: list[Runtime] = []

    def build(urls: str, **options: Any) -> Runtime:
        made.append(make_runtime(tmp_path, urls, **options))
        return made[-1]

    yield build
    for rt in made:
        rt.stop()


@pytest.fixture
def api_rt(api_standin: RvcApiStandin, runtime_for: Callable[..., Runtime]) -> Runtime:
    return runtime_for(api_standin.url)


@pytest.fixture
def line(tmp_path: Path) -> Path:
    """Two seconds of a 220 Hz tone: the "recorded line" every conversion starts from."""
    return media.write_wav(tmp_path / "line.wav", media.tone(2.0, freq=220.0))


@pytest.fixture(scope="session")
def applio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """One Applio stand-in for the whole session (a Gradio app takes seconds to start)."""
    root = tmp_path_factory.mktemp("applio")
    app = AppProcess("--root", str(root), "--voices", ",".join(VOICES), "--step-delay", "0.05")
    app.root = root
    try:
        yield app
    finally:
        app.stop()
