"""The offline queue: jobs whose server could not be reached before anything was sent wait for it, visibly.

Plain Python: this module never imports bpy. Loop thread only. A parked job gives its concurrency slot back, shows
"waiting for server", and a probe per backend asks the server's health with backoff; when it answers, every waiting
job is queued again; one that waited longer than ``offline_wait`` fails saying so.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any, Protocol

from .errors import BackendUnavailableError
from .jobs import JobError, JobState
from .outbox import Message, Progressed
from .record import JobRecord


class OfflineHost(Protocol):
    """What the offline queue needs from the engine (implemented by :class:`~runtime.engine.Engine`)."""

    offline_wait: float

    def client(self, name: str) -> Any: ...
    def release(self, rec: JobRecord) -> None: ...
    def schedule(self, rec: JobRecord) -> None: ...
    def post(self, message: Message) -> None: ...
    def set_backend_state(self, name: str, state: str, message: str = "") -> None: ...
    def finish(self, rec: JobRecord, state: JobState, *, error: JobError | None = None) -> None: ...


class OfflineQueue:
    def __init__(self, host: OfflineHost) -> None:
        self._host = host
        self._waiting: dict[str, list[JobRecord]] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}

    def park(self, rec: JobRecord, error: BackendUnavailableError) -> None:
        """The server is unreachable before anything was sent: wait for it (visibly) instead of failing."""
        host, job = self._host, rec.job
        rec.task, rec.started = None, False
        rec.parked_at = rec.parked_at or time.monotonic()
        host.release(rec)
        job.progress = job.progress.model_copy(update={"stage": "waiting for server", "message": error.message})
        host.post(Progressed(rec.handle, job.snapshot()))
        self._waiting.setdefault(job.backend, []).append(rec)
        host.set_backend_state(job.backend, "offline", error.message)
        probe = self._probes.get(job.backend)
        if probe is None or probe.done():
            self._probes[job.backend] = asyncio.get_running_loop().create_task(self._probe(job.backend))

    def forget(self, rec: JobRecord) -> None:
        """The job ended (cancelled, expired): it waits no more."""
        waiting = self._waiting.get(rec.job.backend)
        if waiting and rec in waiting:
            waiting.remove(rec)

    async def _probe(self, backend: str) -> None:
        """Ask the server's health with backoff until it answers, then send every waiting job on its way."""
        host = self._host
        delay = 0.25
        while self._waiting.get(backend):
            await asyncio.sleep(delay * random.uniform(0.75, 1.0))
            delay = min(delay * 2, 30.0)
            self._expire(backend)
            try:
                ok = (await asyncio.wait_for(host.client(backend).health(), 10.0)).ok
            except Exception:  # a health check that crashes or hangs means "not yet"
                ok = False
            if ok:
                host.set_backend_state(backend, "connected", "")
                waiting, self._waiting[backend] = self._waiting.get(backend, []), []
                for rec in waiting:
                    if not rec.job.done:
                        rec.job.progress = rec.job.progress.model_copy(update={"stage": "queued", "message": ""})
                        host.schedule(rec)
                return

    def _expire(self, backend: str) -> None:
        now, limit = time.monotonic(), self._host.offline_wait
        for rec in list(self._waiting.get(backend, [])):
            if rec.parked_at is not None and now - rec.parked_at > limit:
                error = BackendUnavailableError(f"The server did not come back within {limit:.0f} s", backend=backend)
                self._host.finish(rec, JobState.FAILED, error=JobError.from_exception(error))
