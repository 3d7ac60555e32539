"""The runtime's front: the main-thread API (start/stop, submit, cancel, pump, jobs, subscribe, configure).

Plain Python: this module never imports bpy. The thread model, in one place:

- The *home* thread (the one that created the runtime: Blender's main thread, or a script's) calls the methods here.
  They never touch job state: they hand work to the loop (``loop_thread.call_soon``/``submit``) and return at once.
- The *loop* thread (``runtime/loop.py``) runs the :class:`~runtime.engine.Engine`, which owns the job records, the
  scheduler, the backends' clients and the journal writes.
- The only way back is the outbox (``runtime/outbox.py``): frozen, typed messages carrying job snapshots, drained by
  :meth:`Runtime.pump` on the home thread (a ``bpy.app.timers`` function in Blender; ``JobHandle.wait`` headless).

The runtime starts itself on first use, so enabling the add-on costs nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .backend import BackendConfig, HealthInfo, NetworkPolicy
from .bridge import BatchHandle, DoneSignal, JobHandle
from .cache import TtlCache
from .engine import KEEP_FINISHED, LEASE_S, ClientFactory, Engine
from .errors import InvalidRequestError, register_secret
from .jobs import Job, JobSpec
from .journal import Journal, open_journal
from .loop import LoopThread
from .outbox import Outbox, RuntimeEvent
from .pipeline import PipelineHandle, PipelineSpec, check_acyclic
from .placement import Placement
from .queue_control import QueueControl
from .requests import plain_request

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["ClientFactory", "JobSpec", "Runtime"]


class Runtime(QueueControl):
    """One loop thread, the backends' clients, the job queue, and the outbox back to the caller."""

    def __init__(
        self,
        *,
        output_root: str | Path | None = None,
        network: NetworkPolicy | None = None,
        pump_budget: float = 0.008,
        journal: Journal | str | Path | None = None,
        offline_wait: float = 0.0,
        cache_dir: str | Path | None = None,
        lease: float = LEASE_S,
    ) -> None:
        """``journal``: a path (or Journal) that makes jobs survive a restart (a corrupt one is moved aside and a
        fresh one started). ``offline_wait``: how long a job whose server is unreachable waits (visibly, "waiting
        for server") for it to come back before it fails; 0 fails at once. ``cache_dir``: where discovery results
        are cached between sessions (memory only when None). ``lease``: with a journal, this session owns the jobs
        it submits and renews that every third of ``lease`` seconds; another session sharing the journal shows none of
        them and takes one over only when its owner is gone (stopped, crashed, or silent for a whole lease)."""
        self.loop_thread = LoopThread()
        self.outbox = Outbox()
        self.pump_budget = pump_budget
        self._home = threading.get_ident()
        self._handles: dict[str, JobHandle] = {}
        self._pipelines: dict[str, PipelineHandle] = {}
        self._lock = threading.Lock()
        self.session = uuid.uuid4().hex
        self.lease = lease
        #: The handle of the job submitted last, however it was started (console, operator, script).
        self.last_handle: JobHandle | None = None
        self.paused_backends = set()
        self.engine = Engine(
            self,
            outbox=self.outbox,
            network=network or NetworkPolicy(),
            output_root=Path(output_root) if output_root else Path(tempfile.gettempdir()) / "movie_director",
            journal=open_journal(journal) if isinstance(journal, (str, Path)) else journal,
            offline_wait=offline_wait,
            cache=TtlCache(cache_dir),
            # A handle made on the loop (a pipeline stage, a job taken over) joins the list on the home thread.
            adopted=lambda handle: self.outbox.call(lambda: self._add_handle(handle)),
        )

    # --- shared settings (read by the loop) -------------------------------------------------------------------------
    @property
    def network(self) -> NetworkPolicy:
        return self.engine.network

    @property
    def output_root(self) -> Path:
        return self.engine.output_root

    @output_root.setter
    def output_root(self, value: str | Path) -> None:
        self.engine.output_root = Path(value)

    @property
    def journal(self) -> Journal | None:
        return self.engine.journal

    @property
    def backend_states(self) -> dict[str, tuple[str, str]]:
        return self.engine.pool.backend_states

    @property
    def done_signal(self) -> DoneSignal:
        return self.engine.done_signal

    @property
    def done_condition(self) -> threading.Condition:
        """The condition the loop notifies when a job ends while a thread sleeps in ``JobHandle.wait``."""
        return self.engine.done_signal.condition

    # --- life cycle ---------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.loop_thread.running

    def start(self) -> None:
        """Start the loop thread (idempotent); bring back the journal's unfinished jobs and pipelines."""
        with self._lock:
            if self.loop_thread.running:
                return
            self.loop_thread.start()
            self.loop_thread.add_closer(self.engine.pool.close_clients)
            self.engine.resumable_stop = False
            for name, cfg in self.engine.configs.items():
                self.loop_thread.call_soon(self.engine.scheduler.set_limit, name, cfg.concurrency)
            if self.journal is not None:
                try:
                    self.journal.begin_session(self.session)
                    self._restore(self.journal)
                    self.loop_thread.call_soon(self.engine.keep_alive, self.lease)
                except (sqlite3.Error, OSError) as exc:  # start anyway; each new job then fails saying why
                    log.warning(
                        "the job journal %s could not be read (%s); nothing was resumed", self.journal.path, exc
                    )

    def _restore(self, journal: Journal) -> None:
        """Queued jobs queue again; submitted or running ones are reconciled with their server (resumed, collected,
        or failed with a reason)."""
        for job in journal.unfinished():
            if job.id in self._handles or job.backend not in self.engine.factories:
                continue
            if not journal.claim(job.id, self.lease):
                continue  # another live session owns it
            job.progress = job.progress.model_copy(
                update={"stage": "queued" if job.state.value == "queued" else "resuming", "preview": None}
            )
            handle = JobHandle(self, job)
            self._handles[job.id] = handle
            self.loop_thread.call_soon(self.engine.enqueue, job, handle, job.state.value != "queued")
        for data in journal.unfinished_pipelines():
            try:
                spec = PipelineSpec.model_validate_json(data)
            except ValueError:
                log.warning("a pipeline in the journal could not be read; it was left there")
                continue
            if spec.id not in self._pipelines and journal.claim(spec.id, self.lease):
                handle_p = PipelineHandle(self, spec)
                self._pipelines[spec.id] = handle_p
                self.loop_thread.call_soon(self.engine.start_pipeline, spec, handle_p, True)

    def stop(self, timeout: float = 1.0, *, cancel_remote: bool = False) -> None:
        """Cancel all work (and, with ``cancel_remote``, ask servers to stop it), close sessions in parallel, join
        the thread, close the journal (it reopens on the next start).

        With a journal and without ``cancel_remote`` (Blender quitting), unfinished jobs stay in the journal as they
        were, and the next start resumes them; with ``cancel_remote`` (the user disabled the add-on) they end
        cancelled for good."""
        with self._lock:
            if self.loop_thread.running:
                engine = self.engine
                engine.resumable_stop = self.journal is not None and not cancel_remote
                end = time.monotonic() + timeout
                try:  # a quarter of the budget for jobs to end; the rest mostly for closing the clients
                    self.loop_thread.submit(engine.cancel_all(cancel_remote, timeout / 4)).result(timeout / 3)
                except Exception:
                    log.exception("cancelling jobs at stop failed")
                self.loop_thread.stop(max(0.1, end - time.monotonic()))
                engine.reset()
            if self.journal is not None:
                try:
                    self.journal.end_session()  # the next session may take our unfinished jobs over at once
                except Exception as exc:
                    log.warning("could not end the session in the journal: %s", exc)
                self.journal.close()

    def is_home_thread(self) -> bool:
        return threading.get_ident() == self._home

    def in_loop_thread(self) -> bool:
        return self.loop_thread.in_loop_thread()

    def _ensure_started(self) -> None:
        if not self.loop_thread.running:
            self.start()

    # --- backends -----------------------------------------------------------------------------------------------
    def register_backend(self, name: str, factory: ClientFactory, config: BackendConfig | None = None) -> None:
        """Make a backend known. Its client is built on the loop the first time a job or a health check needs it."""
        self.engine.factories[name] = factory
        self.configure(config or BackendConfig(name=name))

    def configure(self, config: BackendConfig) -> None:
        """Apply new settings live: the next job uses a fresh client; the concurrency limit changes at once. The key
        of any backend is a secret from now on: scrubbed from every message, log and journal entry."""
        if config.name not in self.engine.factories:
            raise InvalidRequestError(f"Unknown backend {config.name!r}")
        for secret in config.secrets():
            register_secret(secret)
        self.engine.configs[config.name] = config
        if self.running:
            self.loop_thread.call_soon(self.engine.reconfigure, config)

    def config(self, name: str) -> BackendConfig:
        return self.engine.configs[name]

    @property
    def backends(self) -> list[str]:
        return list(self.engine.factories)

    def client(self, name: str) -> Any:
        """The backend's client (loop thread only); built on first use."""
        return self.engine.client(name)

    def set_backend_state(self, name: str, state: str, message: str = "") -> None:
        """Record a backend's connection state (any thread) and tell subscribers when it changed."""
        self.engine.set_backend_state(name, state, message)

    def check_health(self, name: str, timeout: float = 10.0) -> concurrent.futures.Future[HealthInfo]:
        """Ask the backend whether it answers; the result also updates its connection state."""
        return self.call(self.engine.pool.health(name, timeout))

    # --- jobs -----------------------------------------------------------------------------------------------------
    def submit(
        self,
        backend: str,
        kind: str,
        request: Mapping[str, Any] | None = None,
        *,
        priority: int = 0,
        placement: Placement | None = None,
        on_progress: Callable[[Job], Any] | None = None,
        on_complete: Callable[[Job], Any] | None = None,
        on_error: Callable[[Job], Any] | None = None,
    ) -> JobHandle:
        """Queue a job and return its handle at once. Callbacks run on the thread that pumps. ``placement``: where
        the result lands in Blender (stored with the job). A request value that cannot be stored (not plain JSON
        data) is refused here, naming the parameter; numpy-like numbers are converted."""
        job, handle = self._new_handle(backend, kind, request, priority, placement)
        if on_progress:
            handle.on_progress(on_progress)
        if on_complete:
            handle.on_complete(on_complete)
        if on_error:
            handle.on_error(on_error)
        self._ensure_started()
        self.loop_thread.call_soon(self.engine.admit, job, handle)
        return handle

    def _new_handle(
        self, backend: str, kind: str, request: Mapping[str, Any] | None, priority: int, placement: Placement | None
    ) -> tuple[Job, JobHandle]:
        if backend not in self.engine.factories:
            raise InvalidRequestError(
                f"Unknown backend {backend!r}", hint=f"Known backends: {', '.join(self.engine.factories)}"
            )
        job = Job(backend=backend, kind=kind, request=plain_request(request), priority=priority, placement=placement)
        handle = JobHandle(self, job)
        self._add_handle(handle)
        self.last_handle = handle
        # The loop owns `job` from here on; the handle keeps its own snapshot.
        return job, handle

    def _add_handle(self, handle: JobHandle) -> None:
        self._handles[handle.id] = handle
        if len(self._handles) > 2 * KEEP_FINISHED:
            done = [k for k, h in list(self._handles.items()) if h.done]
            for key in done[: len(done) - KEEP_FINISHED]:
                del self._handles[key]

    def submit_batch(
        self, specs: Iterable[JobSpec], *, parallel: bool = True, stop_on_error: bool = False
    ) -> BatchHandle:
        """Submit many jobs at once. In order (``parallel=False``) each starts when the one before it has ended;
        with ``stop_on_error`` the first failure cancels every job of the batch that has not finished."""
        items = [self._new_handle(s.backend, s.kind, s.request, s.priority, s.placement) for s in specs]
        self._ensure_started()
        self.loop_thread.submit(self.engine.run_batch(items, parallel, stop_on_error))
        return BatchHandle([h for _, h in items])

    def cancel(self, job_id: str, reason: str = "Cancelled by the user") -> None:
        """Idempotent; safe from any thread."""
        if self.running:
            self.loop_thread.call_soon(self.engine.cancel, job_id, reason)

    def cancel_all(self) -> None:
        for job_id, handle in list(self._handles.items()):
            if not handle.done:
                self.cancel(job_id)

    def loop_future(self, job_id: str) -> asyncio.Future[Job] | None:
        """Loop thread: a future for the job's final snapshot (``await handle``)."""
        return self.engine.wait_for(job_id)

    # --- pipelines ------------------------------------------------------------------------------------------------
    def run_pipeline(self, spec: PipelineSpec) -> PipelineHandle:
        """Run a DAG of jobs (see runtime/pipeline.py); returns its handle at once."""
        check_acyclic(spec.stages)
        for stage in spec.stages:
            if stage.backend not in self.engine.factories:
                raise InvalidRequestError(f"Stage {stage.id} uses an unknown backend {stage.backend!r}")
        handle = PipelineHandle(self, spec.model_copy(deep=True))
        self._pipelines[spec.id] = handle
        self._ensure_started()
        self.loop_thread.call_soon(self.engine.start_pipeline, spec, handle, False)
        return handle

    def pipelines(self) -> list[PipelineHandle]:
        return list(self._pipelines.values())

    def on_loop(self, fn: Callable[[], Any]) -> None:
        """Run a plain callable on the loop thread (starting it if needed)."""
        self._ensure_started()
        self.loop_thread.call_soon(fn)

    # --- the home side ----------------------------------------------------------------------------------------------
    def pump(self, budget: float | None = None) -> int:
        """Run pending callbacks on this thread; never raises. Returns how many messages were delivered."""
        try:
            return self.outbox.pump(self.pump_budget if budget is None else budget)
        except Exception:  # a bug in the pump itself must not break Blender's timer
            log.exception("the Movie Director pump failed")
            return 0

    def jobs(self) -> list[JobHandle]:
        """Handles of recent jobs, oldest first (home thread only: the loop adds its own through the outbox)."""
        return list(self._handles.values())

    def handle(self, job_id: str) -> JobHandle | None:
        return self._handles.get(job_id)

    def has_live_jobs(self) -> bool:
        return any(not h.done for h in self._handles.values()) or len(self.outbox) > 0

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
