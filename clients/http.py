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
import threading
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ..runtime.backend import BackendClient, BackendConfig, NetworkPolicy
from ..runtime.errors import (
    AuthenticationError,
    BackendUnavailableError,
    InvalidRequestError,
    MovieDirectorError,
    ProtocolError,
    RequestTimeoutError,
    error_for_status,
    excerpt,
    local_write_error,
    redact,
)
from ..runtime.partials import PART_PREFIX, remove_partials
from ..runtime.retry import RetryPolicy, call_with_retry
from ..runtime.urls import same_origin

#: Largest JSON body we accept from any server (object_info of a big ComfyUI install is a few MB).
MAX_JSON_BYTES = 64 * 1024 * 1024
#: Largest file we download (a long 4K video).
MAX_DOWNLOAD_BYTES = 8 * 1024 * 1024 * 1024
#: Largest total one job may download, all its files together (read at call time, so a test may lower it).
MAX_JOB_BYTES = 16 * 1024 * 1024 * 1024
CHUNK = 256 * 1024
#: Longest wait for a connection to a server.
CONNECT_TIMEOUT = 10.0
#: Longest silence before an answer starts (the first-byte deadline) or between two pieces of it, for every request
#: that does not ask for longer (a server that computes before answering passes its own).
READ_TIMEOUT = 60.0
#: Statuses that say the server did not act on a request, so even a non-idempotent one may be sent again.
NOT_PROCESSED = frozenset({408, 429, 503})

#: Failures that prove a request never reached the server (nothing to fear from sending it again).
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)

Middleware = Callable[[aiohttp.ClientRequest, Any], Awaitable[aiohttp.ClientResponse]]


def check_hop(url: str, server: str, network: NetworkPolicy | None, backend: str) -> None:
    """The rule for every request a client sends, redirect hops included: it goes to ``server``'s own origin and is
    allowed by the online-access policy. A client talks only to the server it was configured with, so a redirect
    elsewhere is refused before connecting: no key goes there and no body from there is saved as an output."""
    if not same_origin(url, server):
        other = urlsplit(url).netloc or url
        raise ProtocolError(
            f"{server} sent Movie Director to another server ({redact(other)[:200]}); refused",
            backend=backend,
            hint="Movie Director only talks to the server set in its preferences: set that server's own "
            "address there if it has moved.",
        )
    if network is not None:
        network.check(url, backend)


def hop_guard(server: str, network: NetworkPolicy, backend: str) -> Middleware:
    """:func:`check_hop` as an aiohttp middleware (aiohttp runs middlewares once per hop of a redirect chain)."""

    async def guard(request: aiohttp.ClientRequest, handler: Any) -> aiohttp.ClientResponse:
        check_hop(str(request.url), server, network, backend)
        response: aiohttp.ClientResponse = await handler(request)
        return response

    return guard


def guarded_session(
    server: str,
    network: NetworkPolicy,
    backend: str,
    *,
    headers: Mapping[str, str] | None = None,
    base: bool = True,
    read_timeout: float | None = READ_TIMEOUT,
) -> aiohttp.ClientSession:
    """The one way we open an aiohttp session: pooled, bounded connect and first-byte deadlines, and
    :func:`hop_guard` on every request. ``base`` makes paths relative to ``server``."""
    network.check(server, backend)
    return aiohttp.ClientSession(
        base_url=server.rstrip("/") + "/" if base else None,
        connector=aiohttp.TCPConnector(limit=32, limit_per_host=16),
        headers=dict(headers or {}),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout),
        raise_for_status=False,
        middlewares=(hop_guard(server, network, backend),),
    )


def answer_within(seconds: float | None) -> aiohttp.ClientTimeout:
    """Per-request timeouts for a server that computes before it answers (a synchronous conversion): the usual
    connect deadline, and ``seconds`` for its first byte instead of :data:`READ_TIMEOUT`."""
    return aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=seconds)


def clean_key(key: str | None, backend: str) -> str | None:
    """An API key fit for an HTTP header: surrounding whitespace (a pasted newline) removed; a key with characters
    a header cannot carry is refused here, as a bad key, instead of as a confusing error from the HTTP library."""
    if key is None:
        return None
    key = key.strip()
    if not key:
        return None
    bad = next((ch for ch in key if not (" " <= ch <= "~")), None)
    if bad is not None:
        what = "a line break" if bad in "\r\n" else "a control character" if ord(bad) < 32 else "a non-ASCII character"
        raise AuthenticationError(
            f"The API key contains {what}, which an HTTP header cannot carry",
            backend=backend,
            hint="Paste the key again in the Movie Director preferences (only the key itself).",
        )
    return key


