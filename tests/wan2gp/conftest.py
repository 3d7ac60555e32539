"""Real peers for the Wan2GP client: the MCP stand-in (in a thread, or as its own process that a test can kill), a
raw HTTP server for malformed answers, and a runtime whose wan2gp backend points at them."""

from __future__ import annotations

import asyncio
import selectors
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from movie_director.clients.wan2gp import client as wan
from movie_director.clients.wan2gp.standin_mcp import StandinServer
from movie_director.runtime import BackendConfig, RetryPolicy, Runtime

#: Fast polling for tests; the defaults (0.5 s, up to 5 s) suit a real GPU server.
FAST = {"poll_interval": 0.02, "max_interval": 0.1, "lost_after": 1.0, "call_timeout": 5.0, "settle_timeout": 5.0}


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    with StandinServer(step_delay=0.01) as server:
        yield server


def make_runtime(tmp_path: Path, urls: str, *, concurrency: int = 1, **options: Any) -> Runtime:
    rt = Runtime(output_root=tmp_path / "out")
    config = BackendConfig(
        name="wan2gp",
        urls=urls,
        concurrency=concurrency,
        retry=RetryPolicy(max_retries=1, base_delay=0.05, deadline=10.0),
        options={**FAST, **options},
    )
    rt.register_backend("wan2gp", wan.factory, config)
    return rt


@pytest.fixture
def runtime_for(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """``runtime_for(urls, concurrency=1, **options)``: runtimes stopped after the test."""
    made: list[Runtime] = []

    def make(urls: str, *, concurrency: int = 1, **options: Any) -> Runtime:
        rt = make_runtime(tmp_path / f"rt{len(made)}", urls, concurrency=concurrency, **options)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()


@pytest.fixture
def wan_rt(standin: StandinServer, runtime_for: Callable[..., Runtime]) -> Runtime:
    return runtime_for(standin.url, local_copy=False)


class StandinProcess:
    """The stand-in as its own process (``python -m ...standin_mcp``), so a test can kill it mid-job."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "movie_director.clients.wan2gp.standin_mcp", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=20):
                self.stop()
                raise RuntimeError("the stand-in process printed no URL within 20 s")
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:") and self.url.endswith("/mcp"), self.url

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def standin_process(tmp_path: Path) -> Iterator[Callable[..., StandinProcess]]:
    started: list[StandinProcess] = []

    def start(*args: str) -> StandinProcess:
        # Its videos go under tmp_path: a process killed mid-job cleans up nothing itself.
        proc = StandinProcess("--output-dir", str(tmp_path / f"standin{len(started)}"), *args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


class RawServer:
    """A plain aiohttp server (own thread) whose every POST/GET is answered by ``reply(request_body) -> Response``:
    for answers no MCP server would send."""

    def __init__(self, reply: Callable[[bytes], Any]) -> None:
        from aiohttp import web

        self.reply = reply
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="raw-http", daemon=True)

        async def handle(request: web.Request) -> web.StreamResponse:
            return self.reply(await request.read())

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self._runner = web.AppRunner(app)
        self._thread.start()
        assert self._ready.wait(10)

    def _run(self) -> None:
        from aiohttp import web

        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

        self._loop.run_until_complete(start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[bytes], Any]], RawServer]]:
    servers: list[RawServer] = []

    def start(reply: Callable[[bytes], Any]) -> RawServer:
        server = RawServer(reply)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# --- reading AVI files (RIFF); fixtures because test modules cannot import this conftest by name --------------------
@pytest.fixture
def avi() -> Any:
    """``avi.chunks(path, tag)`` and ``avi.size(path) -> (frames, width, height)``."""

    class Avi:
        chunks = staticmethod(avi_chunks)
        size = staticmethod(avi_size)

    return Avi


def avi_chunks(path: str | Path, tag: bytes = b"00dc") -> list[bytes]:
    """The payloads of every ``tag`` chunk inside the AVI's ``movi`` list, walking the RIFF structure."""
    data = Path(path).read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"AVI ", "not an AVI file"
    found: list[bytes] = []

    def walk(start: int, end: int) -> None:
        pos = start
        while pos + 8 <= end:
            kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
            body = pos + 8
            if kind == b"LIST":
                walk(body + 4, body + size)
            elif kind == tag:
                found.append(data[body : body + size])
            pos = body + size + (size & 1)

    walk(12, len(data))
    return found


def avi_size(path: str | Path) -> tuple[int, int, int]:
    """(total frames, width, height) from the ``avih`` main header."""
    (avih,) = avi_chunks(path, b"avih")
    fields = struct.unpack("<10I", avih[:40])
    return fields[4], fields[8], fields[9]
