"""Pipelines: a directed acyclic graph of jobs whose requests may take other jobs' outputs.

Plain Python: this module never imports bpy and knows no backend. Stages run through the runtime's own queue (so
each backend's concurrency limit applies). A stage that fails or is cancelled takes down its dependants, and only
those (all stages with ``stop_on_error``). Any stage can be cancelled, retried or regenerated on its own; everything
downstream of it is redone, and a regenerated stage keeps its earlier results as takes. A pipeline may grow while it
runs: an *expander* (a named, registered function) turns a finished stage's result into new stages, e.g. one chain of
stages per shot of a shot list. Pipelines are written to the job journal, so a half-done one resumes after a restart
without redoing finished stages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .errors import InvalidRequestError, RequestTimeoutError
from .jobs import Job, JobState
from .stages import (
    EXPANDERS,
    Bind,
    Expander,
    PipelineSpec,
    Stage,
    StageState,
    check_acyclic,
    put,
    register_expander,
    select,
)

if TYPE_CHECKING:
    import asyncio

    from .bridge import JobHandle
    from .journal import Journal
    from .outbox import Outbox

log = logging.getLogger(__name__)

__all__ = [
    "EXPANDERS",
    "Bind",
    "Expander",
    "PipelineHandle",
    "PipelineRun",
    "PipelineSpec",
    "Stage",
    "StageState",
    "check_acyclic",
    "register_expander",
    "select",
]


class StageHost(Protocol):
    """What a pipeline run needs from the loop side (implemented by :class:`~runtime.engine.Engine`)."""

    outbox: Outbox
    journal: Journal | None
    resumable_stop: bool

    def adopt(self, job: Job) -> JobHandle: ...
    def wait_for(self, job_id: str) -> asyncio.Future[Job] | None: ...
    def cancel(self, job_id: str, reason: str) -> None: ...


class PipelineHost(Protocol):
    """What a pipeline handle needs from the front (implemented by :class:`~runtime.core.Runtime`)."""

    def pump(self, budget: float | None = None) -> int: ...
    def handle(self, job_id: str) -> JobHandle | None: ...
    def on_loop(self, fn: Callable[[], Any]) -> None: ...


class PipelineRun:
    """The loop-side driver of one pipeline."""

    def __init__(self, host: StageHost, spec: PipelineSpec, handle: PipelineHandle) -> None:
        self.rt = host
        self.spec = spec
        self.handle = handle
        self.generation = handle.generation
        self.stages = {s.id: s for s in spec.stages}
        self._jobs: dict[str, str] = {}  # job id -> stage id
        self._stopped = False

    # --- graph ----------------------------------------------------------------------------------------------------
    def deps(self, stage: Stage) -> set[str]:
        return set(stage.depends_on) | {b.stage for b in stage.binds}

    def dependants(self, stage_id: str) -> list[Stage]:
        """Every stage downstream of ``stage_id``, transitively."""
        out: list[Stage] = []
        frontier = [stage_id]
        seen: set[str] = set()
        while frontier:
            current = frontier.pop()
            for s in self.stages.values():
                if current in self.deps(s) and s.id not in seen:
                    seen.add(s.id)
                    out.append(s)
                    frontier.append(s.id)
        return out

    # --- running --------------------------------------------------------------------------------------------------
    def advance(self) -> None:
        """Start every pending stage whose dependencies all succeeded; settle the pipeline when nothing is left."""
        for stage in list(self.stages.values()):
            if stage.state is not StageState.PENDING:
                continue
            deps = [self.stages[d] for d in self.deps(stage)]
            if all(d.state is StageState.SUCCEEDED for d in deps):
                self._start(stage)
        self.persist()
        self.publish()
        if all(s.state.terminal for s in self.stages.values()):
            snap, generation, handle = self.snapshot(), self.generation, self.handle
            self.rt.outbox.call(lambda: handle.settle(snap, generation))

    def _start(self, stage: Stage) -> None:
        try:
            request = dict(stage.request)
            for bind in stage.binds:
                upstream = self.stages[bind.stage].outputs
                assert upstream is not None
                request = put(request, bind.into, select(upstream, bind.select))
        except InvalidRequestError as exc:
            self._end(stage, StageState.FAILED, str(exc))
            return
        job = Job(backend=stage.backend, kind=stage.kind, request=request, priority=stage.priority)
        self.rt.adopt(job)
        stage.state, stage.job_id, stage.error = StageState.RUNNING, job.id, ""
        stage.started_at, stage.finished_at = time.time(), None
        self._jobs[job.id] = stage.id
        self._watch(stage, job.id)

    def _watch(self, stage: Stage, job_id: str) -> bool:
        fut = self.rt.wait_for(job_id)
        if fut is None:
            return False
        fut.add_done_callback(lambda f: self._job_done(stage.id, job_id, f.result()))
        return True

    def _job_done(self, stage_id: str, job_id: str, job: Job) -> None:
        if self.rt.resumable_stop:
            return  # Blender is quitting: the journal keeps the stage running, to be resumed
        stage = self.stages.get(stage_id)
        if stage is None or stage.job_id != job_id or stage.state is not StageState.RUNNING:
            return  # a stale job of a stage that was retried or regenerated since
        if job.state is JobState.SUCCEEDED:
            stage.outputs = job.outputs
            stage.state, stage.finished_at = StageState.SUCCEEDED, time.time()
            if stage.expander:
                self._expand(stage)
        else:
            state = StageState.CANCELLED if job.state is JobState.CANCELLED else StageState.FAILED
            self._end(stage, state, job.error.message if job.error else state.value)
        self.advance()

    def _expand(self, stage: Stage) -> None:
        fn = EXPANDERS.get(stage.expander or "")
        if fn is None:
            self._end(stage, StageState.FAILED, f"unknown expander {stage.expander!r}")
            return
        try:
            new = fn(stage, self.spec)
            check_acyclic([*self.stages.values(), *new])
        except Exception as exc:  # a broken expansion fails its stage with the reason, never the loop
            self._end(stage, StageState.FAILED, f"could not plan the next stages: {exc}")
            return
        for s in new:
            if s.id not in self.stages:
                self.stages[s.id] = s
                self.spec.stages.append(s)

    def _end(self, stage: Stage, state: StageState, error: str) -> None:
        """A stage failed or was cancelled: so do its dependants (or, with stop_on_error, everything left)."""
        stage.state, stage.error, stage.finished_at = state, error, time.time()
        victims = (
            [s for s in self.stages.values() if not s.state.terminal]
            if self.spec.stop_on_error and state is StageState.FAILED
            else self.dependants(stage.id)
        )
        for other in victims:
            if other.state.terminal:
                continue
            if other.state is StageState.RUNNING and other.job_id:
                self.rt.cancel(other.job_id, f"Cancelled because stage {stage.id} {state.value}")
            other.state = StageState.CANCELLED if state is StageState.CANCELLED else StageState.FAILED
            other.error = f"stage {stage.id} {state.value}"
            other.finished_at = time.time()

    def reattach(self) -> None:
        """After a restart: follow the jobs of stages that were running (the job journal brought them back), take
        the results of those that finished meanwhile, and run again the ones whose job is gone."""
        for stage in self.stages.values():
            if stage.state is not StageState.RUNNING or not stage.job_id:
                continue
            if self._watch(stage, stage.job_id):
                self._jobs[stage.job_id] = stage.id
                continue
            job = self.rt.journal.get(stage.job_id) if self.rt.journal is not None else None
            if job is not None and job.state.terminal:
                self._job_done(stage.id, stage.job_id, job)
            else:
                stage.state, stage.job_id = StageState.PENDING, None
        self.advance()

    # --- control (loop thread) ------------------------------------------------------------------------------------
    def cancel(self, stage_id: str | None = None) -> None:
        targets = [self.stages[stage_id]] if stage_id else list(self.stages.values())
        for stage in targets:
            if stage.state.terminal:
                continue
            if stage.state is StageState.RUNNING and stage.job_id:
                self.rt.cancel(stage.job_id, "Cancelled by the user")  # its watcher settles the stage
            else:
                self._end(stage, StageState.CANCELLED, "cancelled by the user")
        self.advance()

    def rerun(self, stage_id: str, *, keep_take: bool, generation: int) -> None:
        """Retry (a failed or cancelled stage) or regenerate (a finished one): it and everything downstream run
        again; a regenerated stage's earlier result becomes a take. ``generation``: the handle's count of reruns
        asked for, so that a settle from before this rerun is ignored by the waiting caller."""
        self.generation = max(self.generation, generation)
        stage = self.stages.get(stage_id)
        if stage is None:
            log.warning("pipeline %s has no stage %s", self.spec.id, stage_id)
            self.advance()
            return
        for s in [stage, *self.dependants(stage_id)]:
            if s.state is StageState.RUNNING and s.job_id:
                self.rt.cancel(s.job_id, "Superseded: the stage is run again")
            if keep_take and s is stage and s.outputs is not None:
                s.takes.append(s.outputs)
            s.state, s.error, s.job_id = StageState.PENDING, "", None
            if s is not stage:
                s.outputs = None
        self.advance()

    # --- views ------------------------------------------------------------------------------------------------------
    def snapshot(self) -> PipelineSpec:
        return self.spec.model_copy(deep=True)

    def publish(self) -> None:
        snap, handle = self.snapshot(), self.handle
        self.rt.outbox.call(lambda: handle.deliver(snap))

    def persist(self) -> None:
        if self.rt.journal is not None:
            done = all(s.state.terminal for s in self.stages.values())
            self.rt.journal.save_pipeline(self.spec.id, self.spec.model_dump_json(), done)


class PipelineHandle:
    """What the caller holds (home thread): the latest snapshot, waiting, and per-stage control."""

    def __init__(self, runtime: PipelineHost, spec: PipelineSpec) -> None:
        self.id = spec.id
        self._rt = runtime
        #: Reruns asked for from this side; a settle of an older generation does not end a wait.
        self.generation = 0
        self._spec = spec
        self._done = threading.Event()
        self._callbacks: list[Callable[[PipelineSpec], Any]] = []
        self.run: PipelineRun | None = None

    def status(self) -> PipelineSpec:
        return self._spec

    @property
    def done(self) -> bool:
        return self._done.is_set() and all(s.state.terminal for s in self._spec.stages)

    def on_update(self, cb: Callable[[PipelineSpec], Any]) -> PipelineHandle:
        """``cb(spec)`` on the pumping thread whenever a stage changed."""
        self._callbacks.append(cb)
        return self

    def stage(self, stage_id: str) -> Stage:
        """The stage ``stage_id`` of the latest snapshot; ``KeyError`` naming the stages that exist."""
        for s in self._spec.stages:
            if s.id == stage_id:
                return s
        raise KeyError(f"pipeline {self.id[:8]} has no stage {stage_id!r}; its stages: {self._stage_names()}")

    def _stage_names(self) -> str:
        return ", ".join(s.id for s in self._spec.stages) or "none yet"

    def progress(self) -> float:
        stages = self._spec.stages
        if not stages:
            return 1.0
        total = 0.0
        for s in stages:
            if s.state.terminal:
                total += 1
            elif s.job_id and (h := self._rt.handle(s.job_id)) is not None:
                total += h.status().progress.fraction
        return total / len(stages)

    def wait(self, timeout: float | None = None) -> PipelineSpec:
        """Block until every stage is terminal (pumping on the home thread, like JobHandle.wait)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            self._rt.pump()
            if self.done:
                return self._spec
            if end is not None and time.monotonic() > end:
                raise RequestTimeoutError(f"pipeline {self.id} did not finish within {timeout} s")
            self._done.wait(0.02)

    def cancel(self, stage_id: str | None = None) -> None:
        """Cancel one stage (and what depends on it), or the whole pipeline. An unknown stage raises ``KeyError``."""
        if stage_id is not None:
            self.stage(stage_id)
        self._call(lambda run: run.cancel(stage_id))

    def retry(self, stage_id: str) -> None:
        """Run a failed or cancelled stage again; :meth:`wait` then waits for the new attempt."""
        self._rerun(stage_id, keep_take=False)

    def regenerate(self, stage_id: str) -> None:
        """Make a new take of a stage (the old one is kept); :meth:`wait` then waits for the new take."""
        self._rerun(stage_id, keep_take=True)

    def _rerun(self, stage_id: str, *, keep_take: bool) -> None:
        self.stage(stage_id)
        self.generation += 1
        self._done.clear()
        generation = self.generation
        self._call(lambda run: run.rerun(stage_id, keep_take=keep_take, generation=generation))

    def _call(self, fn: Callable[[PipelineRun], None]) -> None:
        def go() -> None:
            if self.run is not None:
                fn(self.run)

        self._rt.on_loop(go)

    # pumping thread
    def deliver(self, spec: PipelineSpec) -> None:
        self._spec = spec
        for cb in list(self._callbacks):
            try:
                cb(spec)
            except Exception:
                log.exception("a pipeline callback failed")

    def settle(self, spec: PipelineSpec, generation: int) -> None:
        """Every stage is terminal (as of rerun ``generation``): a wait may return, unless a newer rerun was asked."""
        self._spec = spec
        if generation >= self.generation:
            self._done.set()
