"""One long-lived MCP client session per Wan2GP server, built on the official ``mcp`` SDK (1.x or 2.x).

Plain Python: this module never imports bpy. Wire facts: ``shared/protocols/wan2gp.md`` (Streamable HTTP, stateless
JSON mode, ``/mcp`` -> ``/mcp/`` 307). The SDK's transport and session live in anyio task groups that must be entered
and left by one task, so one background *owner* task per server holds them open; calls from any job task go through
the session's memory streams. A call races the owner task and a "broken transport" signal as well as our own deadline,
so a dead server, a malformed answer or an SDK that forgets a pending request can never hang a job. ``close()`` stops
the owner and waits for it: no task, thread or socket is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx

from ...runtime.errors import (
    BackendUnavailableError,
    MovieDirectorError,
    ProtocolError,
    RequestTimeoutError,
    error_for_status,
    redact,
)
from ..http import check_hop
from ..site_paths import prepare_for_mcp

log = logging.getLogger(__name__)
T = TypeVar("T")

_NO_ENDPOINT = "Start Wan2GP with --mcp --mcp-transport streamable-http and use its URL ending in /mcp."
#: Largest JSON-RPC answer accepted (a job snapshot with its events is a few KB; a model list a few hundred).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


class AnswerTooLarge(Exception):
    """An HTTP answer from the MCP endpoint went over :data:`MAX_MESSAGE_BYTES`."""


class _LimitedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > self._limit:
                raise AnswerTooLarge(f"the server's answer is larger than the {self._limit}-byte limit")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _LimitedTransport(httpx.AsyncBaseTransport):
    """httpx transport that refuses answers above a size limit (the SDK reads whole bodies into memory), and that
    remembers Wan2GP's ``/mcp`` -> ``/mcp/`` redirect so that only the first call pays for it."""

    def __init__(self, limit: int, server: str = "", backend: str = "wan2gp") -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._limit = limit
        self._server = server
        self._backend = backend
        self._moved: dict[str, httpx.URL] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        asked = str(request.url)
        if asked in self._moved:
            request.url = self._moved[asked]
        if self._server:
            check_hop(str(request.url), self._server, None, self._backend)  # every hop stays on the server
        response = await self._inner.handle_async_request(request)
        if response.status_code in (307, 308) and "location" in response.headers:
            target = request.url.join(response.headers["location"])
            same = (target.scheme, target.host, target.port) == (request.url.scheme, request.url.host, request.url.port)
            if same and target.path.rstrip("/") == request.url.path.rstrip("/") and not target.query:
                self._moved[asked] = target  # only a trailing-slash move on the same origin is remembered
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > self._limit:
            await response.aclose()
            raise AnswerTooLarge(f"the server's answer is too large ({length} bytes, limit {self._limit})")
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_LimitedStream(response.stream, self._limit),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def leaf_errors(exc: BaseException) -> Iterator[BaseException]:
    """The real errors inside (nested) exception groups, which anyio task groups raise."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaf_errors(inner)
    else:
        yield exc


def _http_client(headers: dict[str, str], limit: int, server: str = "") -> httpx.AsyncClient:
    # follow_redirects: SDKs before 1.2x followed Wan2GP's /mcp -> /mcp/ 307 only through the client's own setting.
    return httpx.AsyncClient(
        headers=headers,
        timeout=httpx.Timeout(30.0, connect=10.0),
        follow_redirects=True,
        transport=_LimitedTransport(limit, server),
    )


@contextlib.asynccontextmanager
async def _open_streams(url: str, headers: dict[str, str], limit: int) -> AsyncIterator[tuple[Any, Any]]:
    """(read, write) streams from whichever Streamable HTTP client this ``mcp`` generation has."""
    import mcp.client.streamable_http as sdk

    new_client = getattr(sdk, "streamable_http_client", None)  # 1.2x and 2.x
    if new_client is not None:
        async with _http_client(headers, limit, url) as http, new_client(url, http_client=http) as streams:
            yield streams[0], streams[1]  # 1.x yields a third item (get_session_id), 2.x does not
        return
    from mcp.client.streamable_http import streamablehttp_client  # older 1.x (Wan2GP pins 1.10.1)

    def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx.AsyncClient:
        return _http_client(dict(headers or {}), limit, url)

    async with streamablehttp_client(url, headers=headers, httpx_client_factory=factory) as streams:
        yield streams[0], streams[1]


def _attr(obj: Any, *names: str) -> Any:
    """A field under its 1.x (camelCase) or 2.x (snake_case) name."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


