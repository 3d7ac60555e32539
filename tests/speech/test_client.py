"""The speech client against the eSpeak NG stand-in (Kokoro-FastAPI's shapes), hostile servers and a server that
does not speak at all."""

from __future__ import annotations

import wave
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from movie_director.clients.serving import AppThread
from movie_director.clients.speech import standin
from movie_director.runtime import JobState, Runtime
from movie_director.runtime.errors import register_secret

RtFactory = Callable[..., Runtime]


def speak(rt: Runtime, text: str, **params: object):  # type: ignore[no-untyped-def]
    return rt.submit("speech", "speak", {"text": text, **params}).wait(30)


def samples(path: str) -> tuple[int, bytes]:
    with wave.open(path, "rb") as fh:
        return fh.getframerate(), fh.readframes(fh.getnframes())


def test_a_line_is_spoken_into_a_wav_in_the_jobs_folder(tts: AppThread, speech_rt: RtFactory) -> None:
    rt = speech_rt(tts.url)
    before = len(tts_requests(tts))
    job = speak(rt, "The lamp is out, keeper.", voice="en_us_ben", speed=1.25)
    assert job.state is JobState.SUCCEEDED, job.error
    (out,) = job.outputs.files
    assert out.media_type == "audio/wav" and Path(out.path).parent == (rt.output_root / "speech" / job.id).resolve()
    rate, pcm = samples(out.path)
    assert rate == 22050 and job.outputs.data["duration_s"] == pytest.approx(len(pcm) / 2 / rate)
    assert 0.5 < job.outputs.data["duration_s"] < 5 and max(pcm) > 0  # speech, not silence
    sent = tts_requests(tts)[before:]
    assert sent == [
        {"model": "tts-1", "input": "The lamp is out, keeper.", "voice": "en_us_ben", "response_format": "wav",
         "speed": 1.25}
    ]  # fmt: skip
    assert job.outputs.data["voice"] == "en_us_ben" and job.outputs.data["model"] == "tts-1"


def test_the_stand_in_really_speaks_with_espeak_ng() -> None:
    pcm, rate, engine = standin.synthesize("Hello there, keeper.", "en_gb_clara", 1.0)
    assert engine == "espeak-ng" and rate == 22050
    longer, _, _ = standin.synthesize("Hello there, keeper. The storm is coming and the lamp is out.", "en_gb_clara", 1)
    faster, _, _ = standin.synthesize("Hello there, keeper.", "en_gb_clara", 2.0)
    assert len(longer) > 1.8 * len(pcm) and len(faster) < 0.8 * len(pcm)


def test_no_voice_named_takes_the_servers_first_voice(tts: AppThread, speech_rt: RtFactory) -> None:
    job = speak(speech_rt(tts.url), "Who goes there?")
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.data["voice"] == next(iter(standin.VOICES))


def test_an_unknown_voice_is_refused_naming_the_servers_voices_before_anything_is_spoken(
    tts: AppThread, speech_rt: RtFactory
) -> None:
    before = len(tts_requests(tts))
    job = speak(speech_rt(tts.url), "Hello.", voice="af_heart")
    assert job.state is JobState.FAILED and job.error is not None
    assert "no voice 'af_heart'" in job.error.message and "en_us_anna" in job.error.message
    assert len(tts_requests(tts)) == before


def test_a_voice_blend_is_left_for_the_server_to_judge(tts: AppThread, speech_rt: RtFactory) -> None:
    job = speak(speech_rt(tts.url), "Hello.", voice="en_us_anna+en_us_ben")
    assert job.state is JobState.FAILED and job.error is not None
    assert "Voice 'en_us_anna+en_us_ben' not found" in job.error.message  # the server's own words (a 400)


def test_a_server_without_a_voice_list_takes_voice_names_as_typed(
    tts_unlisted: AppThread, speech_rt: RtFactory
) -> None:
    rt = speech_rt(tts_unlisted.url)
    assert speak(rt, "Over here.", voice="en_gb_dev").state is JobState.SUCCEEDED
    unnamed = speak(rt, "Over here.")
    assert unnamed.state is JobState.FAILED and unnamed.error is not None
    assert "Name a voice" in unnamed.error.message and "does not list its voices" in unnamed.error.message
    unknown = speak(rt, "Over here.", voice="nobody")
    assert unknown.state is JobState.FAILED and unknown.error is not None
    assert "Voice 'nobody' not found" in unknown.error.message  # the server's own 400
    listing = rt.submit("speech", "voices", {"refresh": True}).wait(10)
    assert listing.outputs.data == {"voices": [], "listed": False, "models": list(standin.MODELS)}


def test_an_empty_line_is_refused_before_any_request(tts: AppThread, speech_rt: RtFactory) -> None:
    before = len(tts_requests(tts))
    job = speak(speech_rt(tts.url), "   \n ")
    assert job.state is JobState.FAILED and job.error is not None and "the line is empty" in job.error.message
    assert len(tts_requests(tts)) == before


