"""A real LiteLLM proxy for the LLM tests (plain Python and Blender), shared by the whole pytest session.

The launcher itself is ``scripts/litellm_proxy.py`` (the benchmark needs it too, and scripts cannot import tests);
this module adds the test models and a small LiteLLM callback that makes the real proxy misbehave on demand: fail in
the middle of a stream (LiteLLM formats that error event itself) and stream slowly while noting when the client
disconnects, so cancel tests observe the server side.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from movie_director.clients.llm import client as llm
from movie_director.clients.serving import AppThread
from movie_director.runtime import BackendConfig
from movie_director.runtime.retry import RetryPolicy
from support import REPO

sys.path.insert(0, str(REPO / "scripts"))

from litellm_proxy import LiteLLMProxy, mock_model

__all__ = ["LiteLLMProxy", "mock_model"]
FAST = RetryPolicy(max_retries=2, base_delay=0.01, max_delay=0.02, deadline=20.0)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PLAIN_ANSWER = "INT. KITCHEN - NIGHT. Mara pours tea; the kettle whistles. Ünïcödé ✓ 🎬"
LONG_ANSWER = "".join(
    f"{i:03d}. The camera glides over the harbour at dusk — gulls, ropes, ünïcödé ✓ and a foghorn.\n"
    for i in range(120)
)
VALID_SHOTS = {
    "title": "The Lighthouse",
    "shots": [
        {
            "description": "Wide shot of a lighthouse in thick fog at night, its beam sweeping",
            "duration_s": 4.5,
            "camera": "wide, static",
            "dialogue": [],
            "sound_cues": ["foghorn", "waves on rocks"],
        },
        {
            "description": "Close-up of Mara at the lantern-room window",
            "duration_s": 3,
            "camera": "close-up, slow push-in",
            "dialogue": [{"character": "MARA", "line": "He's not coming back."}],
            "sound_cues": ["wind"],
        },
    ],
}
INVALID_SHOTS = {"title": "Broken", "shots": [{"description": "A shot far too long", "duration_s": 90}]}

#: A LiteLLM callback module written beside the proxy's config (see litellm_settings.callbacks below).
HOOKS = """
import asyncio
import os

from litellm.integrations.custom_logger import CustomLogger

EVENTS = os.environ.get("MD_PROXY_EVENTS", "")


def note(line):
    if EVENTS:
        with open(EVENTS, "a") as fh:
            fh.write(line + "\\n")


class StreamFaults(CustomLogger):
    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict, response, request_data):
        model = request_data.get("model")
        sent = 0
        try:
            async for item in response:
                if model == "mid-stream-error" and sent == 3:
                    raise RuntimeError("the model crashed mid-stream")
                if model == "slow-stream" and sent:
                    await asyncio.sleep(0.05)
                sent += 1
                yield item
        except (GeneratorExit, asyncio.CancelledError):
            if model == "slow-stream":
                note(f"disconnected after {sent}")
            raise
        if model == "slow-stream":
            note(f"finished after {sent}")


hook = StreamFaults()
"""

NO_COOLDOWN = {"allowed_fails": 1_000_000}  # a failing single deployment must keep failing the same way


def proxy_models() -> list[dict]:  # type: ignore[type-arg]
    return [
        mock_model("director-llm", PLAIN_ANSWER),
        mock_model("director-long", LONG_ANSWER),
        mock_model("shots-valid", json.dumps(VALID_SHOTS)),
        mock_model("shots-invalid", json.dumps(INVALID_SHOTS)),
        mock_model("always-429", "litellm.RateLimitError", deployment="fake-a"),
        mock_model("always-429", "litellm.RateLimitError", deployment="fake-b"),
        mock_model("boom", "litellm.InternalServerError", **NO_COOLDOWN),
        mock_model("stream-error", "Exception: mock_streaming_error", **NO_COOLDOWN),
        mock_model("mid-stream-error", PLAIN_ANSWER, **NO_COOLDOWN),
        mock_model("slow-stream", LONG_ANSWER, **NO_COOLDOWN),
    ]


def make_proxy() -> LiteLLMProxy:
    proxy = LiteLLMProxy(proxy_models(), files={"md_hooks.py": HOOKS}, litellm_settings={"callbacks": "md_hooks.hook"})
    proxy.extra_env["MD_PROXY_EVENTS"] = str(proxy.workdir / "events.log")
    return proxy


_lock = threading.Lock()
_proxy: LiteLLMProxy | None = None
_users = 0


def acquire() -> LiteLLMProxy:
    """The session's proxy, started by the first user; every ``acquire`` needs a ``release``."""
    global _proxy, _users
    with _lock:
        if _proxy is None:
            _proxy = make_proxy().start()
        _users += 1
        return _proxy


def release() -> None:
    """The last user stops the proxy (and its whole process group)."""
    global _proxy, _users
    with _lock:
        _users -= 1
        if _users <= 0 and _proxy is not None:
            _proxy.stop()
            _proxy = None
            _users = 0


def proxy_events(proxy: LiteLLMProxy) -> list[str]:
    path = Path(proxy.extra_env["MD_PROXY_EVENTS"])
    return path.read_text().splitlines() if path.exists() else []


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """Wait until ``predicate()`` holds (for state in another process, where no event can be waited on)."""
    end = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < end:
        if predicate():
            return True
        pause.wait(step)
    return bool(predicate())


# --------------------------------------------------------------------------- clients and stand-in servers


def llm_config(url: str, key: str | None, **options: Any) -> BackendConfig:
    return BackendConfig(name="llm", urls=url, api_key=key, concurrency=4, retry=FAST, timeout=30.0, options=options)


def run_client(config: BackendConfig, fn: Callable[[llm.LlmClient], Awaitable[Any]], timeout: float = 30) -> Any:
    """Build a client, run ``fn(client)`` on a fresh loop (bounded), always close the client."""

    async def main() -> Any:
        client = llm.factory(config, None)  # type: ignore[arg-type]
        try:
            return await fn(client)
        finally:
            await client.close()

    return asyncio.run(asyncio.wait_for(main(), timeout))


class Server:
    """A real aiohttp server on its own thread. It records each request's JSON body and headers, and when a client
    went away in the middle of an answer (``gone`` is set then). Handlers may wait on ``release`` (set at stop)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.disconnected: list[float] = []
        self.gone = threading.Event()
        self.release: asyncio.Event | None = None
        self.thread = AppThread(self._make_app)

    async def _make_app(self) -> web.Application:
        self.release = asyncio.Event()

        async def handle(request: web.Request) -> web.StreamResponse:
            self.headers.append(dict(request.headers))
            self.bodies.append(await request.json() if request.can_read_body else None)
            try:
                return await self.handler(request)
            except (ConnectionResetError, asyncio.CancelledError):
                self.disconnected.append(time.monotonic())
                self.gone.set()
                raise

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    @property
    def url(self) -> str:
        return self.thread.url

    def stop(self) -> None:
        if self.thread.loop is not None and self.release is not None:
            self.thread.loop.call_soon_threadsafe(self.release.set)
        self.thread.stop()


def chunk(content: str | None = None, finish: str | None = None, role: str | None = None) -> bytes:
    """One OpenAI ``chat.completion.chunk`` SSE frame."""
    delta: dict[str, Any] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    body = {"object": "chat.completion.chunk", "model": "stand-in", "choices": [{"index": 0, "delta": delta}]}
    if finish:
        body["choices"][0]["finish_reason"] = finish
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def start_stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    return resp


def completion(content: str) -> dict[str, Any]:
    return {
        "object": "chat.completion",
        "model": "stand-in",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