def require_file(path: str | Path, *, backend: str = "", what: str = "input file") -> Path:
    """``path`` if it is a readable file; otherwise an :class:`InvalidRequestError` naming it (before anything is
    sent, so a typo never reaches a server or ends as "unexpected error")."""
    file = Path(path).expanduser()
    try:
        if file.is_file() and os.access(file, os.R_OK):
            return file
        reason = "is a folder" if file.is_dir() else "does not exist" if not file.exists() else "cannot be read"
    except OSError as exc:
        reason = f"cannot be read ({exc.strerror or type(exc).__name__})"
    raise InvalidRequestError(f"The {what} {file} {reason}", backend=backend, hint="Choose another file.")


def loads(body: bytes | str, *, what: str, backend: str) -> Any:
    """``json.loads`` for anything a server sent: text that is not JSON, or JSON nested so deeply that Python's
    parser gives up (a ``RecursionError``), is a :class:`ProtocolError` naming ``what``."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
        raise ProtocolError(f"{what} is {why}", backend=backend) from None


def error_from_exception(exc: BaseException, url: str, *, backend: str) -> MovieDirectorError:
    """The shared error for what aiohttp (or the OS) raised while talking to ``url``: timeouts, statuses, unreachable
    hosts; anything else is a protocol error. The exception's text is redacted (it may hold a URL with a key)."""
    if isinstance(exc, MovieDirectorError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return BackendUnavailableError(
            f"{url} did not accept a connection within {CONNECT_TIMEOUT:g} s", backend=backend
        )
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return RequestTimeoutError(f"{url} stopped answering (nothing received in time)", backend=backend)
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
        key = clean_key(self.config.key(), self.name)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def session(self, base_url: str) -> aiohttp.ClientSession:
        """The pooled session for ``base_url`` (created on first use, on the running loop); every request it sends,
        redirect hops included, stays on that server (:func:`hop_guard`)."""
        self.network.check(base_url, self.name)
        session = self._sessions.get(base_url)
        if session is None or session.closed:
            session = guarded_session(base_url, self.network, self.name, headers=self.headers())
            self._sessions[base_url] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    def transport_error(self, exc: BaseException, url: str) -> MovieDirectorError:
        """An exception from talking to ``url`` (aiohttp's, a timeout, an OSError) as the shared error hierarchy."""
        return self._error_from_exception(exc, url)

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
        read_timeout: float | None = READ_TIMEOUT,
        idempotent: bool | None = None,
    ) -> Any:
        """One HTTP call with retries and a total deadline. Returns parsed JSON (or bytes with ``expect_json=False``).

        Error statuses become the shared error hierarchy; the server's own message is kept in the error. ``data``
        may be a callable that builds the body afresh for every attempt (a streamed upload cannot be replayed).
        ``read_timeout`` bounds the wait for the answer's first byte (and any silence after it).

        A request that is not idempotent (``POST``/``PATCH`` unless the caller says otherwise) is sent again only
        when the failure proves the server did not act on it: no connection was made, or it answered 408, 429 or
        503. An answer lost after the request went out is never "retried" into running the work twice.
        """
        policy = retry or self.config.retry
        if idempotent is None:
            idempotent = method.upper() not in ("POST", "PATCH")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout)

        async def once() -> Any:
            body = data() if callable(data) else data
            try:
                async with self.session(base_url).request(
                    method, path.lstrip("/"), json=json_body, data=body, params=params, timeout=timeout
                ) as resp:
                    body = await read_limited(resp, max_bytes, self.name)
                    if resp.status >= 400:
                        error = self.status_error(resp.status, body, resp.headers)
                        if not idempotent and resp.status not in NOT_PROCESSED:
                            error.retryable = False
                        raise error
                    if not expect_json:
                        return body
                    if not body:
                        return None
                    return loads(body, what=f"The answer to {path}", backend=self.name)
            except MovieDirectorError:
                raise
            except Exception as exc:
                error = self._error_from_exception(exc, base_url)
                if not idempotent and error.retryable and not isinstance(exc, _NOT_SENT):
                    error.retryable = False  # it may have arrived: sending it again could do the work twice
                raise error from exc

        return await call_with_retry(once, policy, backend=self.name, deadline=deadline)

    def status_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MovieDirectorError:
        """Map an error answer; subclasses override to read their server's error shape."""
        message = f"the server answered {status}"
        details: dict[str, Any] = {}
        try:
            parsed = loads(body, what="", backend=self.name) if body else None
        except ProtocolError:
            parsed = None
        if isinstance(parsed, dict):
            details = parsed
            err = parsed.get("error")
            if isinstance(err, dict) and isinstance(err.get("message"), str):
                message = err["message"]
            elif isinstance(err, str):
                message = err
        elif body:
            message = excerpt(body, 200)  # redact first, then cut: a key cut in half would survive the other order
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