def test_health_lists_voices_and_the_model(tts: AppThread, speech_rt: RtFactory) -> None:
    health = speech_rt(tts.url).check_health("speech").result(10)
    assert health.ok and "6 voices" in health.message and "model tts-1" in health.message


# --- servers that are not (good) speech servers --------------------------------------------------------------------
def serve(routes: Callable[[web.Application], None]) -> AppThread:
    def make() -> web.Application:
        app = web.Application()
        routes(app)
        return app

    return AppThread(make).start()


def test_a_server_that_does_not_speak_says_so(speech_rt: RtFactory) -> None:
    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "chat-model"}]})

    server = serve(lambda app: app.router.add_get("/v1/models", models))
    try:
        rt = speech_rt(server.url)
        job = speak(rt, "Hello.", voice="alloy")
        assert job.state is JobState.FAILED and job.error is not None
        assert "does not speak: POST /v1/audio/speech answered 404" in job.error.message
        health = rt.check_health("speech").result(10)
        assert health.ok  # it answers with models; only speaking tells
    finally:
        server.stop()


def test_an_html_error_page_becomes_one_line_with_its_title(speech_rt: RtFactory) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>" * 3

    async def gateway(request: web.Request) -> web.Response:
        return web.Response(status=502, text=page, content_type="text/html")

    server = serve(lambda app: app.router.add_route("*", "/{tail:.*}", gateway))
    try:
        job = speak(speech_rt(server.url), "Hello.", voice="alloy")
        assert job.state is JobState.FAILED and job.error is not None
        assert f"HTTP 502 from 127.0.0.1:{server.port}: 502 Bad Gateway" in job.error.message
        assert "<" not in job.error.message
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"ok": true}', "application/json", "instead of audio"),
        (b"\x00garbage, not a wave" * 50, "audio/wav", "not a WAV file"),
        (b"", "audio/wav", "sent no audio"),
    ],
)
def test_what_is_not_audio_fails_and_leaves_no_file(
    speech_rt: RtFactory, body: bytes, content_type: str, expected: str
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type.split(";")[0])

    server = serve(lambda app: app.router.add_post("/v1/audio/speech", answer))
    try:
        rt = speech_rt(server.url)
        job = speak(rt, "Hello.", voice="alloy")
        assert job.state is JobState.FAILED and job.error is not None and expected in job.error.message
        folder = rt.output_root / "speech" / job.id
        assert not folder.exists() or not any(folder.iterdir())
    finally:
        server.stop()


def test_the_key_never_shows_even_when_the_server_echoes_it(speech_rt: RtFactory) -> None:
    key = "sk-speech-secret-0123456789"
    register_secret(key)

    async def echo(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        return web.json_response({"error": {"message": f"bad key {auth}"}}, status=401)

    server = serve(lambda app: app.router.add_route("*", "/{tail:.*}", echo))
    try:
        rt = speech_rt(server.url, key=key)
        job = speak(rt, "Hello.", voice="alloy")
        assert job.state is JobState.FAILED and job.error is not None
        assert "bad key Bearer ***" in job.error.message
        assert key not in job.error.model_dump_json() and key not in repr(job)
        health = rt.check_health("speech").result(10)
        assert not health.ok and key not in health.message
    finally:
        server.stop()


def test_a_redirect_is_not_followed(speech_rt: RtFactory) -> None:
    followed: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request.headers.get("Authorization", ""))
        return web.Response(body=b"RIFF")

    other = serve(lambda app: app.router.add_route("*", "/{tail:.*}", elsewhere))

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{other.url}/v1/audio/speech")

    server = serve(lambda app: app.router.add_post("/v1/audio/speech", redirect))
    try:
        job = speak(speech_rt(server.url, key="sk-redirect-secret-key"), "Hello.", voice="alloy")
        assert job.state is JobState.FAILED and job.error is not None and "not followed" in job.error.message
        assert followed == []
    finally:
        server.stop()
        other.stop()


def test_a_server_that_never_answers_fails_within_the_deadline(speech_rt: RtFactory) -> None:
    import asyncio
    import time

    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(body=b"")

    server = serve(lambda app: app.router.add_post("/v1/audio/speech", hang))
    try:
        rt = speech_rt(server.url, timeout=1.5)
        start = time.monotonic()
        job = speak(rt, "Hello.", voice="alloy")
        assert job.state is JobState.FAILED and job.error is not None and job.error.code == "timeout"
        assert time.monotonic() - start < 10
        assert rt.submit("speech", "voices", {}).wait(10).state is JobState.SUCCEEDED  # the backend still answers
    finally:
        server.stop()


def tts_requests(server: AppThread) -> list[dict[str, object]]:
    """The speech bodies the stand-in received (its app keeps them)."""
    runner = server._runner
    assert runner is not None
    return list(runner.app[standin.REQUESTS])
