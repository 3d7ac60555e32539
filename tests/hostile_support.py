"""Helpers of the hostile-server tests (``tests/hostile``): the recorded peer and the invariants every test asserts.

The invariants: no file outside the job's folder, no key anywhere (job, log, journal, files, Python logs), the job
terminal within a bound, its concurrency slot released.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from movie_director.clients.http import HttpBackendClient
from movie_director.clients.serving import AppThread
from movie_director.runtime import HealthInfo, Runtime
from movie_director.runtime.jobs import Job, JobState


class Plain(HttpBackendClient):
    """The bare HTTP client every backend builds on, with no job verbs: what the request-level tests drive."""

    name = "plain"

    async def submit(self, job, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def get_result(self, job, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def health(self) -> HealthInfo:
        return HealthInfo(ok=True)


#: A key long enough that any 8 characters of it identify it.
KEY = "sk-hostile-0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Peer:
    """A server and what it saw."""

    thread: AppThread
    hits: list[Hit] = field(default_factory=list)
    release: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://{self.thread.host}:{self.thread.port}"

    def stop(self) -> None:
        if self.thread.loop is not None and self.release is not None:
            self.thread.loop.call_soon_threadsafe(self.release.set)
        self.thread.stop()


def wait_terminal(rt: Runtime, handle: Any, bound: float) -> Job:
    """The job's end, which must come within ``bound`` seconds."""
    start = time.monotonic()
    job = handle.wait(bound + 5)
    took = time.monotonic() - start
    assert job.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED), job
    assert took < bound, f"the job took {took:.1f} s (bound {bound} s)"
    return job


def assert_slot_released(rt: Runtime, backend: str) -> None:
    """No job of ``backend`` holds a concurrency slot any more."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stats = rt.stats().get(backend, {})
        if not stats.get("active"):
            return
        time.sleep(0.02)
    raise AssertionError(f"{backend} still has active jobs: {rt.stats()}")


def assert_no_key(key: str, *texts: str, paths: tuple[Path, ...] = (), caplog: Any = None) -> None:
    """Neither the key nor any 8 characters of it appear in ``texts``, in any file under ``paths``, or in the
    captured Python log records."""
    pieces = {key[i : i + 8] for i in range(0, len(key) - 7)}
    corpus = list(texts)
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
        corpus += [p.read_bytes().decode("latin-1") for p in files]
    if caplog is not None:
        corpus += [record.getMessage() for record in caplog.records]
    for text in corpus:
        leaked = [p for p in pieces if p in text]
        assert not leaked, f"a piece of the key leaked: {leaked[:3]} in {text[:300]!r}"


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
