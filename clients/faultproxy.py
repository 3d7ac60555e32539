"""A TCP fault proxy for the fault suite and the soak script: it sits between a client and a server on this machine
and drops, stalls, resets, slows down or cuts connections on command.

Plain Python: this module never imports bpy. It is test tooling (excluded from the extension package) but lives in the
package so that tests and ``scripts/soak.py`` share one implementation. Only loopback addresses are proxied.

Modes for new connections (``proxy.mode = ...``): ``pass``; ``drop`` (accept, then close at once); ``stall`` (accept
and never answer); ``reset`` (accept, then send a TCP RST); ``slow`` (forward with ``delay`` seconds per chunk);
``respond`` (answer the first HTTP request with ``canned`` bytes and close: for bursts of 429/503). ``reset_all()``
and ``cut_all()`` act on the connections that are open now.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from typing import Any

MODES = ("pass", "drop", "stall", "reset", "slow", "respond")


def http_response(status: int, reason: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """A canned HTTP/1.1 response that closes its connection."""
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class FaultProxy:
    """Runs on its own event loop in a daemon thread; every method is safe to call from any thread."""

    def __init__(self, target_port: int, *, target_host: str = "127.0.0.1", port: int = 0) -> None:
        if target_host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fault proxy only forwards to this machine")
        self.target = (target_host, target_port)
        self.port = port
        self.mode = "pass"
        self.delay = 0.05
        self.canned = http_response(503, "Service Unavailable", b"{}", {"Retry-After": "0"})
        self.respond_count = 0  # how many connections get the canned answer before mode goes back to pass
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- life cycle -------------------------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", self.port))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.close()

        self._thread = threading.Thread(target=run, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- commands ---------------------------------------------------------------------------------------------------
    def reset_all(self) -> None:
        """Send a TCP RST on every open connection (both sides see a reset)."""
        self._call(self._close_all, True)

    def cut_all(self) -> None:
        """Close every open connection cleanly (FIN), as a server going away does."""
        self._call(self._close_all, False)

    def respond(self, status: int, count: int, *, retry_after: str = "0") -> None:
        """Answer the next ``count`` new connections with ``status`` (e.g. 429 or 503), then pass again."""
        reasons = {429: "Too Many Requests", 503: "Service Unavailable", 500: "Internal Server Error"}
        headers = {"Retry-After": retry_after, "Content-Type": "application/json"}
        self.canned = http_response(status, reasons.get(status, "Error"), b'{"error": "injected"}', headers)
        self.respond_count = count
        self.mode = "respond"
        self.reset_all()  # pooled connections must reconnect to meet the fault

    def _call(self, fn: Any, *args: Any) -> None:
        if self._loop is not None:
            done = threading.Event()

            def run() -> None:
                try:
                    fn(*args)
                finally:
                    done.set()

            self._loop.call_soon_threadsafe(run)
            done.wait(5)

    def _close_all(self, reset: bool) -> None:
        for writer in list(self._writers):
            if reset:
                _set_rst(writer)
            writer.close()
        self._writers.clear()

    # --- forwarding -------------------------------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        mode = self.mode
        if mode == "drop":
            writer.close()
            return
        if mode == "reset":
            _set_rst(writer)
            writer.close()
            return
        if mode == "stall":
            self._writers.add(writer)
            with contextlib.suppress(Exception):
                await reader.read()  # hold it open, answer nothing, until the client gives up
            self._writers.discard(writer)
            writer.close()
            return
        if mode == "respond" and self.respond_count > 0:
            self.respond_count -= 1
            if self.respond_count == 0:
                self.mode = "pass"
            with contextlib.suppress(Exception):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(self.canned)
                await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _set_rst(writer)
            writer.close()
            return
        self._writers.update((writer, up_writer))
        tasks = [
            asyncio.ensure_future(self._pipe(reader, up_writer)),
            asyncio.ensure_future(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(tasks)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
            self._tasks.discard(task)
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                if self.mode == "slow":
                    await asyncio.sleep(self.delay)
                writer.write(data)
                await writer.drain()


def _set_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
