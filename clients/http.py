"""HTTP plumbing every backend shares: one aiohttp session per server, error mapping, bounded reads, safe downloads.

Plain Python: this module never imports bpy. Sessions are created lazily *inside* the loop (aiohttp binds a session to
the loop it was made in) and reused for every call, so connections are pooled; ``close()`` releases them all.
Nothing the server sends is trusted: bodies are read up to a size limit, JSON that does not parse is a
:class:`ProtocolError`, and file names from a server are reduced to a safe base name inside the target folder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from ..runtime.backend import BackendClient, BackendConfig, NetworkPolicy
from ..runtime.errors import (
    BackendUnavailableError,
    MovieDirectorError,
    ProtocolError,
    RequestTimeoutError,
    error_for_status,
    redact,
)
from ..runtime.retry import RetryPolicy, call_with_retry

#: Largest JSON body we accept from any server (object_info of a big ComfyUI install is a few MB).
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Largest file we download (a long 4K video).
MAX_DOWNLOAD_BYTES = 8 * 1024 * 1024 * 1024
CHUNK = 256 * 1024


def error_from_exception(exc: BaseException, url: str, *, backend: str) -> MovieDirectorError:
    """The shared error for what aiohttp (or the OS) raised while talking to ``url``: timeouts, statuses, unreachable
    hosts; anything else is a protocol error. The exception's text is redacted (it may hold a URL with a key)."""
    if isinstance(exc, MovieDirectorError):
        return exc
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return RequestTimeoutError(f"{url} did not answer in time", backend=backend)
    if isinstance(exc, aiohttp.ClientResponseError):
        return error_for_status(exc.status, exc.message, backend=backend)
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError)):
        message = f"Cannot reach {url}: {type(exc).__name__} {redact(str(exc))}".strip()
        return BackendUnavailableError(message, backend=backend)
    return ProtocolError(f"Unexpected answer from {url}: {type(exc).__name__}", backend=backend)


class HttpBackendClient(BackendClient):
    """A backend client that talks HTTP to one or more servers, one pooled session per server."""

    def __init__(self, config: BackendConfig, network: NetworkPolicy | None = None) -> None:
        super().__init__(config, network)
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def headers(self) -> dict[str, str]:
        """Headers for every request; the API key goes here and nowhere else."""
        key = self.config.key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def session(self, base_url: str) -> aiohttp.ClientSession:
        """The pooled session for ``base_url`` (created on first use, on the running loop)."""
        self.network.check(base_url, self.name)
        session = self._sessions.get(base_url)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=32, limit_per_host=16, enable_cleanup_closed=False)
            session = aiohttp.ClientSession(
                base_url=base_url + "/",
                connector=connector,
                headers=self.headers(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None),
                raise_for_status=False,
            )
            self._sessions[base_url] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    def _error_from_exception(self, exc: BaseException, url: str) -> MovieDirectorError:
        return error_from_exception(exc, url, backend=self.name)

    async def request(
        self,
        method: str,
        base_url: str,
        path: str,
        *,
        json_body: Any = None,
        data: Any = None,
        params: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        deadline: float | None = None,
        expect_json: bool = True,
        max_bytes: int = MAX_JSON_BYTES,
    ) -> Any:
        """One HTTP call with retries and a total deadline. Returns parsed JSON (or bytes with ``expect_json=False``).

        Error statuses become the shared error hierarchy; the server's own message is kept in the error. ``data``
        may be a callable that builds the body afresh for every attempt (a streamed upload cannot be replayed).
        """
        policy = retry or self.config.retry

        async def once() -> Any:
            body = data() if callable(data) else data
            try:
                async with self.session(base_url).request(
                    method, path.lstrip("/"), json=json_body, data=body, params=params
                ) as resp:
                    body = await read_limited(resp, max_bytes, self.name)
                    if resp.status >= 400:
                        raise self.status_error(resp.status, body, resp.headers)
                    if not expect_json:
                        return body
                    if not body:
                        return None
                    try:
                        return json.loads(body)
                    except ValueError as exc:
                        raise ProtocolError(f"{path} answered with text that is not JSON", backend=self.name) from exc
            except MovieDirectorError:
                raise
            except Exception as exc:
                raise self._error_from_exception(exc, base_url) from exc

        return await call_with_retry(once, policy, backend=self.name, deadline=deadline)

    def status_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MovieDirectorError:
        """Map an error answer; subclasses override to read their server's error shape."""
        message = f"the server answered {status}"
        details: dict[str, Any] = {}
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            details = parsed
            err = parsed.get("error")
            if isinstance(err, dict) and isinstance(err.get("message"), str):
                message = err["message"]
            elif isinstance(err, str):
                message = err
        elif body:
            message = body[:200].decode("utf-8", "replace")
        return error_for_status(status, message, backend=self.name, headers=dict(headers), details=details)


