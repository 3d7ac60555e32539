"""The durable job journal: every job and every state change is written here *before* it takes effect, so that
after Blender closes (or crashes) the runtime knows which jobs were waiting, which were running where, and resumes,
collects or fails each of them with a reason.

Plain Python: this module never imports bpy. stdlib ``sqlite3`` in WAL mode (readers never block the writer; a crash
loses at most the last transaction), used from the loop thread only (one connection, ``check_same_thread`` off
because the runtime opens it on the home thread before the loop starts). A job's request is written once (in its own
table); each state change writes only the small rest of the job; new jobs that arrive together are one transaction.
The connection opens on first use and :meth:`Journal.close` releases the files (the runtime closes it at stop). A
journal that is not a readable database is moved aside by :func:`open_journal`, kept for inspection, and a fresh one
started.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .errors import redact
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
CREATE TABLE IF NOT EXISTS requests (
    job_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    heartbeat REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (
    job_id TEXT PRIMARY KEY,
    session TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pipelines (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
"""

LIVE_STATES = (JobState.QUEUED.value, JobState.SUBMITTED.value, JobState.RUNNING.value)


log = logging.getLogger(__name__)
#: What a state change does not rewrite: the request (its own table, written when it changes), the preview image,
#: and the two fields written beside the rest (the state the job is moving to, the log's tail).
_EXCLUDE: Any = {"request": True, "state": True, "log": True, "progress": {"preview"}}


def _job_json(job: Job, state: JobState) -> str:
    """The job's row: serialised by pydantic in one pass (a third of dumping to a dict and then to JSON), with the
    new state and the redacted tail of its log put in front."""
    body = job.model_dump_json(exclude=_EXCLUDE)
    log = json.dumps([redact(line) for line in job.log[-50:]], separators=(",", ":"), allow_nan=False)
    return redact(f'{{"state":"{state.value}","log":{log},{body[1:]}')


class JournalRow(NamedTuple):
    """One job's state change, serialised (by :meth:`Journal.row`) and ready to be written."""

    job_id: str
    backend: str
    kind: str
    state: str
    data: str
    #: The request's JSON when it is written with this change (a job's first write, or a replaced request).
    request: str | None
    note: str