class _Inflight:
    """Downloads into each job folder running now in this process, and their bytes so far (for the per-job cap)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count: dict[Path, int] = {}
        self._bytes: dict[Path, int] = {}

    def begin(self, folder: Path) -> bool:
        """One more download into ``folder``; True if it is the only one (any ``.part-*`` there is then stale)."""
        with self._lock:
            self._count[folder] = self._count.get(folder, 0) + 1
            return self._count[folder] == 1

    def add(self, folder: Path, size: int) -> int:
        """Count ``size`` more bytes for ``folder``; returns its in-flight total."""
        with self._lock:
            total = self._bytes[folder] = self._bytes.get(folder, 0) + size
            return total

    def end(self, folder: Path, size: int) -> None:
        with self._lock:
            self._bytes[folder] = self._bytes.get(folder, 0) - size
            self._count[folder] = self._count.get(folder, 1) - 1
            if self._count[folder] <= 0:
                self._count.pop(folder, None)
                self._bytes.pop(folder, None)


_INFLIGHT = _Inflight()


def folder_bytes(folder: Path) -> int:
    """Bytes of the finished files in a job folder (downloads in flight are counted as they run, not here)."""
    total = 0
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(PART_PREFIX):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
    except OSError:
        return 0
    return total


async def download_to(
    resp: aiohttp.ClientResponse,
    target: Path,
    *,
    backend: str,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    max_job_bytes: int | None = None,
    digest: bool = False,
) -> tuple[int, str]:
    """Stream a response to ``target`` through a temporary file in the same folder, renamed into place only when
    complete (and of the announced size). Returns ``(size, sha256)``, the hash only when ``digest`` asks for it (about
    0.7 ms of the loop's time per megabyte here: a 300 MB video's hash is not worth taking when nobody reads it).

    Two caps: ``max_bytes`` for this file, and ``max_job_bytes`` (default :data:`MAX_JOB_BYTES`) for everything in
    the target folder, which is one job's folder: its finished files plus every download into it in flight. Writing
    errors on this computer (a full disk) are an :class:`OutputFolderError`, never "cannot reach the server", and
    are not retried."""
    folder = target.parent
    job_cap = MAX_JOB_BYTES if max_job_bytes is None else max_job_bytes
    expected = resp.content_length
    if expected is not None and expected > max_bytes:
        raise ProtocolError(f"The file is too large ({expected} bytes)", backend=backend)
    if _INFLIGHT.begin(folder):
        remove_partials(folder)  # left by a process killed mid-download: this job is being resumed
    hasher = hashlib.sha256() if digest else None
    size = counted = 0
    try:
        already = folder_bytes(folder)
        tmp_name = os.path.join(folder, f"{PART_PREFIX}{uuid.uuid4().hex}")  # as mkstemp, at a tenth of its cost
        fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    except OSError as exc:
        _INFLIGHT.end(folder, 0)
        raise local_write_error(exc, str(folder), backend=backend) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in resp.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ProtocolError(f"The file is larger than the {max_bytes}-byte limit", backend=backend)
                counted += len(chunk)
                if already + _INFLIGHT.add(folder, len(chunk)) > job_cap:
                    raise ProtocolError(
                        f"The job's files together are larger than its {job_cap}-byte limit", backend=backend
                    )
                if hasher is not None:
                    hasher.update(chunk)
                try:
                    fh.write(chunk)
                except OSError as exc:
                    raise local_write_error(exc, str(folder), backend=backend) from None
            try:
                fh.flush()
            except OSError as exc:
                raise local_write_error(exc, str(folder), backend=backend) from None
        if expected is not None and size != expected:
            raise BackendUnavailableError(
                f"The download of {target.name} was cut off ({size} of {expected} bytes)", backend=backend
            )
        try:
            os.replace(tmp_name, target)
        except OSError as exc:
            raise local_write_error(exc, str(folder), backend=backend) from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    finally:
        _INFLIGHT.end(folder, counted)
    return size, hasher.hexdigest() if hasher is not None else ""


def guess_media_type(name: str, fallback: str = "application/octet-stream") -> str:
    import mimetypes

    ext = Path(name).suffix.lower()
    known = {".webp": "image/webp", ".webm": "video/webm", ".flac": "audio/flac", ".mp4": "video/mp4"}
    return known.get(ext) or mimetypes.guess_type(name)[0] or fallback
