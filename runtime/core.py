"""The runtime: one loop thread, the backends' clients, the job queue, and the outbox back to the caller.

Plain Python: this module never imports bpy. Every public method is safe to call from the *home* thread (the thread
that created the runtime: Blender's main thread, or a script's); job state lives on the loop thread and comes back as
snapshots through :meth:`Runtime.pump`. The runtime starts itself on first use, so enabling the add-on costs nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from . import bridge
from .backend import BackendClient, BackendConfig, HealthInfo, NetworkPolicy
from .bridge import BatchHandle, JobHandle, Outbox, RuntimeEvent
from .cache import TtlCache
from .context import JobContext
from .errors import BackendUnavailableError, InvalidRequestError, JobCancelledError, MovieDirectorError
from .jobs import Job, JobError, JobOutputs, JobState, Progress
from .journal import Journal
from .loop import LoopThread
from .pipeline import PipelineHandle, PipelineRun, PipelineSpec, check_acyclic
from .scheduler import Scheduler

log = logging.getLogger(__name__)
T = TypeVar("T")

ClientFactory = Callable[[BackendConfig, NetworkPolicy], BackendClient]

#: How long a cancelled job's "please stop" request to its server may take before we give up on it.
REMOTE_CANCEL_TIMEOUT = 5.0
_STOPPED = "Movie Director stopped before the job finished"
#: Finished jobs kept in :meth:`Runtime.jobs` (the sidebar's list) before the oldest are forgotten.
KEEP_FINISHED = 100


@dataclass(frozen=True)
class JobSpec:
    """One job to submit, as data (used by batches)."""

    backend: str
    kind: str
    request: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0


@dataclass(eq=False)
class _Record:
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


class Runtime:
    def __init__(
        self,
        *,
        output_root: str | Path | None = None,
        network: NetworkPolicy | None = None,
        pump_budget: float = 0.008,
        journal: Journal | str | Path | None = None,
        offline_wait: float = 0.0,
        cache_dir: str | Path | None = None,
    ) -> None:
        """``journal``: a path (or Journal) that makes jobs survive a restart. ``offline_wait``: how long a job whose
        server is unreachable waits (visibly, "waiting for server") for it to come back before it fails; 0 fails at
        once. ``cache_dir``: where discovery results are cached between sessions (memory only when None)."""
        self.loop_thread = LoopThread()
        self.outbox = Outbox()
        self.network = network or NetworkPolicy()
        self.output_root = Path(output_root) if output_root else Path(tempfile.gettempdir()) / "movie_director"
        self.pump_budget = pump_budget
        self.backend_states: dict[str, tuple[str, str]] = {}
        self._home = threading.get_ident()
        #: Notified by the loop whenever a job ends (one condition for all handles: no lock per job).
        self.done_condition = threading.Condition()
        self._factories: dict[str, ClientFactory] = {}
        self._configs: dict[str, BackendConfig] = {}
        self._handles: dict[str, JobHandle] = {}
        # Loop-side state (touched only on the loop thread, or before it starts).
        self._clients: dict[str, BackendClient] = {}
        self._records: dict[str, _Record] = {}
        self._scheduler = Scheduler(self._start_record)
        self._lock = threading.Lock()
        self.journal = Journal(journal) if isinstance(journal, (str, Path)) else journal
        self.offline_wait = offline_wait
        self.cache = TtlCache(cache_dir)
        self._waiting: dict[str, list[_Record]] = {}
        self._pipelines: dict[str, PipelineHandle] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._resumable_stop = False

    # --- life cycle ---------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.loop_thread.running

    def start(self) -> None:
        """Start the loop thread (idempotent)."""
        with self._lock:
            if self.loop_thread.running:
                return
            self.loop_thread.start()
            self.loop_thread.add_closer(self._close_clients)
            self._resumable_stop = False
            for name, cfg in self._configs.items():
                self.loop_thread.call_soon(self._scheduler.set_limit, name, cfg.concurrency)
            if self.journal is not None:
                self._restore()

    def _restore(self) -> None:
        """Bring back the journal's unfinished jobs: queued ones queue again; submitted or running ones are
        reconciled with their server (resumed, collected, or failed with a reason)."""
        assert self.journal is not None
        for job in self.journal.unfinished():
            if job.id in self._handles or job.backend not in self._factories:
                continue
            job.progress = Progress(stage="resuming" if job.state is not JobState.QUEUED else "queued")
            handle = JobHandle(self, job)
            self._handles[job.id] = handle
            resume = job.state is not JobState.QUEUED
            self.loop_thread.call_soon(self._enqueue, job, handle, resume)
        for data in self.journal.unfinished_pipelines():
            try:
                spec = PipelineSpec.model_validate_json(data)
            except ValueError:
                log.warning("a pipeline in the journal could not be read; it was left there")
                continue
            if spec.id not in self._pipelines:
                handle_p = PipelineHandle(self, spec)
                self._pipelines[spec.id] = handle_p
                self.loop_thread.call_soon(self._start_pipeline, spec, handle_p, True)

    def stop(self, timeout: float = 1.0, *, cancel_remote: bool = False) -> None:
        """Cancel all work (and, with ``cancel_remote``, ask servers to stop it), close sessions, join the thread.

        With a journal and without ``cancel_remote`` (Blender quitting), unfinished jobs stay in the journal as they
        were, and the next start resumes them; with ``cancel_remote`` (the user disabled the add-on) they end
        cancelled for good."""
        with self._lock:
            if not self.loop_thread.running:
                return
            self._resumable_stop = self.journal is not None and not cancel_remote
            try:
                self.loop_thread.submit(self._cancel_all(cancel_remote, timeout / 3)).result(timeout / 2)
            except Exception:
                log.exception("cancelling jobs at stop failed")
            self.loop_thread.stop(timeout / 2)
            self._clients.clear()
            self._scheduler = Scheduler(self._start_record)
            self._waiting.clear()
            self._probes.clear()

    def is_home_thread(self) -> bool:
        return threading.get_ident() == self._home

    def _ensure_started(self) -> None:
        if not self.loop_thread.running:
            self.start()

    # --- backends -----------------------------------------------------------------------------------------------
    def register_backend(self, name: str, factory: ClientFactory, config: BackendConfig | None = None) -> None:
        """Make a backend known. Its client is built on the loop the first time a job or a health check needs it."""
        self._factories[name] = factory
        self.configure(config or BackendConfig(name=name))

    def configure(self, config: BackendConfig) -> None:
        """Apply new settings live: the next job uses a fresh client; the concurrency limit changes at once."""
        if config.name not in self._factories:
            raise InvalidRequestError(f"Unknown backend {config.name!r}")
        self._configs[config.name] = config
        if self.running:
            self.loop_thread.call_soon(self._reconfigure, config)

    def config(self, name: str) -> BackendConfig:
        return self._configs[name]

    @property
    def backends(self) -> list[str]:
        return list(self._factories)

    def _reconfigure(self, config: BackendConfig) -> None:
        self._scheduler.set_limit(config.name, config.concurrency)
        old = self._clients.pop(config.name, None)
        if old is not None:
            asyncio.get_running_loop().create_task(old.close())

    def client(self, name: str) -> BackendClient:
        """The backend's client (loop thread only); built on first use."""
        client = self._clients.get(name)
        if client is None:
            if name not in self._factories:
                raise InvalidRequestError(f"Unknown backend {name!r}", hint="Register it with register_backend().")
            client = self._clients[name] = self._factories[name](self._configs[name], self.network)

            def report(state: str, message: str = "", backend: str = name) -> None:
                self.set_backend_state(backend, state, message)

            client.report_state = report
            client.cache = self.cache
        return client

    async def _close_clients(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.close()
            except Exception:
                log.exception("closing %s failed", client.name)

    def set_backend_state(self, name: str, state: str, message: str = "") -> None:
        """Record a backend's connection state (any thread) and tell subscribers when it changed."""
        if self.backend_states.get(name) == (state, message):
            return
        self.backend_states[name] = (state, message)
        self.outbox.notice(RuntimeEvent("backend_state", backend=name, state=state, message=message))

    def check_health(self, name: str, timeout: float = 10.0) -> concurrent.futures.Future[HealthInfo]:
        """Ask the backend whether it answers; the result also updates its connection state."""
        return self.call(self._health(name, timeout))

    async def _health(self, name: str, timeout: float) -> HealthInfo:
        self.set_backend_state(name, "connecting")
        try:
            async with asyncio.timeout(timeout):
                info = await self.client(name).health()
        except TimeoutError:
            info = HealthInfo(ok=False, message=f"no answer within {timeout:.0f} s")
        except MovieDirectorError as exc:
            info = HealthInfo(ok=False, message=str(exc))
        except Exception as exc:  # a broken client must still answer "not connected", never hang the button
            log.exception("health check of %s crashed", name)
            info = HealthInfo(ok=False, message=f"{type(exc).__name__}: {exc}")
        self.set_backend_state(name, "connected" if info.ok else "disconnected", info.message)
        return info

    # --- jobs -----------------------------------------------------------------------------------------------------
    def submit(
        self,
        backend: str,
        kind: str,
        request: Mapping[str, Any] | None = None,
        *,
        priority: int = 0,
        on_progress: Callable[[Job], Any] | None = None,
        on_complete: Callable[[Job], Any] | None = None,
        on_error: Callable[[Job], Any] | None = None,
    ) -> JobHandle:
        """Queue a job and return its handle at once. Callbacks run on the thread that pumps."""
        if backend not in self._factories:
            raise InvalidRequestError(
                f"Unknown backend {backend!r}", hint=f"Known backends: {', '.join(self._factories)}"
            )
        job, handle = self._new_handle(backend, kind, request, priority, on_progress, on_complete, on_error)
        self._ensure_started()
        self.loop_thread.call_soon(self._enqueue, job, handle)
        return handle

    def _new_handle(
        self,
        backend: str,
        kind: str,
        request: Mapping[str, Any] | None,
        priority: int,
        on_progress: Callable[[Job], Any] | None = None,
        on_complete: Callable[[Job], Any] | None = None,
        on_error: Callable[[Job], Any] | None = None,
    ) -> tuple[Job, JobHandle]:
        job = Job(backend=backend, kind=kind, request=dict(request or {}), priority=priority)
        handle = JobHandle(self, job)
        if on_progress:
            handle.on_progress(on_progress)
        if on_complete:
            handle.on_complete(on_complete)
        if on_error:
            handle.on_error(on_error)
        self._handles[job.id] = handle
        self._prune_handles()
        # The loop owns `job` from here on; the handle keeps its own snapshot.
        return job, handle

    def submit_batch(
        self, specs: Iterable[JobSpec], *, parallel: bool = True, stop_on_error: bool = False
    ) -> BatchHandle:
        """Submit many jobs at once. In order (``parallel=False``) each starts when the one before it has ended;
        with ``stop_on_error`` the first failure cancels every job of the batch that has not finished."""
        handles = []
        jobs = []
        for spec in specs:
            if spec.backend not in self._factories:
                raise InvalidRequestError(f"Unknown backend {spec.backend!r}")
            job, handle = self._new_handle(spec.backend, spec.kind, spec.request, spec.priority)
            handles.append(handle)
            jobs.append(job)
        self._ensure_started()
        self.loop_thread.submit(self._run_batch(jobs, handles, parallel, stop_on_error))
        return BatchHandle(handles)

    async def _run_batch(self, jobs: list[Job], handles: list[JobHandle], parallel: bool, stop_on_error: bool) -> None:
        recs = [self._register(job, handle) for job, handle in zip(jobs, handles, strict=True)]

        def stop_rest(failed: Job) -> None:
            for other in recs:
                self._cancel(other.job.id, f"Cancelled because job {failed.id[:8]} of its batch did not succeed")

        if not parallel:
            for rec in recs:
                self._schedule(rec)
                final = await self._wait_record(rec)
                if stop_on_error and final.state is not JobState.SUCCEEDED:
                    return stop_rest(final)
            return None
        for rec in recs:
            self._schedule(rec)
        pending = {self._wait_record(rec) for rec in recs}
        while pending and stop_on_error:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                if fut.result().state is not JobState.SUCCEEDED:
                    return stop_rest(fut.result())
        return None

    def _enqueue(self, job: Job, handle: JobHandle, resume: bool = False) -> None:
        self._schedule(self._register(job, handle, resume))

    def _register(self, job: Job, handle: JobHandle, resume: bool = False) -> _Record:
        rec = _Record(job=job, handle=handle, resume=resume)
        self._records[job.id] = rec
        if self.journal is not None and not resume:
            self.journal.record(job, note="queued")
        return rec

    def _schedule(self, rec: _Record) -> None:
        job = rec.job
        if job.done:
            return
        self._notice("job_queued", job)
        self._scheduler.enqueue(job.backend, job.id, job.priority, rec)

    def _start_record(self, rec: _Record) -> None:
        rec.holds_slot = True
        rec.task = asyncio.get_running_loop().create_task(self._run(rec), name=f"job-{rec.job.id[:8]}")

    def _release(self, rec: _Record) -> None:
        if rec.holds_slot:
            rec.holds_slot = False
            self._scheduler.finished(rec.job.backend, rec.job.id)

    def _stop_task(self, rec: _Record, reason: str | None) -> None:
        """Cancel a job's task. One cancelled before its first step never runs ``_run``'s handlers, so it is
        finished here: no job may hang."""
        assert rec.task is not None
        rec.task.cancel()
        if not rec.started:
            self._finish(rec, JobState.CANCELLED, error=JobError.from_exception(JobCancelledError(reason or _STOPPED)))

    async def _run(self, rec: _Record) -> None:
        rec.started = True
        job = rec.job
        ctx = JobContext(self, rec)
        client: BackendClient | None = None
        try:
            client = self.client(job.backend)
            if rec.resume:
                outputs = await client.resume(job, ctx)
            else:
                try:
                    job.remote_id = await client.submit(job, ctx) or job.remote_id
                except BackendUnavailableError as exc:
                    if self.offline_wait > 0 and job.state is JobState.QUEUED and rec.cancel_reason is None:
                        self._park(rec, exc)
                        return
                    raise
                if job.state is JobState.QUEUED:
                    self._move(rec, JobState.SUBMITTED)
                    self.outbox.post(bridge.PROGRESS, rec.handle, None)
                outputs = await client.get_result(job, ctx)
            self._finish(rec, JobState.SUCCEEDED, outputs=outputs)
        except asyncio.CancelledError:
            reason = rec.cancel_reason or _STOPPED
            if client is not None and rec.cancel_reason is not None:
                asyncio.get_running_loop().create_task(self._cancel_remote(client, job))
            self._finish(rec, JobState.CANCELLED, error=JobError.from_exception(JobCancelledError(reason)))
        except MovieDirectorError as exc:
            log.info("job %s failed: %s", job.id, exc)
            self._finish(rec, JobState.FAILED, error=JobError.from_exception(exc))
        except Exception as exc:
            log.exception("job %s crashed", job.id)
            self._finish(rec, JobState.FAILED, error=JobError.from_exception(exc))

    def _move(self, rec: _Record, state: JobState, note: str = "") -> None:
        """Change a job's state, writing it to the journal first (a crash in between loses nothing)."""
        if self.journal is not None and not (self._resumable_stop and state is JobState.CANCELLED):
            self.journal.record(rec.job, state, note)
        rec.job.transition(state)

    # --- offline queue --------------------------------------------------------------------------------------------
    def _park(self, rec: _Record, error: BackendUnavailableError) -> None:
        """The server is unreachable before anything was sent: wait for it (visibly) instead of failing."""
        job = rec.job
        rec.task, rec.started = None, False
        rec.parked_at = rec.parked_at or time.monotonic()
        self._release(rec)
        job.progress = job.progress.model_copy(update={"stage": "waiting for server", "message": error.message})
        self.outbox.post(bridge.PROGRESS, rec.handle, None)
        self._waiting.setdefault(job.backend, []).append(rec)
        self.set_backend_state(job.backend, "offline", error.message)
        probe = self._probes.get(job.backend)
        if probe is None or probe.done():
            self._probes[job.backend] = asyncio.get_running_loop().create_task(self._probe(job.backend))

    async def _probe(self, backend: str) -> None:
        """Ask the server's health with backoff until it answers, then send every waiting job on its way."""
        delay = 0.25
        while self._waiting.get(backend):
            await asyncio.sleep(delay * random.uniform(0.75, 1.0))
            delay = min(delay * 2, 30.0)
            self._expire_waiting(backend)
            try:
                ok = (await asyncio.wait_for(self.client(backend).health(), 10.0)).ok
            except Exception:  # a health check that crashes or hangs means "not yet"
                ok = False
            if ok:
                self.set_backend_state(backend, "connected", "")
                waiting, self._waiting[backend] = self._waiting.get(backend, []), []
                for rec in waiting:
                    if not rec.job.done:
                        rec.job.progress = rec.job.progress.model_copy(update={"stage": "queued", "message": ""})
                        self._schedule(rec)
                return

    def _expire_waiting(self, backend: str) -> None:
        now = time.monotonic()
        for rec in list(self._waiting.get(backend, [])):
            if rec.parked_at is not None and now - rec.parked_at > self.offline_wait:
                error = BackendUnavailableError(
                    f"The server did not come back within {self.offline_wait:.0f} s", backend=backend
                )
                self._finish(rec, JobState.FAILED, error=JobError.from_exception(error))

    async def _cancel_remote(self, client: BackendClient, job: Job) -> None:
        try:
            async with asyncio.timeout(REMOTE_CANCEL_TIMEOUT):
                await client.cancel(job)
        except Exception as exc:  # the job is already cancelled locally; the server may still finish it
            log.warning("asking %s to cancel job %s failed: %s", job.backend, job.id, exc)

    def _finish(
        self, rec: _Record, state: JobState, *, outputs: JobOutputs | None = None, error: JobError | None = None
    ) -> None:
        job = rec.job
        if job.done:
            return
        if outputs is not None:
            job.outputs = outputs
        job.error = error
        if state is JobState.SUCCEEDED and job.progress.fraction != 1.0:
            job.progress = job.progress.model_copy(update={"fraction": 1.0})
        self._move(rec, state)
        waiting = self._waiting.get(job.backend)
        if waiting and rec in waiting:
            waiting.remove(rec)
        final = rec.final = job.snapshot()
        self.outbox.post(bridge.DONE, rec.handle, final)
        for fut in rec.waiters:
            if not fut.done():
                fut.set_result(final)
        rec.waiters.clear()
        self._release(rec)
        self._notice("job_finished", job)
        self._prune_records()
        with self.done_condition:  # last: a waiting thread wakes to find everything settled
            rec.handle._final = final
            self.done_condition.notify_all()

    def _notice(self, kind: str, job: Job) -> None:
        if self.outbox.subscribers:
            self.outbox.notice(RuntimeEvent(kind, backend=job.backend, job_id=job.id, state=job.state.value))

    def cancel(self, job_id: str, reason: str = "Cancelled by the user") -> None:
        """Idempotent; safe from any thread."""
        if self.running:
            self.loop_thread.call_soon(self._cancel, job_id, reason)

    def _cancel(self, job_id: str, reason: str) -> None:
        rec = self._records.get(job_id)
        if rec is None or rec.job.done:
            return
        if rec.task is None:
            self._scheduler.remove(rec.job.backend, job_id)
            self._finish(rec, JobState.CANCELLED, error=JobError.from_exception(JobCancelledError(reason)))
        elif rec.cancel_reason is None:
            rec.cancel_reason = reason
            self._stop_task(rec, reason)

    async def _cancel_all(self, cancel_remote: bool, budget: float) -> None:
        reason = _STOPPED
        tasks = []
        for rec in list(self._records.values()):
            if rec.job.done:
                continue
            if rec.task is None:
                self._cancel(rec.job.id, reason)
            else:
                if cancel_remote:
                    rec.cancel_reason = reason
                self._stop_task(rec, reason)
                tasks.append(rec.task)
        if tasks:
            await asyncio.wait(tasks, timeout=budget)
        if cancel_remote:
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=budget)

    def cancel_all(self) -> None:
        for job_id, handle in list(self._handles.items()):
            if not handle.done:
                self.cancel(job_id)

    def _wait_record(self, rec: _Record) -> asyncio.Future[Job]:
        fut: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
        if rec.final is not None:
            fut.set_result(rec.final)
        else:
            rec.waiters.append(fut)
        return fut

    def _loop_future(self, handle: JobHandle) -> asyncio.Future[Job]:
        rec = self._records.get(handle.id)
        if rec is None:
            fut: asyncio.Future[Job] = asyncio.get_running_loop().create_future()
            if handle._final is not None:
                fut.set_result(handle._final)
            else:
                fut.set_exception(RuntimeError("the job is not known to this loop"))
            return fut
        return self._wait_record(rec)

    def _prune_records(self) -> None:
        if len(self._records) <= 4 * KEEP_FINISHED:
            return
        done = [k for k, r in self._records.items() if r.final is not None]
        for key in done[: len(done) - KEEP_FINISHED]:
            del self._records[key]

    def _prune_handles(self) -> None:
        if len(self._handles) <= 2 * KEEP_FINISHED:
            return
        done = [k for k, h in list(self._handles.items()) if h.done]
        for key in done[: len(done) - KEEP_FINISHED]:
            del self._handles[key]

    # --- pipelines ------------------------------------------------------------------------------------------------
    def run_pipeline(self, spec: PipelineSpec) -> PipelineHandle:
        """Run a DAG of jobs (see runtime/pipeline.py); returns its handle at once."""
        check_acyclic(spec.stages)
        for stage in spec.stages:
            if stage.backend not in self._factories:
                raise InvalidRequestError(f"Stage {stage.id} uses an unknown backend {stage.backend!r}")
        handle = PipelineHandle(self, spec.model_copy(deep=True))
        self._pipelines[spec.id] = handle
        self._ensure_started()
        self.loop_thread.call_soon(self._start_pipeline, spec, handle, False)
        return handle

    def pipelines(self) -> list[PipelineHandle]:
        return list(self._pipelines.values())

    def _start_pipeline(self, spec: PipelineSpec, handle: PipelineHandle, restored: bool) -> None:
        run = PipelineRun(self, spec, handle)
        handle.run = run
        if restored:
            run.reattach()
        else:
            run.advance()

    def _adopt(self, job: Job) -> JobHandle:
        """Queue a job created on the loop thread (a pipeline stage); its handle joins the job list."""
        handle = JobHandle(self, job)
        self._handles[job.id] = handle
        self._enqueue(job, handle)
        return handle

    # --- queue control --------------------------------------------------------------------------------------------
    def pause(self, backend: str | None = None) -> None:
        """Hold queued jobs (all backends, or one); running jobs carry on."""
        self._ensure_started()
        self.loop_thread.call_soon(self._scheduler.pause, backend)

    def resume(self, backend: str | None = None) -> None:
        self._ensure_started()
        self.loop_thread.call_soon(self._scheduler.resume, backend)

    def set_concurrency(self, backend: str, limit: int) -> None:
        """Change how many jobs of one backend run at once, live."""
        if limit < 1:
            raise InvalidRequestError(f"Concurrency must be at least 1, not {limit}", backend=backend)
        self.configure(self._configs[backend].model_copy(update={"concurrency": limit}))

    def stats(self, timeout: float = 2.0) -> dict[str, dict[str, Any]]:
        """Active and queued jobs per backend."""
        if not self.running:
            return {}

        async def read() -> dict[str, dict[str, Any]]:
            return self._scheduler.stats()

        return self.call(read()).result(timeout)

    # --- the home side ----------------------------------------------------------------------------------------------
    def pump(self, budget: float | None = None) -> int:
        """Run pending callbacks on this thread; never raises. Returns how many events were delivered."""
        try:
            return self.outbox.pump(self.pump_budget if budget is None else budget)
        except Exception:  # a bug in the pump itself must not break Blender's timer
            log.exception("the Movie Director pump failed")
            return 0

    def jobs(self) -> list[JobHandle]:
        """Handles of recent jobs, oldest first."""
        return list(self._handles.values())  # one C-level copy: safe while the loop thread adds stage handles

    def handle(self, job_id: str) -> JobHandle | None:
        return self._handles.get(job_id)

    def has_live_jobs(self) -> bool:
        # list(): the loop thread may add a pipeline stage's handle meanwhile
        return any(not h.done for h in list(self._handles.values())) or len(self.outbox) > 0

    def forget(self, job_id: str) -> None:
        self._handles.pop(job_id, None)

    def subscribe(
        self, callback: Callable[[RuntimeEvent], Any], kinds: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Call ``callback(event)`` on the pumping thread for runtime events; returns an unsubscribe function."""
        entry = (callback, frozenset(kinds) if kinds is not None else None)
        self.outbox.subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self.outbox.subscribers:
                self.outbox.subscribers.remove(entry)

        return unsubscribe

    def call(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run any coroutine on the loop (starting it if needed)."""
        self._ensure_started()
        return self.loop_thread.submit(coro)
