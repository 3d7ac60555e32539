"""An OpenAI-compatible stand-in LLM for the demo and for anyone without a model: deterministic, instant, offline.

Plain Python: this module never imports bpy (aiohttp only). It answers ``/v1/chat/completions`` (blocking and SSE
streaming, in LiteLLM's shapes), ``/v1/models`` and ``/health/liveliness``. Asked for structured output with a shot
list schema, it cuts the scene text into sentences and makes one shot per sentence (quoted speech becomes dialogue,
a few words become sound cues); otherwise it writes the scene out in screenplay form. The real tests talk to a real
LiteLLM proxy; this is the embedded demo backend.

    python -m movie_director.clients.llm.standin --port 4000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import uuid
from typing import Any

from aiohttp import web

MODEL = "director-llm"
CAMERAS = ["wide, slow push-in", "medium, handheld", "close-up, static", "over the shoulder", "high angle, tilt down"]
SOUNDS = {
    "sea": "waves breaking",
    "surf": "surf on pebbles",
    "wave": "waves breaking",
    "wind": "wind gusts",
    "storm": "thunder far away",
    "rain": "rain on a tin roof",
    "door": "a door creaking",
    "stair": "footsteps on iron stairs",
    "bottle": "glass clinking",
    "fire": "crackling fire",
    "lantern": "a lantern hissing",
    "night": "crickets at night",
    "gull": "seagulls",
}


def shot_list(scene: str) -> dict[str, Any]:
    """A shot list made from the scene text, one shot per sentence."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", scene.strip()) if s.strip()]
    merged: list[str] = []
    for sentence in sentences:  # a one-word sentence ("Night.") sets the tone of the next one
        if merged and len(merged[-1].split()) <= 2:
            merged[-1] = f"{merged[-1]} {sentence}"
        else:
            merged.append(sentence)
    shots = []
    for i, sentence in enumerate(merged or ["An empty stage."]):
        quotes = re.findall(r"[\"“]([^\"”]+)[\"”]", sentence)
        words = sentence.lower()
        cues = sorted({cue for key, cue in SOUNDS.items() if key in words}) or ["room tone"]
        description = re.sub(r"[\"“][^\"”]+[\"”]", "", sentence).strip(" ,") or sentence
        shots.append(
            {
                "description": description,
                "duration_s": float(2 + (len(sentence.split()) % 3)),
                "camera": CAMERAS[i % len(CAMERAS)],
                "dialogue": [{"character": "KEEPER", "line": q} for q in quotes],
                "sound_cues": cues,
            }
        )
    title = " ".join(merged[0].split()[:4]).rstrip(".,") if merged else "Untitled"
    return {"title": title or "Untitled", "shots": shots}


def screenplay(prompt: str) -> str:
    lines = [f"INT./EXT. {prompt.split('.')[0].upper()[:40]} - NIGHT", ""]
    for sentence in re.split(r"(?<=[.!?])\s+", prompt.strip()):
        if sentence:
            lines += [sentence, ""]
    return "\n".join(lines).strip() + "\n"


def _answer(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    if isinstance(user, list):
        user = " ".join(str(part.get("text", "")) for part in user if isinstance(part, dict))
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_schema", "json_object"):
        return json.dumps(shot_list(str(user)))
    return screenplay(str(user))


async def _chat(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json()
    except ValueError:
        return web.json_response(
            {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}, status=400
        )
    text = _answer(body)
    cid, created, model = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time()), body.get("model") or MODEL
    if not body.get("stream"):
        return web.json_response(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": len(text) // 4,
                    "total_tokens": 10 + len(text) // 4,
                },
            }
        )
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)

    async def send(delta: dict[str, Any], finish: str | None = None) -> None:
        chunk = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
        await resp.write(f"data: {json.dumps(chunk)}\n\n".encode())

    await send({"role": "assistant", "content": ""})
    for i in range(0, len(text), 3):  # three characters a chunk, as LiteLLM's mock does
        await send({"content": text[i : i + 3]})
        if i % 96 == 0:
            await asyncio.sleep(0)
    await send({}, "stop")
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def _models(request: web.Request) -> web.Response:
    return web.json_response(
        {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "md"}]}
    )


async def _alive(request: web.Request) -> web.Response:
    return web.Response(text="I'm alive!")


def make_app() -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/chat/completions", _chat)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/models", _models)
    app.router.add_get("/health/liveliness", _alive)
    app.router.add_get("/health/readiness", _alive)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="An offline, deterministic OpenAI-compatible LLM stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4000)
    args = parser.parse_args(argv)
    print(f"LLM stand-in listening on http://{args.host}:{args.port}", flush=True)
    web.run_app(make_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
