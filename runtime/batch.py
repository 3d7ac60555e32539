"""Batches on the loop: many jobs queued together, all at once or each after the one before it.

Plain Python: this module never imports bpy. Loop thread only; the engine is reached through :class:`BatchHost`.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from .bridge import JobHandle
from .jobs import Job, JobState
from .record import JobRecord


class BatchHost(Protocol):
    """What a batch needs from the engine (implemented by :class:`~runtime.engine.Engine`)."""

    def register_all(self, items: list[tuple[Job, JobHandle]]) -> list[JobRecord]: ...
    def schedule(self, rec: JobRecord) -> None: ...
    def cancel(self, job_id: str, reason: str) -> None: ...
    def wait_for(self, job_id: str) -> asyncio.Future[Job] | None: ...


async def run_batch(host: BatchHost, items: list[tuple[Job, JobHandle]], parallel: bool, stop_on_error: bool) -> None:
    """Queue a batch: all at once, or each when the one before it ended; ``stop_on_error`` cancels the rest."""
    recs = host.register_all(items)  # one journal commit for the whole batch

    def stop_rest(failed: Job) -> None:
        for other in recs:
            host.cancel(other.job.id, f"Cancelled because job {failed.id[:8]} of its batch did not succeed")

    def future(rec: JobRecord) -> asyncio.Future[Job]:
        fut = host.wait_for(rec.job.id)
        assert fut is not None  # registered just above
        return fut

    if not parallel:
        for rec in recs:
            host.schedule(rec)
            final = await future(rec)
            if stop_on_error and final.state is not JobState.SUCCEEDED:
                return stop_rest(final)
        return None
    for rec in recs:
        host.schedule(rec)
    pending = {future(rec) for rec in recs}
    while pending and stop_on_error:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for fut in done:
            if fut.result().state is not JobState.SUCCEEDED:
                return stop_rest(fut.result())
    return None
