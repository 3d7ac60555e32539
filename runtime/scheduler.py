"""Local job queue: a priority queue per backend, a live-adjustable concurrency limit, pause and resume.

Plain Python: this module never imports bpy. It runs entirely on the loop thread and knows nothing of HTTP: it decides
*when* a job starts and calls ``start(record)``; the runtime decides *how*.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BackendQueue:
    limit: int = 1
    paused: bool = False
    heap: list[tuple[int, int, Any]] = field(default_factory=list)
    active: set[str] = field(default_factory=set)


class Scheduler:
    """Higher ``priority`` starts first; equal priorities start in submission order."""

    def __init__(self, start: Callable[[Any], None]) -> None:
        self._start = start
        self._queues: dict[str, BackendQueue] = {}
        self._seq = itertools.count()
        self.paused = False

    def _queue(self, backend: str) -> BackendQueue:
        q = self._queues.get(backend)
        if q is None:
            q = self._queues[backend] = BackendQueue()
        return q

    def enqueue(self, backend: str, job_id: str, priority: int, record: Any) -> None:
        q = self._queue(backend)
        heapq.heappush(q.heap, (-priority, next(self._seq), record))
        self._fill(backend)

    def remove(self, backend: str, job_id: str) -> bool:
        """Take a queued job out of the queue (it was cancelled before it started)."""
        q = self._queue(backend)
        for i, (_, _, rec) in enumerate(q.heap):
            if rec.job.id == job_id:
                q.heap.pop(i)
                heapq.heapify(q.heap)
                return True
        return False

    def reprioritize(self, backend: str, job_id: str, priority: int) -> bool:
        """Move a queued job within its queue (equal priorities keep their order); False if it is not queued."""
        q = self._queue(backend)
        for i, (_, seq, rec) in enumerate(q.heap):
            if rec.job.id == job_id:
                rec.job.priority = priority
                q.heap[i] = (-priority, seq, rec)
                heapq.heapify(q.heap)
                return True
        return False

    def queued_ids(self, backend: str) -> list[str]:
        """The queued jobs of one backend in the order they will start."""
        return [rec.job.id for _, _, rec in sorted(self._queue(backend).heap, key=lambda e: (e[0], e[1]))]

    def finished(self, backend: str, job_id: str) -> None:
        q = self._queue(backend)
        q.active.discard(job_id)
        self._fill(backend)

    def set_limit(self, backend: str, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"concurrency must be at least 1, not {limit}")
        self._queue(backend).limit = limit
        self._fill(backend)

    def pause(self, backend: str | None = None) -> None:
        if backend is None:
            self.paused = True
        else:
            self._queue(backend).paused = True

    def resume(self, backend: str | None = None) -> None:
        if backend is None:
            self.paused = False
            for name in list(self._queues):
                self._fill(name)
        else:
            self._queue(backend).paused = False
            self._fill(backend)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"active": len(q.active), "queued": len(q.heap), "limit": q.limit, "paused": q.paused or self.paused}
            for name, q in self._queues.items()
        }

    def _fill(self, backend: str) -> None:
        q = self._queue(backend)
        while q.heap and not q.paused and not self.paused and len(q.active) < q.limit:
            _, _, rec = heapq.heappop(q.heap)
            q.active.add(rec.job.id)
            self._start(rec)
