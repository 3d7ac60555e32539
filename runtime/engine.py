"""The loop side of the runtime: job records, the scheduler, running, finishing, parking and journal writes.

Plain Python: this module never imports bpy. Every method here runs on the loop thread (or before the loop starts);
the home-thread front (:class:`~runtime.core.Runtime`) reaches it only through ``loop_thread.call_soon``/``submit``,
and the engine answers only through the outbox, with frozen snapshots. A failure while recording a state change
(an unserialisable value, a full disk) fails the job with a message and releases its slot: no job is stranded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from .backend import BackendClient, BackendConfig, NetworkPolicy
from .batch import run_batch
from .bridge import DoneSignal, HandleHost, JobHandle
from .cache import TtlCache
from .context import JobContext
from .errors import BackendUnavailableError, JobCancelledError, MovieDirectorError, redact
from .job_writes import JobWrites, JournalWriteError
from .jobs import Job, JobError, JobOutputs, JobState
from .journal import Journal
from .offline import OfflineQueue
from .outbox import Finished, Message, Outbox, Progressed, RuntimeEvent
from .partials import remove_partials
from .pipeline import PipelineHandle, PipelineRun, PipelineSpec
from .pool import ClientFactory, ClientPool
from .record import JobRecord
from .scheduler import Scheduler

log = logging.getLogger(__name__)

#: How long a cancelled job's "please stop" request to its server may take before we give up on it.
REMOTE_CANCEL_TIMEOUT = 5.0
STOPPED = "Movie Director stopped before the job finished"
#: Finished jobs kept in the job list (the sidebar's) before the oldest are forgotten.
KEEP_FINISHED = 100
#: A session that has not renewed its ownership of its jobs for this long is gone (see ``Journal.claim``).
LEASE_S = 30.0


class Engine:
    """Owns everything that changes while jobs run. Loop thread only."""

    def __init__(
        self,
        host: HandleHost,
        *,
        outbox: Outbox,
        network: NetworkPolicy,
        output_root: Path,
        journal: Journal | None,
        offline_wait: float,
        cache: TtlCache,
        adopted: Callable[[JobHandle], None],
    ) -> None:
        self.host = host
        self.outbox = outbox
        self.network = network
        self.output_root = output_root
        self.journal = journal
        self.writes = JobWrites(journal)
        self.offline_wait = offline_wait
        self.cache = cache
        self.done_signal = DoneSignal()
        self.pool = ClientPool(outbox, network, cache)
        #: Set while Blender quits with a journal: unfinished jobs stay as they were, to be resumed.
        self.resumable_stop = False
        self._adopted = adopted
        self._records: dict[str, JobRecord] = {}
        #: Jobs submitted since the loop's last turn: queued, not yet written (see :meth:`admit`).
        self._arrivals: dict[str, JobRecord] = {}
        self.scheduler = Scheduler(self._start_record)
        self.offline = OfflineQueue(self)
        self._remote_cancels: set[asyncio.Task[None]] = set()

    @property
    def factories(self) -> dict[str, ClientFactory]:
        return self.pool.factories

    @property
    def configs(self) -> dict[str, BackendConfig]:
        return self.pool.configs

    def reset(self) -> None:
        """After the loop stopped: forget clients, the queue and the parked jobs (records stay for late waiters)."""
        self.pool.forget()
        self.scheduler = Scheduler(self._start_record)
        self.offline = OfflineQueue(self)
        self._remote_cancels = set()
        self._arrivals = {}  # written at stop (cancel_all); after a loop that died, the next arrival starts afresh

    # --- clients (the pool's; kept here for the job paths that need them) --------------------------------------------
    def client(self, name: str) -> BackendClient:
        return self.pool.client(name)

    def set_backend_state(self, name: str, state: str, message: str = "") -> None:
        self.pool.set_state(name, state, message)

    def reconfigure(self, config: BackendConfig) -> None:
        self.scheduler.set_limit(config.name, config.concurrency)
        self.pool.retire(config.name)

    # --- queueing -------------------------------------------------------------------------------------------------
    def enqueue(self, job: Job, handle: JobHandle, resume: bool = False) -> None:
        rec = self.register(job, handle, resume)
        if rec is not None:
            self.schedule(rec)

    def admit(self, job: Job, handle: JobHandle) -> None:
        """A new job from ``Runtime.submit``: queued at once (it can be moved or cancelled), journaled with every job
        arriving in the same turn of the loop (a storyboard's shots are one commit), started only once written."""
        if self.journal is None:  # nothing to write together: queue it now
            self.enqueue(job, handle)
            return
        rec = self._records[job.id] = JobRecord(job=job, handle=handle)
        self._arrivals[job.id] = rec
        if len(self._arrivals) == 1:
            asyncio.get_running_loop().call_soon(self._admit_arrivals)
        self.scheduler.enqueue(job.backend, job.id, job.priority, rec)

    def _admit_arrivals(self) -> None:
        """Write the jobs that arrived since the last turn (one commit); those whose turn came meanwhile start."""
        arrivals, self._arrivals = list(self._arrivals.values()), {}
        for rec in self._journal_new(arrivals):
            self.notice("job_queued", rec.job)
            if rec.holds_slot and rec.task is None:
                self._run_task(rec)

    def register(self, job: Job, handle: JobHandle, resume: bool = False) -> JobRecord | None:
        """Know a job (and journal a new one) without queueing it yet; None if it ended at once (journal refused)."""
        rec = JobRecord(job=job, handle=handle, resume=resume)
        self._records[job.id] = rec
        return rec if resume or self._journal_new([rec]) else None

    def register_all(self, items: list[tuple[Job, JobHandle]]) -> list[JobRecord]:
        """:meth:`register` for many new jobs, journaled in one commit; those the journal refused are left out."""
        recs = [self._records.setdefault(job.id, JobRecord(job=job, handle=handle)) for job, handle in items]
        return self._journal_new(recs)

    async def run_batch(self, items: list[tuple[Job, JobHandle]], parallel: bool, stop_on_error: bool) -> None:
        """Queue a batch: all at once, or each when the one before it ended; ``stop_on_error`` cancels the rest."""
        await run_batch(self, items, parallel, stop_on_error)

    def adopt(self, job: Job) -> JobHandle:
        """Queue a job created on the loop thread (a pipeline stage); its handle joins the job list."""
        handle = JobHandle(self.host, job)
        self._adopted(handle)
        self.enqueue(job, handle)
        return handle

    def schedule(self, rec: JobRecord) -> None:
        job = rec.job
        if job.done:
            return
        self.notice("job_queued", job)
        self.scheduler.enqueue(job.backend, job.id, job.priority, rec)

    def _start_record(self, rec: JobRecord) -> None:
        rec.holds_slot = True
        if rec.job.id not in self._arrivals:  # one still being written starts once it is (see _admit_arrivals)
            self._run_task(rec)

    def _run_task(self, rec: JobRecord) -> None:
        rec.task = asyncio.get_running_loop().create_task(self._run(rec), name=f"job-{rec.job.id[:8]}")

    def release(self, rec: JobRecord) -> None:
        if rec.holds_slot:
            rec.holds_slot = False
            self.scheduler.finished(rec.job.backend, rec.job.id)

    def record_of(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    # --- running --------------------------------------------------------------------------------------------------
    def job_folder(self, rec: JobRecord) -> Path:
        """The job's output folder, made once (``JobContext.output_dir``)."""
        path = self.output_root / rec.job.backend / rec.job.id
        path.mkdir(parents=True, exist_ok=True)
        rec.output_dir = path
        return path

    def post(self, message: Message) -> None:
        self.outbox.post(message)

    async def _run(self, rec: JobRecord) -> None:
        rec.started = True
        job = rec.job
        ctx = JobContext(self, rec)
        client: BackendClient | None = None
        try:
            client = self.client(job.backend)
            if rec.resume:
                remove_partials(self.output_root / job.backend / job.id)  # a download killed with the last session
                outputs = await client.resume(job, ctx)
            else:
                try:
                    job.remote_id = await client.submit(job, ctx) or job.remote_id
                except BackendUnavailableError as exc:
                    if self.offline_wait > 0 and job.state is JobState.QUEUED and rec.cancel_reason is None:
                        self.offline.park(rec, exc)
                        return
                    raise
                if job.state is JobState.QUEUED:
                    self.move(rec, JobState.SUBMITTED)
                    self.post(Progressed(rec.handle, job.snapshot()))
                outputs = await client.get_result(job, ctx)
            self.finish(rec, JobState.SUCCEEDED, outputs=outputs)
        except asyncio.CancelledError:
            reason = rec.cancel_reason or STOPPED
            if client is not None and rec.cancel_reason is not None:
                task = asyncio.get_running_loop().create_task(self._cancel_remote(client, job))
                self._remote_cancels.add(task)
                task.add_done_callback(self._remote_cancels.discard)
            self.finish(rec, JobState.CANCELLED, error=JobError.from_exception(JobCancelledError(reason)))
        except MovieDirectorError as exc:
            log.info("job %s failed: %s", job.id, exc)
            self.finish(rec, JobState.FAILED, error=JobError.from_exception(exc))
        except Exception as exc:
            log.exception("job %s crashed", job.id)
            self.finish(rec, JobState.FAILED, error=JobError.from_exception(exc))

    def move(self, rec: JobRecord, state: JobState, note: str = "") -> None:
        """Change a job's state, writing it to the journal first (a crash in between loses nothing). A journal that
        cannot take it raises :class:`JournalWriteError`, which ends the job through ``_run``'s handlers."""
        if not (self.resumable_stop and state is JobState.CANCELLED):
            self.writes.change(rec, state, note)
        rec.job.transition(state)

    def _journal_new(self, recs: list[JobRecord]) -> list[JobRecord]:
        """Journal new jobs in one commit and return those written; one the journal refused ends failed at once
        (it was never queued), saying why."""
        written, refused = self.writes.new(recs)
        for rec, exc in refused:
            log.warning("job %s: %s", rec.job.id, exc)
            self.scheduler.remove(rec.job.backend, rec.job.id)  # an admitted one already had its place
            self.finish(rec, JobState.FAILED, error=JobError.from_exception(exc), journal=False)
        return written

    def finish(
        self,
        rec: JobRecord,
        state: JobState,
        *,
        outputs: JobOutputs | None = None,
        error: JobError | None = None,
        journal: bool = True,
    ) -> None:
        """End a job: journal, final snapshot to the home thread and to loop-side waiters, slot released. Never
        leaves the job live: if the journal refuses the final state, the job still ends (failed, saying why)."""
        job = rec.job
        if job.done:
            return
        if outputs is not None:
            if outputs.text:  # a server that echoes what it was sent may echo the key
                outputs = outputs.model_copy(update={"text": redact(outputs.text)})
            job.outputs = outputs
        job.error = error
        if state is JobState.SUCCEEDED and job.progress.fraction != 1.0:
            job.progress = job.progress.model_copy(update={"fraction": 1.0})
        remove_partials(rec.output_dir or self.output_root / job.backend / job.id)  # no .part-* outlives its job
        try:
            if journal:
                self.move(rec, state)
            else:
                job.transition(state)
        except JournalWriteError as exc:
            log.warning("job %s: %s", job.id, exc)
            job.error = JobError.from_exception(exc)
            job.outputs = JobOutputs()
            try:  # the plain failure usually fits where the full result did not
                self.writes.change(rec, JobState.FAILED, "journal error")
            except JournalWriteError:
                pass
            job.transition(JobState.FAILED)
        self.offline.forget(rec)
        final = rec.final = job.snapshot()
        # The event first: its subscribers (the placer registry) have run by the time a wait() returns.
        self.notice("job_finished", job, final)
        self.post(Finished(rec.handle, final))
        for fut in rec.waiters:
            if not fut.done():
                fut.set_result(final)
        rec.waiters.clear()
        self.release(rec)
        self._prune_records()
        self.done_signal.settle(rec.handle, final)  # last: a waiting thread wakes to find everything settled

    def notice(self, kind: str, job: Job, snapshot: Job | None = None) -> None:
        if self.outbox.subscribers:
            event = RuntimeEvent(
                kind, backend=job.backend, job_id=job.id, state=job.state.value, job=snapshot or job.snapshot()
            )
            self.outbox.notice(event)

    # --- cancelling -------------------------------------------------------------------------------------------------
    async def _cancel_remote(self, client: BackendClient, job: Job) -> None:
        try:
            async with asyncio.timeout(REMOTE_CANCEL_TIMEOUT):
                await client.cancel(job)
        except Exception as exc:  # the job is already cancelled locally; the server may still finish it
            log.warning("asking %s to cancel job %s failed: %s", job.backend, job.id, exc)

    def _stop_task(self, rec: JobRecord, reason: str | None) -> None:
        """Cancel a job's task. One cancelled before its first step never runs ``_run``'s handlers, so it is
        finished here: no job may hang."""
        assert rec.task is not None
        rec.task.cancel()
        if not rec.started:
            self.finish(rec, JobState.CANCELLED, error=JobError.from_exception(JobCancelledError(reason or STOPPED)))

    def cancel(self, job_id: str, reason: str) -> None:
        rec = self._records.get(job_id)
        if rec is None or rec.job.done:
            return
        if rec.task is None:
            self.scheduler.remove(rec.job.backend, job_id)
            self.finish(rec, JobState.CANCELLED, error=JobError.from_exception(JobCancelledError(reason)))
        elif rec.cancel_reason is None:
            rec.cancel_reason = reason
            self._stop_task(rec, reason)

    async def cancel_all(self, cancel_remote: bool, budget: float) -> None:
        if self._arrivals:  # written first: a job submitted as Blender quits is resumed at the next start
            self._admit_arrivals()
        tasks = []
        for rec in list(self._records.values()):
            if rec.job.done:
                continue
            if rec.task is None:
                self.cancel(rec.job.id, STOPPED)
            else:
                if cancel_remote:
                    rec.cancel_reason = STOPPED
                self._stop_task(rec, STOPPED)
                tasks.append(rec.task)
        if tasks:
            await asyncio.wait(tasks, timeout=budget)
        if cancel_remote and self._remote_cancels:  # the servers' "please stop" requests, not every task
            await asyncio.wait(list(self._remote_cancels), timeout=budget)

    # --- waiting on the loop ----------------------------------------------------------------------------------------
    def wait_for(self, job_id: str) -> asyncio.Future[Job] | None:
        """A loop future resolved with the job's final snapshot; None when the job is not known here."""
        rec = self._records.get(job_id)
        return None if rec is None else self._future(rec)

    def _future(self, rec: JobRecord) -> asyncio.Future[Job]:
        fut: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        if rec.final is not None:
            fut.set_result(rec.final)
        else:
            rec.waiters.append(fut)
        return fut

    def _prune_records(self) -> None:
        if len(self._records) <= 4 * KEEP_FINISHED:
            return
        done = [k for k, r in self._records.items() if r.final is not None]
        for key in done[: len(done) - KEEP_FINISHED]:
            del self._records[key]

    # --- ownership ------------------------------------------------------------------------------------------------
    def keep_alive(self, lease: float) -> None:
        """Start renewing this session's lease (loop task, ended by the loop's stop)."""
        asyncio.get_running_loop().create_task(self._keep_alive(lease), name="md-journal-lease")

    async def _keep_alive(self, lease: float) -> None:
        while self.journal is not None:
            await asyncio.sleep(lease / 3)
            try:
                self.journal.heartbeat()
                self.take_over_orphans(lease)
            except Exception as exc:  # a journal hiccup must not end the loop's work
                log.warning("renewing the session in the journal failed: %s", exc)

    def take_over_orphans(self, lease: float) -> None:
        """Unfinished jobs whose session is gone (another Blender that quit or crashed) become ours and resume."""
        assert self.journal is not None
        for job in self.journal.unfinished():
            if job.id in self._records or job.backend not in self.factories or not self.journal.claim(job.id, lease):
                continue
            log.info("job %s: its session is gone; this one takes it over", job.id)
            handle = JobHandle(self.host, job)
            self._adopted(handle)
            self.enqueue(job, handle, job.state is not JobState.QUEUED)

    # --- pipelines ------------------------------------------------------------------------------------------------
    def start_pipeline(self, spec: PipelineSpec, handle: PipelineHandle, restored: bool) -> None:
        run = PipelineRun(self, spec, handle)
        handle.run = run
        if restored:
            run.reattach()
        else:
            run.advance()
