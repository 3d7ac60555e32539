"""LLM streaming figures for scripts/bench.py (loaded by it; ``python scripts/bench_llm.py --standin`` runs the
stand-in server used below).

- llm_stream_tokens_per_s: a long streamed answer from a real LiteLLM proxy (mock model, 3 characters a chunk, one
  chunk counted as one token) read through the runtime by our client, every piece delivered to a main-thread
  ``on_text`` callback, beside llm_raw_tokens_per_s: a bare aiohttp read with a minimal SSE parse (split lines,
  ``json.loads`` each ``data:``) of the same stream, in the same run. Target >= 0.9x raw. The proxy itself is the
  bottleneck here (a few thousand chunks a second), so this shows that our client keeps up with it.
- llm_client_tokens_per_s beside llm_client_raw_tokens_per_s: the same two readers against a stand-in server that
  sends the same chunks as fast as it can, so the client's own cost shows. Target >= 0.8x raw.

Both servers run in their own process, as real ones do; the proxy is started and stopped here
(scripts/litellm_proxy.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import aiohttp
from litellm_proxy import LiteLLMProxy, mock_model
from movie_director.clients.llm import client as llm
from movie_director.clients.scratch import scratch_dir
from movie_director.runtime import BackendConfig, Runtime

MODEL = "bench-long"
ANSWER = "".join(f"{i:05d} the camera glides over the harbour, gulls and ropes; ✓\n" for i in range(200))
BODY = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "Write the harbour scene."}]}


def ours(url: str, key: str) -> float:
    rt = Runtime(output_root=scratch_dir("md-bench-"))
    rt.register_backend("llm", llm.factory, BackendConfig(name="llm", urls=url, api_key=key, options={"model": MODEL}))
    rt.submit("llm", "chat", {"prompt": "warm up"}).wait(60)  # connect outside the measurement
    pieces: list[str] = []
    start = time.perf_counter()
    handle = rt.submit("llm", "chat_stream", {"prompt": "Write the harbour scene."})
    handle.on_text(lambda job, delta: pieces.append(delta))
    job = handle.wait(300)  # pumps on this thread, as Blender's timer does
    took = time.perf_counter() - start
    rt.stop()
    assert job.state.value == "succeeded", job.error
    assert "".join(pieces) == ANSWER, "the stream lost or changed text"
    return len(pieces) / took


async def _raw(url: str, key: str) -> float:
    """The least a client must do: POST, read lines, parse each data line."""
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/v1/models", headers=headers) as resp:
            await resp.read()  # connect outside the measurement
        parts: list[str] = []
        start = time.perf_counter()
        async with session.post(f"{url}/v1/chat/completions", json=BODY, headers=headers) as resp:
            async for line in resp.content:
                if line.startswith(b"data: ") and not line.startswith(b"data: [DONE]"):
                    delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
                    if delta:
                        parts.append(delta)
        took = time.perf_counter() - start
    assert "".join(parts) == ANSWER
    return len(parts) / took


def raw(url: str, key: str) -> float:
    return asyncio.run(_raw(url, key))


def compare(url: str, key: str, rounds: int) -> tuple[float, float]:
    """Median tokens/s of (ours, raw), alternating who goes first so that machine noise hits both alike."""
    runs: dict[Callable[[str, str], float], list[float]] = {ours: [], raw: []}
    for i in range(rounds):
        for fn in (ours, raw) if i % 2 else (raw, ours):
            runs[fn].append(fn(url, key))
    return statistics.median(runs[ours]), statistics.median(runs[raw])


def bench_proxy() -> dict[str, float]:
    with LiteLLMProxy([mock_model(MODEL, ANSWER)]) as proxy:
        raw(proxy.url, proxy.key)  # the proxy's first stream is slower: not measured
        mine, bare = compare(proxy.url, proxy.key, rounds=4)
    return {"llm_stream_tokens_per_s": mine, "llm_raw_tokens_per_s": bare}


@contextlib.contextmanager
def standin_process() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, __file__, "--standin"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            raise RuntimeError(f"the stand-in did not start: {line!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


def bench_client() -> dict[str, float]:
    with standin_process() as url:
        mine, bare = compare(url, "sk-bench", rounds=7)
    return {"llm_client_tokens_per_s": mine, "llm_client_raw_tokens_per_s": bare}


def serve_standin() -> None:
    """An OpenAI-like server streaming ANSWER in LiteLLM's 3-character chunks as fast as the socket takes them."""
    from aiohttp import web

    frames = [
        b"data: "
        + json.dumps(
            {"object": "chat.completion.chunk", "model": MODEL, "choices": [{"index": 0, "delta": {"content": piece}}]}
        ).encode()
        + b"\n\n"
        for piece in (ANSWER[i : i + 3] for i in range(0, len(ANSWER), 3))
    ]

    async def chat(request: web.Request) -> web.StreamResponse:
        if not (await request.json()).get("stream"):
            message = {"role": "assistant", "content": "ok"}
            return web.json_response({"model": MODEL, "choices": [{"finish_reason": "stop", "message": message}]})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for i in range(0, len(frames), 20):
            await resp.write(b"".join(frames[i : i + 20]))
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/v1/models", models)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"stand-in at http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


SECTIONS = [("llm_stream", bench_proxy), ("llm_client", bench_client)]
TARGETS = {
    "llm_stream_tokens_per_s": lambda r: r["llm_stream_tokens_per_s"] >= 0.9 * r["llm_raw_tokens_per_s"],
    "llm_client_tokens_per_s": lambda r: r["llm_client_tokens_per_s"] >= 0.8 * r["llm_client_raw_tokens_per_s"],
}

if __name__ == "__main__" and sys.argv[1:] == ["--standin"]:
    serve_standin()
