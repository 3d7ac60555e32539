"""A stand-in text-to-speech server that really speaks, offline and without a model: eSpeak NG behind the routes and
answer shapes of Kokoro-FastAPI (the most used local OpenAI-compatible TTS server). For tests and the demo only; the
extension never ships it.

Plain Python: this module never imports bpy (aiohttp only). Routes, as Kokoro-FastAPI serves them (its
``api/src/routers/openai_compatible.py``, mounted at ``/v1``):

    POST /v1/audio/speech   {"model", "input", "voice", "response_format", "speed", "stream"} -> audio
    GET  /v1/audio/voices   {"voices": [{"id", "name"}]}  (``?legacy=true``: {"voices": ["..."]})
    GET  /v1/models         {"object": "list", "data": [{"id", ...}]}

Errors are FastAPI's ``{"detail": {"error", "message", "type"}}``. Differences from Kokoro (also in the protocol
note): only ``wav`` and ``pcm`` are made (no encoder for mp3/opus/aac/flac: 400 naming the formats it makes), the
voices are eSpeak NG voices, and without the ``espeakng-loader`` wheel the speech is a honest stand-in of beeps, one
per syllable, announced in the ``X-Speech-Engine`` header.

    python -m movie_director.clients.speech.standin --port 8880 [--no-voice-list] [--delay 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import re
import struct
import wave

from aiohttp import web

#: The stand-in's voices: names a user picks, eSpeak NG voice (with a variant) and pitch behind each.
VOICES: dict[str, tuple[str, int]] = {
    "en_us_anna": ("en-us+f3", 60),
    "en_us_ben": ("en-us+m3", 40),
    "en_gb_clara": ("en+f2", 58),
    "en_gb_dev": ("en+m1", 45),
    "en_sc_eilidh": ("en-gb-scotland+f4", 55),
    "en_us_frank": ("en-us+m7", 30),
}
MODELS = ("tts-1", "tts-1-hd", "espeak-ng")
FORMATS = ("wav", "pcm")
BEEP_RATE = 22050
#: Every speech body the app received, for tests: ``app[REQUESTS]``.
REQUESTS = web.AppKey("requests", list)


def _error(status: int, kind: str, message: str, type_: str = "invalid_request_error") -> web.Response:
    return web.json_response({"detail": {"error": kind, "message": message, "type": type_}}, status=status)


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buf.getvalue()


def beeps(text: str, speed: float, pitch: int) -> tuple[bytes, int]:
    """The fallback without eSpeak NG: one short tone per syllable, a pause per word (honestly not speech)."""
    samples: list[int] = []
    base = 140.0 + pitch * 2.0
    for word in re.findall(r"[\w']+", text)[:400]:
        for i in range(max(1, len(re.findall(r"[aeiouy]+", word.lower())))):
            freq = base * (1.0 + 0.08 * ((len(word) + i) % 5))
            count = int(BEEP_RATE * 0.14 / speed)
            samples += [int(9000 * math.sin(2 * math.pi * freq * n / BEEP_RATE)) for n in range(count)]
        samples += [0] * int(BEEP_RATE * 0.08 / speed)
    return struct.pack(f"<{len(samples)}h", *samples), BEEP_RATE


def synthesize(text: str, voice: str, speed: float) -> tuple[bytes, int, str]:
    """(16-bit mono PCM, sample rate, engine) for a line."""
    from .standin_espeak import EspeakError, engine

    espeak_voice, pitch = VOICES[voice]
    try:
        tts = engine()
    except EspeakError:
        pcm, rate = beeps(text, speed, pitch)
        return pcm, rate, "beeps"
    return tts.speak(text, espeak_voice, speed=speed, pitch=pitch), tts.rate, "espeak-ng"


def make_app(*, voice_list: bool = True, delay: float = 0.0) -> web.Application:
    """The stand-in app; ``voice_list=False`` drops ``/v1/audio/voices`` (as openedai-speech and LiteLLM have none)."""
    app = web.Application(client_max_size=1024 * 1024)
    app[REQUESTS] = []

    async def speech(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(422, "validation_error", "the body is not JSON")
        if not isinstance(body, dict):
            return _error(422, "validation_error", "the body is not an object")
        app[REQUESTS].append(body)
        model = body.get("model", "kokoro")
        if model not in MODELS:
            return _error(400, "invalid_model", f"Unsupported model: {model}")
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "validation_error", "Text is empty after preprocessing")
        voice = str(body.get("voice") or "en_us_anna")
        if voice not in VOICES:
            available = ", ".join(sorted(VOICES))
            return _error(400, "validation_error", f"Voice '{voice}' not found. Available voices: {available}")
        fmt = body.get("response_format", "mp3")
        if fmt not in FORMATS:
            return _error(400, "validation_error", f"This stand-in makes {' and '.join(FORMATS)} only, not {fmt!r}")
        speed = body.get("speed", 1.0)
        if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
            return web.json_response(
                {"detail": [{"loc": ["body", "speed"], "msg": "Input should be between 0.25 and 4", "type": "x"}]},
                status=422,
            )
        if delay:
            await asyncio.sleep(delay)
        pcm, rate, engine_name = await asyncio.get_running_loop().run_in_executor(
            None, synthesize, text, voice, float(speed)
        )
        audio = wav_bytes(pcm, rate) if fmt == "wav" else pcm
        media = "audio/wav" if fmt == "wav" else f"audio/pcm;rate={rate}"
        headers = {"Content-Disposition": f"attachment; filename=speech.{fmt}", "X-Speech-Engine": engine_name}
        if body.get("stream", True):  # Kokoro streams by default: chunked, no length
            resp = web.StreamResponse(headers={**headers, "Content-Type": media})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for start in range(0, len(audio), 16384):
                await resp.write(audio[start : start + 16384])
            await resp.write_eof()
            return resp
        return web.Response(body=audio, headers={**headers, "Content-Type": media})

    async def voices(request: web.Request) -> web.Response:
        names = list(VOICES)
        if request.query.get("legacy", "").lower() in ("1", "true"):
            return web.json_response({"voices": names})
        return web.json_response({"voices": [{"id": v, "name": v} for v in names]})

    async def models(request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "created": 1686935002, "owned_by": "standin"} for m in MODELS]
        return web.json_response({"object": "list", "data": data})

    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_get("/v1/models", models)
    if voice_list:
        app.router.add_get("/v1/audio/voices", voices)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8880)
    parser.add_argument("--no-voice-list", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    print(f"speech stand-in on http://{args.host}:{args.port}", flush=True)
    web.run_app(make_app(voice_list=not args.no_voice_list, delay=args.delay), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