async def read_limited(resp: aiohttp.ClientResponse, max_bytes: int, backend: str) -> bytes:
    """Read a whole body, failing cleanly once it exceeds ``max_bytes``."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise ProtocolError(
            f"The answer is too large ({resp.content_length} bytes, limit {max_bytes})", backend=backend
        )
    chunks = []
    size = 0
    async for chunk in resp.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise ProtocolError(f"The answer is larger than the {max_bytes}-byte limit", backend=backend)
        chunks.append(chunk)
    return b"".join(chunks)


_UNSAFE = re.compile(r"[^\w.\- ()+,=@]")


def safe_filename(name: str, *, default: str = "output") -> str:
    """Reduce a server-supplied name to a plain base name: no folders, drive letters, NULs or control characters.

    >>> safe_filename("../../etc/passwd")
    'passwd'
    >>> safe_filename("C:\\\\Windows\\\\x.png")
    'x.png'
    >>> safe_filename("..")
    'output'
    """
    name = unicodedata.normalize("NFKC", name).replace("\x00", "")
    name = re.split(r"[\\/]", name)[-1]
    name = name.split(":")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name or set(name) <= {"."}:
        return default
    if len(name) > 120 or len(name.encode("utf-8")) > 200:
        # File systems cap a name at 255 *bytes*; keep a short extension, cut the stem by characters and bytes.
        stem, dot, ext = name.rpartition(".")
        if not dot or len(ext) > 16:
            stem, dot, ext = name, "", ""
        stem = stem[: 110 - len(ext)] if dot else stem[:120]
        while len((stem + dot + ext).encode("utf-8")) > 200:
            stem = stem[:-1]
        name = stem + dot + ext
    return name


def safe_path(folder: Path, name: str) -> Path:
    """A path for ``name`` that is guaranteed to be inside ``folder`` (names are sanitised, never trusted).

    The sanitised name has no separators and is never ``.`` or ``..``, so joining it cannot leave the folder; the
    check below says so explicitly. Downloads replace a name atomically, so a link already sitting at that name is
    replaced, never followed.
    """
    path = folder / safe_filename(name)
    if path.parent != folder or path.name in ("", ".", ".."):
        raise ProtocolError(f"Refused to write {name!r} outside the output folder")
    return path


def unique_path(path: Path) -> Path:
    """``path`` itself, or ``name (1).ext`` etc. if a different file already has that name."""
    if not path.exists():
        return path
    for i in range(1, 10_000):
        candidate = path.with_name(f"{path.stem} ({i}){path.suffix}")
        if not candidate.exists():
            return candidate
    raise ProtocolError(f"Too many files named like {path.name}")


async def download_to(
    resp: aiohttp.ClientResponse,
    target: Path,
    *,
    backend: str,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> tuple[int, str]:
    """Stream a response to ``target`` through a temporary file in the same folder, renamed into place only when
    complete (and of the announced size). Returns ``(size, sha256)``."""
    expected = resp.content_length
    if expected is not None and expected > max_bytes:
        raise ProtocolError(f"The file is too large ({expected} bytes)", backend=backend)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in resp.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ProtocolError(f"The file is larger than the {max_bytes}-byte limit", backend=backend)
                digest.update(chunk)
                fh.write(chunk)
        if expected is not None and size != expected:
            raise BackendUnavailableError(
                f"The download of {target.name} was cut off ({size} of {expected} bytes)", backend=backend
            )
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return size, digest.hexdigest()


def guess_media_type(name: str, fallback: str = "application/octet-stream") -> str:
    import mimetypes

    ext = Path(name).suffix.lower()
    known = {".webp": "image/webp", ".webm": "video/webm", ".flac": "audio/flac", ".mp4": "video/mp4"}
    return known.get(ext) or mimetypes.guess_type(name)[0] or fallback