def open_journal(path: str | Path) -> Journal:
    """The journal at ``path``; one that is not a readable database is moved aside (``<name>.corrupt-<time>``, with
    its -wal/-shm files), said once in the log, and a fresh one started."""
    path = Path(path)
    try:
        journal = Journal(path)
        journal.check()
        return journal
    except sqlite3.DatabaseError as exc:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{path}{suffix}")
            if part.exists():
                part.replace(Path(f"{aside}{suffix}"))
        log.warning("the job journal %s could not be read (%s); it was moved to %s and a new one started", path, exc,
                    aside)  # fmt: skip
        return Journal(path)


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        #: The live session writing here (see :meth:`begin_session`); its new jobs are recorded as its own.
        self.session = ""
        self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=5.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # A job's row is rewritten at each of its state changes: a checkpoint every 4,000 pages (16 MB) instead
            # of the default 1,000 copies each hot page back less often (about a tenth off a commit's cost here).
            db.execute("PRAGMA wal_autocheckpoint=4000")
            # Point writes and look-ups by key: 512 KiB of page cache does (the default 2 MB only grows the process).
            db.execute("PRAGMA cache_size=-512")
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        self._conn = db
        return db

    @property
    def _db(self) -> sqlite3.Connection:
        return self._conn or self._connect()

    def check(self) -> None:
        """Raise ``sqlite3.DatabaseError`` unless the file is a sound database (a quick page check)."""
        with self._lock:
            row = self._db.execute("PRAGMA quick_check(1)").fetchone()
        if not row or row[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {row[0] if row else 'no answer'}")

    def record(self, job: Job, state: JobState | None = None, note: str = "", *, request: bool = True) -> None:
        """Write ``job`` as it will be in ``state`` (its current state by default), with a transition row; its
        request too when ``request`` (the first time, or after it was replaced). Raises when it cannot be stored."""
        self.write([self.row(job, state, note, request=request)])

    def row(self, job: Job, state: JobState | None = None, note: str = "", *, request: bool = True) -> JournalRow:
        """What :meth:`write` stores for one job (see :meth:`record`); raises when the job cannot be serialised."""
        state = state or job.state
        request_json = redact(json.dumps(job.request, separators=(",", ":"), allow_nan=False)) if request else None
        return JournalRow(job.id, job.backend, job.kind, state.value, _job_json(job, state), request_json, note)

    def write(self, rows: Sequence[JournalRow]) -> None:
        """Store ``rows`` in one transaction: all of them or, raising, none. A burst of new jobs is one commit."""
        now = time.time()
        with self._lock:
            db = self._db
            db.execute("BEGIN")
            try:
                for row in rows:
                    self._write_row(db, row, now)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _write_row(self, db: sqlite3.Connection, row: JournalRow, now: float) -> None:
        if row.request is not None:  # the job's first write (or a new request): this session owns it
            if self.session:
                db.execute("INSERT OR IGNORE INTO owners(job_id, session) VALUES (?, ?)", (row.job_id, self.session))
            db.execute(
                "INSERT INTO requests(job_id, data) VALUES (?, ?) ON CONFLICT(job_id) DO UPDATE SET data=excluded.data",
                (row.job_id, row.request),
            )
        db.execute(
            "INSERT INTO jobs(id, backend, kind, state, data, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET state=excluded.state, data=excluded.data, updated_at=excluded.updated_at",
            (row.job_id, row.backend, row.kind, row.state, row.data, now),
        )
        db.execute(
            "INSERT INTO transitions(job_id, state, at, note) VALUES (?, ?, ?, ?)",
            (row.job_id, row.state, now, row.note),
        )

    def unfinished(self) -> list[Job]:
        """Jobs that were queued, submitted or running when the journal was last written, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT jobs.data, requests.data FROM jobs LEFT JOIN requests ON requests.job_id = jobs.id "
                f"WHERE state IN ({','.join('?' * len(LIVE_STATES))}) ORDER BY jobs.rowid",
                LIVE_STATES,
            ).fetchall()
        jobs = []
        for data, request in rows:
            try:
                jobs.append(_load(data, request))
            except ValueError:  # a row written by a newer or broken version: leave it, never crash start-up
                continue
        return jobs

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(
                "SELECT jobs.data, requests.data FROM jobs LEFT JOIN requests ON requests.job_id = jobs.id "
                "WHERE jobs.id=?",
                (job_id,),
            ).fetchone()
        return _load(row[0], row[1]) if row else None

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
                self._db.execute(f"DELETE FROM requests WHERE job_id IN ({marks})", part)
                self._db.execute(f"DELETE FROM owners WHERE job_id IN ({marks})", part)
                self._db.execute(f"DELETE FROM jobs WHERE id IN ({marks})", part)
        return len(ids)

    def save_pipeline(self, pipeline_id: str, data: str, done: bool = False) -> None:
        """Write a pipeline's definition and stage states (JSON of a PipelineSpec); owned like a job."""
        with self._lock:
            if self.session:
                self._db.execute(
                    "INSERT OR IGNORE INTO owners(job_id, session) VALUES (?, ?)", (pipeline_id, self.session)
                )
            self._db.execute(
                "INSERT INTO pipelines(id, data, done, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET data=excluded.data, done=excluded.done, updated_at=excluded.updated_at",
                (pipeline_id, data, int(done), time.time()),
            )

    # --- ownership: one live session owns each job ---------------------------------------------------------------
    def begin_session(self, session: str) -> None:
        """Announce a live session (this process) that will own the jobs it submits or claims."""
        self.session = session
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO sessions(id, pid, host, heartbeat) VALUES (?, ?, ?, ?)",
                (session, os.getpid(), socket.gethostname(), time.time()),
            )

    def heartbeat(self) -> None:
        """The session is still alive (called every third of the lease)."""
        if self.session:
            with self._lock:
                self._db.execute("UPDATE sessions SET heartbeat=? WHERE id=?", (time.time(), self.session))

    def end_session(self) -> None:
        """The session is gone: its unfinished jobs may be taken over by the next one at once."""
        if self.session:
            with self._lock:
                self._db.execute("DELETE FROM sessions WHERE id=?", (self.session,))
            self.session = ""

    def claim(self, job_id: str, lease: float) -> bool:
        """Make the job this session's unless another live session owns it (heartbeat within ``lease`` seconds, and
        on this computer its process still running). Atomic across processes."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT s.id, s.pid, s.host, s.heartbeat FROM owners o JOIN sessions s ON s.id = o.session "
                    "WHERE o.job_id=?",
                    (job_id,),
                ).fetchone()
                if row is not None and row[0] != self.session and _alive(row[1], row[2], row[3], lease):
                    db.execute("COMMIT")
                    return False
                db.execute("INSERT OR REPLACE INTO owners(job_id, session) VALUES (?, ?)", (job_id, self.session))
                db.execute("COMMIT")
                return True
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def unfinished_pipelines(self) -> list[str]:
        """The JSON of every pipeline with a stage that was not finished."""
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT data FROM pipelines WHERE done=0 ORDER BY rowid")]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    def close(self) -> None:
        """Release the database files (the next use opens them again)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _alive(pid: int, host: str, heartbeat: float, lease: float) -> bool:
    if time.time() - heartbeat > lease:
        return False
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False  # crashed or killed: its jobs are free now, not only after the lease
        except PermissionError:
            return True
    return True


def _load(data: str, request: str | None) -> Job:
    """A job from its row; rows of older versions carry the request inside ``data``."""
    values = json.loads(data)
    if request is not None:
        values["request"] = json.loads(request)
    return Job.model_validate(values)


def has_unfinished(path: str | Path) -> bool:
    """Whether the journal at ``path`` holds a job or pipeline that has not ended: a cheap, read-only look (no
    runtime, no thread, no network) that decides whether to start the runtime when Blender starts or a file loads.
    A missing or unreadable journal holds nothing to resume."""
    path = Path(path)
    if not path.is_file():
        return False
    marks = ",".join("?" * len(LIVE_STATES))
    try:
        with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=1.0) as db:
            if db.execute(f"SELECT 1 FROM jobs WHERE state IN ({marks}) LIMIT 1", LIVE_STATES).fetchone():
                return True
            return db.execute("SELECT 1 FROM pipelines WHERE done = 0 LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return False