class McpSession:
    """A reconnecting MCP session with one server. Every method raises only the shared error hierarchy."""

    def __init__(
        self,
        url: str,
        *,
        backend: str,
        headers: dict[str, str] | None = None,
        connect_timeout: float = 15.0,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.url = url
        self.backend = backend
        self.headers = dict(headers or {})
        self.connect_timeout = connect_timeout
        self.max_bytes = max_bytes
        self.server_name = ""
        self.server_version = ""
        self._session: Any = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._broken: asyncio.Future[BaseException] | None = None
        self._failure: BaseException | None = None
        self._ready: asyncio.Future[Any] | None = None
        self._connecting = asyncio.Lock()
        self._closed = False

    # --- life cycle -------------------------------------------------------------------------------------------------
    async def _ensure(self) -> tuple[Any, asyncio.Task[None], asyncio.Future[BaseException]]:
        async with self._connecting:
            if self._closed:
                raise BackendUnavailableError(f"The connection to {self.url} is closed", backend=self.backend)
            owner = self._owner
            if owner is None or owner.done() or self._session is None:
                await self._stop_owner()
                loop = asyncio.get_running_loop()
                ready: asyncio.Future[Any] = loop.create_future()
                ready.add_done_callback(_retrieve)  # a handshake nobody waits for any more must not log
                self._ready = ready
                self._stop = asyncio.Event()
                self._broken = loop.create_future()
                self._failure = None
                owner = self._owner = loop.create_task(self._own(ready, self._stop), name=f"mcp-{self.url}")
                try:
                    async with asyncio.timeout(self.connect_timeout):
                        await asyncio.shield(ready)
                except TimeoutError:
                    await self._stop_owner()
                    raise RequestTimeoutError(
                        f"Wan2GP at {self.url} did not answer the MCP handshake within {self.connect_timeout:.0f} s",
                        backend=self.backend,
                    ) from None
                except MovieDirectorError:
                    await self._stop_owner()
                    raise
            assert self._broken is not None
            return self._session, owner, self._broken

    async def _own(self, ready: asyncio.Future[Any], stop: asyncio.Event) -> None:
        """The owner task: enters the SDK's transport and session, and leaves them in the same task."""
        prepare_for_mcp()
        from mcp import ClientSession

        try:
            async with (
                _open_streams(self.url, self.headers, self.max_bytes) as (read, write),
                ClientSession(read, write, message_handler=self._on_message) as session,
            ):
                init = await session.initialize()
                info = _attr(init, "serverInfo", "server_info")
                self.server_name = str(_attr(info, "name") or "")
                self.server_version = str(_attr(info, "version") or "")
                self._session = session
                if not ready.done():
                    ready.set_result(session)
                await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except BaseException as exc:
            self._failure = exc
            if not ready.done():
                ready.set_exception(self.error_from(exc, "connecting"))
        finally:
            self._session = None
            broken = self._broken
            if broken is not None and not broken.done():
                broken.set_result(self._failure or ConnectionError("the MCP session ended"))

    async def _on_message(self, message: Any) -> None:
        """The SDK hands transport failures (a body that is not JSON-RPC, an answer too large) to this handler
        instead of to the waiting request: fail the in-flight calls at once and reconnect on the next call."""
        if isinstance(message, Exception):
            log.info("wan2gp MCP transport error from %s: %r", self.url, message)
            self._failure = message
            if self._ready is not None and not self._ready.done():  # during the handshake
                self._ready.set_exception(self.error_from(message, "connecting"))
            if self._broken is not None and not self._broken.done():
                self._broken.set_result(message)
            if self._stop is not None:
                self._stop.set()

    async def _stop_owner(self, timeout: float = 2.0) -> None:
        owner, self._owner = self._owner, None
        if self._stop is not None:
            self._stop.set()
        if owner is None or owner.done():
            return
        # A session that never finished its handshake is stuck in it: cancel at once instead of waiting.
        done = set() if self._session is None else (await asyncio.wait({owner}, timeout=timeout))[0]
        if not done:
            owner.cancel()
            await asyncio.wait({owner}, timeout=timeout)

    async def close(self) -> None:
        self._closed = True
        await self._stop_owner()

    # --- calls ------------------------------------------------------------------------------------------------------
    async def _run(self, what: str, timeout: float, fn: Callable[[Any], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(timeout):
                session, owner, broken = await self._ensure()
                work = asyncio.ensure_future(fn(session))
                try:
                    racers: set[asyncio.Future[Any]] = {work, owner, broken}
                    await asyncio.wait(racers, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not work.done():
                        work.cancel()
                        await asyncio.wait({work}, timeout=1.0)
                if work.done() and not work.cancelled():
                    return work.result()
                cause = broken.result() if broken.done() else (self._failure or ConnectionError("the session ended"))
                await self._stop_owner()
                raise self.error_from(cause, what)
        except TimeoutError:  # a slow answer leaves the session usable: its late reply is simply dropped
            raise RequestTimeoutError(
                f"Wan2GP at {self.url} did not answer {what} within {timeout:.0f} s", backend=self.backend
            ) from None
        except MovieDirectorError:
            raise
        except Exception as exc:
            error = self.error_from(exc, what)
            if isinstance(error, BackendUnavailableError):
                await self._stop_owner()  # the owner has recorded why the transport died: say that instead
                if self._failure is not None:
                    cause = self.error_from(self._failure, what)
                    error = cause if isinstance(cause, BackendUnavailableError) else error
            raise error from None

    async def call_tool(self, name: str, arguments: dict[str, Any], *, timeout: float) -> Any:
        """The raw ``CallToolResult`` (a tool's own failure is ``isError``, not an exception)."""
        return await self._run(name, timeout, lambda s: s.call_tool(name, arguments))

    async def list_tools(self, *, timeout: float) -> list[Any]:
        tools: list[Any] = []
        cursor: str | None = None
        for _ in range(20):  # bounded paging
            page = await self._run("tools/list", timeout, functools.partial(_list_page, cursor=cursor))
            tools.extend(_attr(page, "tools") or [])
            cursor = _attr(page, "nextCursor", "next_cursor")
            if not cursor:
                break
        return tools

    # --- errors -----------------------------------------------------------------------------------------------------
    def error_from(self, exc: BaseException, what: str) -> MovieDirectorError:
        """Map whatever the SDK, httpx or anyio raised onto the shared hierarchy, in words a film-maker can act on."""
        leaves = list(leaf_errors(exc))
        for leaf in leaves:
            if isinstance(leaf, MovieDirectorError):
                return leaf
        for leaf in leaves:
            if isinstance(leaf, AnswerTooLarge):
                return ProtocolError(f"Wan2GP at {self.url}: {leaf}", backend=self.backend)
            if isinstance(leaf, httpx.HTTPStatusError):
                status = leaf.response.status_code
                if status == 404:
                    return BackendUnavailableError(
                        f"There is no MCP endpoint at {self.url} (HTTP 404)",
                        backend=self.backend,
                        hint=_NO_ENDPOINT,
                    )
                if status in (301, 302, 303, 307, 308):
                    return ProtocolError(f"{self.url} redirects elsewhere: {redact(str(leaf))}", backend=self.backend)
                return error_for_status(status, f"{what} was refused by {self.url}", backend=self.backend)
            if isinstance(leaf, httpx.TimeoutException):
                return RequestTimeoutError(f"Wan2GP at {self.url} did not answer {what} in time", backend=self.backend)
            if isinstance(leaf, (httpx.TransportError, OSError, ConnectionError)) or _is_closed_stream(leaf):
                return BackendUnavailableError(
                    f"Cannot reach Wan2GP at {self.url} ({type(leaf).__name__}: {redact(str(leaf)) or 'no answer'})",
                    backend=self.backend,
                )
            mcp_error = _mcp_error_text(leaf)
            if mcp_error is not None:
                code, text = mcp_error
                if "session terminated" in text.lower():  # how the SDK reports a 404 from a stateless endpoint
                    return BackendUnavailableError(
                        f"There is no MCP endpoint at {self.url} (HTTP 404)",
                        backend=self.backend,
                        hint=_NO_ENDPOINT,
                    )
                if code == -32000 or "connection closed" in text.lower():
                    return BackendUnavailableError(
                        f"Wan2GP at {self.url} closed the connection during {what}", backend=self.backend
                    )
                return ProtocolError(f"Wan2GP at {self.url} refused {what}: {text}", backend=self.backend)
        leaf = leaves[0] if leaves else exc
        return ProtocolError(
            f"Wan2GP at {self.url} sent an answer to {what} that cannot be read ({type(leaf).__name__}: "
            f"{redact(str(leaf))[:200]})",
            backend=self.backend,
        )


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _list_page(session: Any, *, cursor: str | None) -> Any:
    if cursor:
        try:
            return await session.list_tools(cursor=cursor)
        except TypeError:  # an SDK without the keyword: only the first page is reachable
            return await session.list_tools()
    return await session.list_tools()


def _is_closed_stream(exc: BaseException) -> bool:
    import anyio

    return isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream))


def _mcp_error_text(exc: BaseException) -> tuple[int, str] | None:
    """(code, message) of the SDK's JSON-RPC error exception (``McpError`` in 1.x, ``MCPError`` in 2.x)."""
    if type(exc).__name__.lower() != "mcperror":
        return None
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(exc)
    return (int(code) if isinstance(code, int) else 0), redact(str(message))
