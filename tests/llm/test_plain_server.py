"""Any OpenAI-compatible server, not only LiteLLM: a plain aiohttp server with ``/v1/models`` and chat completions
and none of LiteLLM's routes. Test Connection, the configured model, and error pages in words."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from llm_support import Server, completion
from movie_director.runtime import JobState, Runtime

MakeRt = Callable[..., Runtime]
Serve = Callable[..., Server]


def openai_like(models: list[str]) -> Callable[[web.Request], object]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == "/v1/models":
            return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in models]})
        if request.path == "/v1/chat/completions":
            body = await request.json()  # read again: aiohttp keeps the body the server wrapper read
            return web.json_response(completion(f"answered by {body.get('model')}"))
        return web.Response(status=404, text="404: Not Found")

    return handle


def test_test_connection_works_without_litellms_routes(serve: Serve, make_rt: MakeRt) -> None:
    server = serve(openai_like(["qwen3-8b", "llama-3.1"]))
    info = make_rt(server.url).check_health("llm").result(10)
    assert info.ok and info.message == "2 models: qwen3-8b, llama-3.1" and info.details["server"] == "openai-compatible"


def test_without_a_configured_model_the_servers_first_is_used(serve: Serve, make_rt: MakeRt) -> None:
    server = serve(openai_like(["qwen3-8b", "llama-3.1"]))
    rt = make_rt(server.url, model="")
    job = rt.submit("llm", "chat", {"prompt": "hello"}).wait(10)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.text == "answered by qwen3-8b"
    configured = make_rt(server.url, model="llama-3.1").submit("llm", "chat", {"prompt": "hello"}).wait(10)
    assert configured.outputs.text == "answered by llama-3.1"


def test_an_html_error_page_becomes_its_title_never_markup(serve: Serve, make_rt: MakeRt) -> None:
    page = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>"
        "\r\n<hr><center>nginx/1.27.0</center>\r\n</body>\r\n</html>\r\n"
    )

    async def gateway(request: web.Request) -> web.Response:
        return web.Response(status=502, text=page, content_type="text/html")

    server = serve(gateway)
    rt = make_rt(server.url)
    job = rt.submit("llm", "chat", {"prompt": "hello"}).wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    port = server.url.rsplit(":", 1)[1]
    assert f"HTTP 502 from 127.0.0.1:{port}: 502 Bad Gateway" in job.error.message
    assert "<" not in job.error.message and "nginx" not in job.error.message
    info = rt.check_health("llm").result(10)
    assert not info.ok and "HTTP 502 from" in info.message and "<" not in info.message


def test_a_plain_servers_501_page_is_read_as_words(serve: Serve, make_rt: MakeRt) -> None:
    async def unsupported(request: web.Request) -> web.Response:
        html = "<!DOCTYPE html><html><head><title>Error response</title></head><body><h1>Error 501</h1></body></html>"
        return web.Response(status=501, text=html, content_type="text/html")

    server = serve(unsupported)
    job = make_rt(server.url).submit("llm", "chat", {"prompt": "hello"}).wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert f"HTTP 501 from 127.0.0.1:{server.url.rsplit(':', 1)[1]}: Error response" in job.error.message
    assert "<" not in job.error.message
