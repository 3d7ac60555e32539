"""How the engine writes jobs to the journal: each state change before it takes effect, and new jobs in one commit.

Plain Python: this module never imports bpy. Loop thread only, as the engine. A write the journal refuses is a
:class:`JournalWriteError` naming the journal and the cause; the engine ends that job failed with it.
"""

from __future__ import annotations

from .errors import MovieDirectorError
from .jobs import JobState
from .journal import Journal, JournalRow
from .record import JobRecord


class JournalWriteError(MovieDirectorError):
    """The journal could not take a job's state change (a value it cannot store, a full disk)."""


class JobWrites:
    """The engine's journal writes (none without a journal)."""

    def __init__(self, journal: Journal | None) -> None:
        self.journal = journal

    def error(self, rec: JobRecord, exc: Exception) -> JournalWriteError:
        path = self.journal.path if self.journal is not None else None
        return JournalWriteError(
            f"Could not record the job's state in the journal ({path}): {type(exc).__name__}: {exc}",
            backend=rec.job.backend,
        )

    def change(self, rec: JobRecord, state: JobState | None, note: str) -> None:
        """Write the job as it will be in ``state``; its request only when it was replaced since the last write."""
        if self.journal is None:
            return
        request = rec.job.request
        try:
            self.journal.record(rec.job, state, note, request=request is not rec.journaled_request)
        except Exception as exc:
            raise self.error(rec, exc) from exc
        rec.journaled_request = request

    def new(self, recs: list[JobRecord]) -> tuple[list[JobRecord], list[tuple[JobRecord, JournalWriteError]]]:
        """Write new jobs in one commit: ``(written, refused)``. A job whose request cannot be stored is refused
        alone; a commit that fails refuses them all. A job that already ended (cancelled before its turn) is
        neither."""
        live = [rec for rec in recs if not rec.job.done]
        if self.journal is None:
            return live, []
        rows: list[JournalRow] = []
        written: list[JobRecord] = []
        refused: list[tuple[JobRecord, JournalWriteError]] = []
        for rec in live:
            try:
                rows.append(self.journal.row(rec.job, None, "queued"))
            except Exception as exc:
                refused.append((rec, self.error(rec, exc)))
            else:
                written.append(rec)
        if rows:
            try:
                self.journal.write(rows)
            except Exception as exc:
                return [], refused + [(rec, self.error(rec, exc)) for rec in written]
        for rec in written:
            rec.journaled_request = rec.job.request
        return written, refused
