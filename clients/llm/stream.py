"""One streamed chat answer over HTTP: opened with retries up to its first event, then read with a watchdog.

Plain Python: this module never imports bpy. The rules (``shared/protocols/litellm.md``): a stream may be retried
only until its first event arrived (after that a retry would duplicate text the user already has); a stream silent
for longer than its idle timeout fails with :class:`RequestTimeoutError`; a total deadline bounds the whole answer,
keep-alive pings included. One timer does both jobs: it is re-armed after every read to the nearer of the two.
Closing the stream closes the HTTP response at once (the server sees the disconnect and stops generating).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from ...runtime.errors import (
    BackendUnavailableError,
    JobCancelledError,
    MovieDirectorError,
    ProtocolError,
    RequestTimeoutError,
)
from ...runtime.retry import call_with_retry
from ..http import CONNECT_TIMEOUT, read_limited
from .protocol import DONE, StreamDelta, parse_chunk
from .sse import SseDecoder, SseEvent

if TYPE_CHECKING:
    from ...runtime.backend import BackendConfig


class StreamOwner(Protocol):
    """What a stream needs from the client that opened it (an :class:`~..http.HttpBackendClient`)."""

    name: str
    config: BackendConfig

    def session(self, base_url: str) -> aiohttp.ClientSession: ...

    def status_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> MovieDirectorError: ...

    def transport_error(self, exc: BaseException, url: str) -> MovieDirectorError: ...


#: Largest answer we accumulate (characters); a runaway server cannot fill the memory.
MAX_ANSWER_CHARS = 4_000_000
#: Largest error body we read from a refused stream.
MAX_ERROR_BYTES = 1024 * 1024
#: The stream keeps its own deadlines (first piece and silences within the idle timeout, a total for the answer).
_NO_READ = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=None)


class ChatStream:
    """An open streamed answer. Iterate :meth:`deltas` once; :meth:`close` is idempotent and safe from any task."""

    def __init__(self, client: StreamOwner, url: str, body: dict[str, Any], *, idle: float, total: float) -> None:
        self.client = client
        self.url = url
        self.body = body
        self.idle = idle
        self.total = total
        self.resp: aiohttp.ClientResponse | None = None
        self.closed = False
        self._decoder: SseDecoder | None = None
        self._first: list[SseEvent] = []
        self._end = 0.0

    async def open(self) -> ChatStream:
        """Send the request; returns once the first event arrived (retrying per the client's policy until then)."""
        self._end = time.monotonic() + self.total
        resp, self._decoder, self._first = await call_with_retry(
            self._attempt, self.client.config.retry, backend=self.client.name, deadline=self.total
        )
        self.resp = resp
        if self.closed:  # closed while the request was on its way
            resp.close()
        return self

    async def _attempt(self) -> tuple[aiohttp.ClientResponse, SseDecoder, list[SseEvent]]:
        name = self.client.name
        try:
            async with asyncio.timeout(self.idle):  # the first-byte deadline: headers within the idle timeout
                resp = await self.client.session(self.url).post(
                    "v1/chat/completions", json=self.body, headers={"Accept": "text/event-stream"}, timeout=_NO_READ
                )
        except TimeoutError:
            raise RequestTimeoutError(
                f"The server took the request but did not start answering within {self.idle:g} s", backend=name
            ) from None
        except MovieDirectorError:
            raise
        except Exception as exc:
            raise self.client.transport_error(exc, self.url) from exc
        try:
            if resp.status >= 400:
                raw = await read_limited(resp, MAX_ERROR_BYTES, name)
                raise self.client.status_error(resp.status, raw, resp.headers)
            ctype = resp.headers.get("Content-Type", "")
            if "text/event-stream" not in ctype:
                sent = ctype or "no content type"
                raise ProtocolError(f"The server did not stream its answer (it sent {sent})", backend=name)
            decoder = SseDecoder(backend=name)
            while True:
                try:
                    async with asyncio.timeout(self.idle):
                        chunk = await resp.content.readany()
                except TimeoutError:
                    raise RequestTimeoutError(
                        f"The server accepted the request but sent nothing for {self.idle:g} s", backend=name
                    ) from None
                if not chunk:
                    decoder.close()
                    raise BackendUnavailableError("The server closed the connection before answering", backend=name)
                events = decoder.feed(chunk)
                if events:
                    return resp, decoder, events
        except MovieDirectorError:
            resp.close()
            raise
        except BaseException as exc:
            resp.close()
            if isinstance(exc, Exception):
                raise self.client.transport_error(exc, self.url) from exc
            raise

    async def deltas(self) -> AsyncIterator[StreamDelta]:
        """The answer's chunks until ``[DONE]`` (or the end of the stream after a finish reason)."""
        resp, decoder = self.resp, self._decoder
        if resp is None or decoder is None:
            raise RuntimeError("open() the stream first")
        name = self.client.name
        loop = asyncio.get_running_loop()
        end = loop.time() + max(self._end - time.monotonic(), 0.0)
        events, self._first = self._first, []
        finished = False
        size = 0
        try:
            async with asyncio.timeout(None) as watchdog:
                while True:
                    for event in events:
                        if event.data == DONE:
                            return
                        delta = parse_chunk(event.data, name)
                        if delta.finish_reason:
                            finished = True
                        if delta.content:
                            size += len(delta.content)
                            if size > MAX_ANSWER_CHARS:
                                raise ProtocolError(
                                    f"The answer is longer than {MAX_ANSWER_CHARS} characters", backend=name
                                )
                        yield delta
                    watchdog.reschedule(min(loop.time() + self.idle, end))
                    try:
                        chunk = await resp.content.readany()
                    except Exception as exc:
                        if self.closed:
                            raise JobCancelledError("The answer was stopped", backend=name) from None
                        if finished:
                            return  # the answer was complete; only the goodbye was lost
                        raise BackendUnavailableError(
                            f"The connection broke in the middle of the answer ({type(exc).__name__})", backend=name
                        ) from exc
                    watchdog.reschedule(None)
                    if self.closed:
                        raise JobCancelledError("The answer was stopped", backend=name)
                    if not chunk:
                        events = decoder.close()
                        if not events:
                            if finished:
                                return  # a server that ends without [DONE] after its finish reason
                            raise BackendUnavailableError(
                                "The server closed the connection in the middle of the answer", backend=name
                            )
                        continue
                    events = decoder.feed(chunk)
        except TimeoutError:
            if loop.time() >= end - 0.001:
                raise RequestTimeoutError(f"The answer did not finish within {self.total:g} s", backend=name) from None
            raise RequestTimeoutError(
                f"The server stopped sending in the middle of the answer (nothing for {self.idle:g} s)",
                backend=name,
                hint="The model may be overloaded or stuck; try again, or raise the idle timeout.",
            ) from None
        finally:
            self.close()

    def close(self) -> None:
        """Close the HTTP response now (not returned to the pool: the server must see the disconnect)."""
        self.closed = True
        if self.resp is not None and not self.resp.closed:
            self.resp.close()
