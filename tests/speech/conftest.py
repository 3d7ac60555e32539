"""Speech fixtures: the eSpeak NG stand-in (Kokoro-FastAPI's shapes) as a real aiohttp server, and runtimes on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from movie_director.clients.serving import AppThread
from movie_director.clients.speech import client as speech
from movie_director.clients.speech import standin
from movie_director.runtime import BackendConfig, Runtime
from movie_director.runtime.retry import RetryPolicy

FAST = RetryPolicy(max_retries=1, base_delay=0.01, max_delay=0.02, deadline=20.0)


@pytest.fixture(scope="session")
def tts() -> Iterator[AppThread]:
    """The stand-in with its voice list (as Kokoro-FastAPI)."""
    server = AppThread(standin.make_app, name="speech-standin").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tts_unlisted() -> Iterator[AppThread]:
    """The stand-in without ``/v1/audio/voices`` (as openedai-speech)."""
    server = AppThread(lambda: standin.make_app(voice_list=False), name="speech-standin-unlisted").start()
    yield server
    server.stop()


@pytest.fixture
def speech_rt(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """``speech_rt(url, key=None, **options)``: a runtime whose speech backend is ``url``; stopped after the test."""
    made: list[Runtime] = []

    def make(url: str, *, key: str | None = None, timeout: float = 30.0, **options: Any) -> Runtime:
        rt = Runtime(output_root=tmp_path / f"out{len(made)}")
        config = BackendConfig(
            name="speech", urls=url, api_key=key, timeout=timeout, retry=FAST, concurrency=2, options=options
        )
        rt.register_backend("speech", speech.factory, config)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()
