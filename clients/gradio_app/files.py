"""Files in a Gradio app's answer: found wherever they sit in the output, downloaded safely into one folder.

Plain Python: this module never imports bpy. Gradio marks a file as ``{"path", "url", "size", "orig_name",
"mime_type", "is_stream", "meta": {"_type": "gradio.FileData"}}``. The download URL is built from the app's own
address (as gradio_client does), never taken from a redirect, checked against Blender's online-access setting, bounded
in size and written under a sanitised, unique name inside the target folder only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import aiohttp
from yarl import URL

from ...runtime.backend import NetworkPolicy
from ...runtime.errors import BackendUnavailableError, MovieDirectorError, ProtocolError, error_for_status
from ...runtime.jobs import OutputFile
from ..http import MAX_DOWNLOAD_BYTES, download_to, guess_media_type, safe_filename, safe_path, unique_path

#: Nesting depth we follow into an app's output before calling it malformed.
MAX_DEPTH = 32


def is_file_data(value: Any) -> bool:
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        return False
    meta = value.get("meta")
    return (isinstance(meta, dict) and meta.get("_type") == "gradio.FileData") or "orig_name" in value


async def replace_files(value: Any, fetch: Callable[[dict[str, Any], str], Awaitable[str]], where: str = "0") -> Any:
    """``value`` with every FileData replaced by ``await fetch(filedata, where)`` (a local path)."""

    async def walk(item: Any, where: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ProtocolError("The app's answer is nested too deeply to read")
        if is_file_data(item):
            return await fetch(item, where)
        if isinstance(item, dict):
            return {k: await walk(v, where, depth + 1) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            out = [await walk(v, f"{where}.{i}" if depth else str(i), depth + 1) for i, v in enumerate(item)]
            return tuple(out) if isinstance(item, tuple) else out
        return item

    return await walk(value, where, 0)


def file_url(data: dict[str, Any], root: str) -> str:
    """Where a FileData is served: ``<root>file=<path>``; streams at their own URL on the same server."""
    url = data.get("url")
    if data.get("is_stream") and isinstance(url, str) and url:
        full = urljoin(root, url)
        if urlsplit(full)[:2] != urlsplit(root)[:2]:
            raise ProtocolError(f"The app names a stream on another server ({urlsplit(full).hostname})")
        return full
    return root + "file=" + quote(str(data["path"]), safe="/")


async def download_file(
    session: aiohttp.ClientSession,
    data: dict[str, Any],
    *,
    root: str,
    folder: Path,
    network: NetworkPolicy,
    backend: str,
    headers: dict[str, str] | None = None,
    where: str = "",
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> OutputFile:
    """Fetch one FileData into ``folder`` (absolute) and describe it."""
    url = file_url(data, root)
    network.check(url, backend)
    announced = data.get("size")
    if isinstance(announced, int) and announced > max_bytes:
        raise ProtocolError(f"The app's file is too large ({announced} bytes, limit {max_bytes})", backend=backend)
    raw_name = data.get("orig_name") if isinstance(data.get("orig_name"), str) else None
    name = safe_filename(raw_name or Path(str(data["path"])).name or "output")
    folder.mkdir(parents=True, exist_ok=True)
    target = unique_path(safe_path(folder, name))
    try:
        async with session.get(URL(url, encoded=True), headers=headers, allow_redirects=False) as resp:
            if resp.status >= 300:
                raise error_for_status(resp.status, f"Downloading {name} failed ({resp.status})", backend=backend)
            size, _ = await download_to(resp, target, backend=backend, max_bytes=max_bytes)
    except MovieDirectorError:
        raise
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        message = f"Downloading {name} from {root} failed: {type(exc).__name__}"
        raise BackendUnavailableError(message, backend=backend) from exc
    mime = data.get("mime_type")
    media_type = mime if isinstance(mime, str) and "/" in mime else guess_media_type(target.name)
    return OutputFile(path=str(target), media_type=media_type, name=target.name, size=size, node=where)
