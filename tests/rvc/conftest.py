"""Real peers for the RVC client: the rvc-python stand-in (aiohttp, own thread), the Applio stand-in (a real Gradio
app in its own process), and runtimes whose ``rvc`` backend points at them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from movie_director.clients import media
from movie_director.clients.rvc import client as rvc
from movie_director.clients.rvc.standin_api import RvcApiStandin
from movie_director.runtime import BackendConfig, RetryPolicy, Runtime

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AppProcess:
    """``python -m movie_director.clients.rvc.standin_applio --port P`` in its own process; ready once it prints its
    URL."""

    def __init__(self, *args: str) -> None:
        port = free_port()
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "movie_director.clients.rvc.standin_applio", "--port", str(port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.url = ""
        self.root = Path()
        self.output: list[str] = []
        self._said = threading.Condition()
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stdout is not None
            for text in self.proc.stdout:
                with self._said:
                    self.output.append(text)
                    self._said.notify_all()
                if not self.url and text.startswith("http://"):
                    self.url = text.strip()
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read, name="applio-standin-output", daemon=True)
        self._reader.start()
        if not ready.wait(60) or not self.url:
            self.stop()
            raise RuntimeError("the Applio stand-in did not start:\n" + "".join(self.output[-30:]))

    def wait_for(self, text: str, timeout: float) -> bool:
        """Whether the app prints a line containing ``text`` within ``timeout`` seconds."""
        with self._said:
            return self._said.wait_for(lambda: any(text in line for line in self.output), timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


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
