"""The durable job journal: every job and every state change is written here *before* it takes effect, so that
after Blender closes (or crashes) the runtime knows which jobs were waiting, which were running where, and resumes,
collects or fails each of them with a reason.

Plain Python: this module never imports bpy. stdlib ``sqlite3`` in WAL mode (readers never block the writer; a crash
loses at most the last transaction), used from the loop thread only (one connection, ``check_same_thread`` off
because the runtime opens it on the home thread before the loop starts).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .jobs import Job, JobState

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS transitions (
    job_id TEXT NOT NULL,
    state TEXT NOT NULL,
    at REAL NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS transitions_job ON transitions(job_id);
CREATE TABLE IF NOT EXISTS pipelines (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
"""

LIVE_STATES = (JobState.QUEUED.value, JobState.SUBMITTED.value, JobState.RUNNING.value)


def _job_json(job: Job, state: JobState) -> str:
    data = job.model_dump(mode="json", exclude={"progress": {"preview"}})
    data["state"] = state.value
    data["log"] = data.get("log", [])[-50:]
    return json.dumps(data, separators=(",", ":"))


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=5.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def record(self, job: Job, state: JobState | None = None, note: str = "") -> None:
        """Write ``job`` as it will be in ``state`` (its current state by default), with a transition row."""
        state = state or job.state
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute(
                    "INSERT INTO jobs(id, backend, kind, state, data, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data, "
                    "updated_at=excluded.updated_at",
                    (job.id, job.backend, job.kind, state.value, _job_json(job, state), now),
                )
                self._db.execute(
                    "INSERT INTO transitions(job_id, state, at, note) VALUES (?, ?, ?, ?)",
                    (job.id, state.value, now, note),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def unfinished(self) -> list[Job]:
        """Jobs that were queued, submitted or running when the journal was last written, oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT data FROM jobs WHERE state IN ({','.join('?' * len(LIVE_STATES))}) ORDER BY rowid",
                LIVE_STATES,
            ).fetchall()
        jobs = []
        for (data,) in rows:
            try:
                jobs.append(Job.model_validate_json(data))
            except ValueError:  # a row written by a newer or broken version: leave it, never crash start-up
                continue
        return jobs

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM jobs WHERE id=?", (job_id,)).fetchone()
        return Job.model_validate_json(row[0]) if row else None

    def history(self, job_id: str) -> list[tuple[str, float, str]]:
        """The recorded state changes of one job: (state, time, note)."""
        with self._lock:
            return list(
                self._db.execute("SELECT state, at, note FROM transitions WHERE job_id=? ORDER BY rowid", (job_id,))
            )

    def prune(self, older_than_s: float = 30 * 86400) -> int:
        """Forget finished jobs older than ``older_than_s``."""
        cutoff = time.time() - older_than_s
        with self._lock:
            ids = [
                r[0]
                for r in self._db.execute(
                    f"SELECT id FROM jobs WHERE updated_at < ? AND state NOT IN ({','.join('?' * len(LIVE_STATES))})",
                    (cutoff, *LIVE_STATES),
                )
            ]
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                marks = ",".join("?" * len(part))
                self._db.execute(f"DELETE FROM transitions WHERE job_id IN ({marks})", part)
                self._db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", part)
        return len(ids)

    def save_pipeline(self, pipeline_id: str, data: str, done: bool = False) -> None:
        """Write a pipeline's definition and stage states (JSON of a PipelineSpec)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO pipelines(id, data, done, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data=excluded.data, done=excluded.done, updated_at=excluded.updated_at",
                (pipeline_id, data, int(done), time.time()),
            )

    def unfinished_pipelines(self) -> list[str]:
        """The JSON of every pipeline with a stage that was not finished."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT data FROM pipelines WHERE done=0 ORDER BY rowid")]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()
