"""One asyncio event loop in one named daemon thread.

Plain Python: this module never imports bpy. ``start()`` and ``stop()`` are idempotent; ``stop()`` cancels every task,
runs the registered async closers (HTTP sessions), shuts the default executor down and joins the thread, so that
start/stop cycles leak no threads, sockets or file descriptors.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

THREAD_NAME = "movie-director-loop"
Closer = Callable[[], Awaitable[None]]


class LoopThread:
    """Owns the loop and its thread; everything else talks to the loop through :meth:`submit` and :meth:`call_soon`."""

    def __init__(self, name: str = THREAD_NAME) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closers: list[Closer] = []
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the Movie Director loop is not running")
        return self._loop

    def in_loop_thread(self) -> bool:
        return self._thread is not None and threading.get_ident() == self._thread.ident

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(target=self._run, args=(loop, ready), name=self.name, daemon=True)
            self._loop, self._thread = loop, thread
            thread.start()
            ready.wait()

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def add_closer(self, closer: Closer) -> None:
        """Register an async callable run on the loop at stop (e.g. closing an HTTP session)."""
        self._closers.append(closer)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop from any other thread; returns a thread-safe future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule a plain callable on the loop from any thread."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 1.0) -> None:
        """Cancel all work, close what was registered, stop the loop and join its thread within ``timeout``."""
        with self._lock:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            if thread.is_alive():
                if threading.get_ident() == thread.ident:
                    raise RuntimeError("stop() cannot be called from the loop thread")
                fut = asyncio.run_coroutine_threadsafe(self._shutdown(timeout * 0.8), loop)
                try:
                    fut.result(timeout)
                except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                    log.warning("loop shutdown did not finish in %.1f s", timeout)
                except Exception:
                    log.exception("error while shutting the loop down")
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout)
                if thread.is_alive():
                    log.warning("the %s thread did not stop within %.1f s", self.name, timeout)
            self._thread = None
            self._loop = None

    async def _shutdown(self, budget: float) -> None:
        """Cancel every task (a quarter of ``budget`` for them to end), then run the closers side by side in what is
        left: one slow closer cannot starve the others."""
        loop = asyncio.get_running_loop()
        end = loop.time() + budget
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=budget / 4)
        closers, self._closers = self._closers, []
        if closers:
            left = max(0.0, end - loop.time())
            running = [asyncio.ensure_future(closer()) for closer in closers]
            done, pending = await asyncio.wait(running, timeout=left)
            for task in pending:
                log.warning("a closer did not finish within %.2f s", left)
                task.cancel()
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("error while closing", exc_info=task.exception())
