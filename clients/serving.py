"""Host an aiohttp application in its own event loop on a daemon thread.

Plain Python: this module never imports bpy. Emulators, stand-ins, tests and the demo use it to run a server beside
synchronous code (Blender's main thread, pytest) without sharing the runtime's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web


class AppThread:
    """``start()`` binds ``host:port`` (port 0 picks a free one) and returns once the server accepts connections."""

    def __init__(
        self,
        make_app: Callable[[], web.Application | Awaitable[web.Application]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "movie-director-server",
    ) -> None:
        self._make_app = make_app
        self.host = host
        self.port = port
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> AppThread:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"{self.name} did not start within {timeout} s")
        if self._error is not None:
            raise RuntimeError(f"{self.name} failed to start") from self._error
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:  # reported to start() or logged by the thread machinery
            self._error = exc
            ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self, ready: threading.Event) -> None:
        app = self._make_app()
        if asyncio.iscoroutine(app) or isinstance(app, Awaitable):
            app = await app
        assert isinstance(app, web.Application)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        self._stop = asyncio.Event()
        ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._runner.cleanup()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None or self.loop is None or self._stop is None:
            return
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> AppThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
