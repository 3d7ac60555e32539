"""The loop's record of one job: the live :class:`Job` it mutates, the handle it reports to, and its run state.

Plain Python: this module never imports bpy. Records live on the loop thread only; the home thread sees nothing of
them but the frozen snapshots they post.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bridge import JobHandle
from .jobs import Job


@dataclass(eq=False)
class JobRecord:
    job: Job
    handle: JobHandle
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    started: bool = False
    resume: bool = False  # reloaded from the journal while submitted or running: reconcile, do not resubmit
    holds_slot: bool = False  # counted in its backend's concurrency limit
    parked_at: float | None = None  # waiting for its server to come back
    final: Job | None = None
    waiters: list[asyncio.Future[Job]] = field(default_factory=list)
    output_dir: Path | None = None  # created once, on first use
    journaled_request: Any = None  # the request object last written to the journal (written again only if replaced)
