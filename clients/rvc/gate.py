"""One conversion at a time per server, first come first served, with the voice it holds on record.

Plain Python: this module never imports bpy. An RVC server holds one loaded model: two jobs for two voices running
at once would load one model over the other mid-conversion. Jobs for the *same* voice take turns too: rvc-python
keeps pitch and the other settings as server-wide state, and a Gradio app's queue runs one event at a time anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class VoiceGate:
    """A FIFO lock (asyncio's is fair) that counts who holds or waits for it, so the least busy server is chosen."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        #: The voice of the job holding the server (None when it is free).
        self.voice: str | None = None
        #: Jobs holding or waiting for this server.
        self.load = 0

    @contextlib.asynccontextmanager
    async def hold(self, voice: str) -> AsyncIterator[None]:
        """Wait for the server (cancellable while waiting), hold it for ``voice``, release it on exit."""
        self.load += 1
        try:
            async with self._lock:
                self.voice = voice
                try:
                    yield
                finally:
                    self.voice = None
        finally:
            self.load -= 1
