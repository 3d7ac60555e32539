"""Reading what a Wan2GP MCP server says: tool results of either SDK shape, tool errors in words, tool flavours,
snapshots that do not parse, and previews that are not images."""

from __future__ import annotations

import base64
import io

import pytest
from mcp import types
from movie_director.clients.wan2gp.mcp_protocol import (
    JobSnapshot,
    Toolset,
    preview_image,
    tool_error,
    tool_payload,
)
from movie_director.runtime.errors import InvalidRequestError, NotFoundError, ProtocolError, ServerError
from PIL import Image

URL = "http://127.0.0.1:7866/mcp"


def _tool(name: str, **props: dict) -> types.Tool:  # type: ignore[type-arg]
    return types.Tool(name=name, inputSchema={"type": "object", "properties": props})


def test_tool_results_structured_wrapped_or_as_text() -> None:
    snap = {"job_id": "a", "done": False}
    assert tool_payload(types.CallToolResult(content=[], structuredContent=snap)) == (False, snap, "")
    wrapped = types.CallToolResult(content=[], structuredContent={"result": [1, 2]})
    assert tool_payload(wrapped)[1] == [1, 2]
    texts = [types.TextContent(type="text", text='{"m": 1}'), types.TextContent(type="text", text='{"m": 2}')]
    assert tool_payload(types.CallToolResult(content=texts))[1] == [{"m": 1}, {"m": 2}]
    message = types.TextContent(type="text", text="Error executing tool x: no")
    failed = types.CallToolResult(content=[message], isError=True)
    assert tool_payload(failed) == (True, None, "Error executing tool x: no")


def test_tool_errors_become_clear_errors() -> None:
    busy = tool_error("wangp_generate", "Error executing tool wangp_generate: WanGP session already has a generation "
                      "in progress", url=URL, backend="wan2gp")  # fmt: skip
    assert isinstance(busy, ServerError) and busy.retryable and "busy" in busy.message
    lost = tool_error("wangp_get_job", "Error executing tool wangp_get_job: 'Unknown WanGP job_id: 12'", url=URL,
                      backend="wan2gp")  # fmt: skip
    assert isinstance(lost, NotFoundError) and "'" not in lost.message.split(":")[-1][:2]
    model = tool_error("wangp_generate", "Error executing tool wangp_generate: Unknown model type: x9", url=URL,
                       backend="wan2gp", model="x9")  # fmt: skip
    assert isinstance(model, InvalidRequestError) and "'x9'" in model.message


def test_flavours_are_read_from_the_tool_list() -> None:
    main = Toolset.from_tools(
        [_tool("wangp_generate"), _tool("wangp_get_job"), _tool("wangp_create_gallery_download", gallery_id={})],
        URL,
        "wan2gp",
    )
    assert main.media_key == "gallery_id"
    assert main.route("get_job", {"job_id": "1"}) == ("wangp_get_job", {"job_id": "1"})
    media = Toolset.from_tools(
        [_tool("wangp_generate"), _tool("wangp_get_job"), _tool("wangp_create_gallery_download", media_id={})],
        URL,
        "wan2gp",
    )
    assert media.media_key == "media_id"
    session = Toolset.from_tools(
        [_tool("wangp_session", action={"enum": ["generate", "get_job"]}, gallery_id={})], URL, "wan2gp"
    )
    assert session.route("generate", {"source": {}}) == ("wangp_session", {"action": "generate", "source": {}})
    assert not session.has("cancel_job")
    with pytest.raises(ProtocolError, match="wangp_generate, wangp_get_job") as err:
        Toolset.from_tools([_tool("search_docs")], URL, "wan2gp")
    assert "search_docs" in str(err.value)


def test_snapshots_that_do_not_parse_are_protocol_errors() -> None:
    for bad in (None, [], {"done": True}, {"job_id": "a", "events": "lots"}, {"job_id": "a", "result": {"errors": 5}}):
        with pytest.raises(ProtocolError, match="cannot be read"):
            JobSnapshot.parse(bad, url=URL, backend="wan2gp")
    ok = JobSnapshot.parse({"job_id": "a", "events": [{"kind": "progress", "data": {"x": 1}}], "extra": 1}, url=URL,
                           backend="wan2gp")  # fmt: skip
    assert ok.events[0].kind == "progress" and ok.result is None


def test_previews_are_taken_only_when_they_are_images() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    png = base64.b64encode(buf.getvalue()).decode()
    assert preview_image({"image": png}) == (buf.getvalue(), "image/png")
    assert preview_image({"image": "data:image/png;base64," + png}) is not None
    assert preview_image({"image": base64.b64encode(b"<script>").decode()}) is None
    assert preview_image({"image": "%%%not base64"}) is None
    assert preview_image({"has_image_preview": True}) is None
    assert preview_image("text") is None
