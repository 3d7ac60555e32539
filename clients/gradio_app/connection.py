"""One connected gradio_client (one app session) and the loop-side waker its calls sleep on.

Plain Python: this module never imports bpy. Kept apart from the runner and the call so that neither needs the
other's module (the runner owns connections, a call borrows one).
"""

from __future__ import annotations

import asyncio
from typing import Any

from .compat import QuietClient


class Connection:
    """One connected gradio_client: one app session, serving one call at a time."""

    def __init__(self, client: QuietClient) -> None:
        self.client = client
        self.heartbeat: asyncio.Task[None] | None = None
        self.call: Any = None  # the GradioCall it serves (typed loosely: a call imports this module, not back)
        self.busy = False  # reserved for, or serving, a call
        self.retired = False

    @property
    def stream_open(self) -> bool:
        return bool(getattr(self.client, "stream_open", False))


class Waker:
    """Wakes a task on the loop when gradio_client, on one of its threads, has news for it (the job was accepted,
    a status update, the end). Wake-ups coalesce: many updates between two looks cost one loop iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._event = asyncio.Event()
        self._pending = False

    def __call__(self, *_: Any) -> None:
        """Safe from any thread, and after the loop closed (nobody is waiting then)."""
        if self._pending:
            return
        self._pending = True
        try:
            self._loop.call_soon_threadsafe(self._fire)
        except RuntimeError:
            pass

    def _fire(self) -> None:
        self._pending = False
        self._event.set()

    async def wait(self, timeout: float) -> None:
        """Until woken (or ``timeout`` seconds, a safety net for gradio_client versions without update queues)."""
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            pass
        self._event.clear()
