"""The way back from the loop: a thread-safe outbox, the pump that drains it, and the handles callers hold.

Plain Python: this module never imports bpy. The loop thread *posts* events; whichever thread calls :meth:`Outbox.pump`
(Blender's main thread through a ``bpy.app.timers`` function, or a headless script inside ``JobHandle.wait``) runs the
callbacks. The pump is bounded by a time budget, keeps only the newest progress event per job within one drain, and
never raises into its caller.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import JobCancelledError, JobFailedError, RequestTimeoutError
from .jobs import Job, JobOutputs, JobState

if TYPE_CHECKING:
    from .core import Runtime

log = logging.getLogger(__name__)

# Event kinds, as small ints: the pump compares them for every event.
PROGRESS = 0  # progress or state changed; coalesced per job within one drain
DONE = 2
LOG = 3
NOTICE = 4
CALL = 5
TEXT = 6  # a piece of streamed text: never coalesced, every delta reaches on_text callbacks in order

JobCallback = Callable[[Job], Any]
LogCallback = Callable[[Job, str], Any]


@dataclass(frozen=True)
class RuntimeEvent:
    """Something the runtime wants the UI to know: a backend's connection changed, a job was queued or finished.

    ``kind`` is one of ``backend_state``, ``job_queued``, ``job_started``, ``job_finished``.
    """

    kind: str
    backend: str = ""
    job_id: str = ""
    state: str = ""
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Outbox:
    """A lock-free deque of ``(kind, target, payload)`` tuples (deque append/popleft are atomic in CPython)."""

    def __init__(self) -> None:
        self._q: deque[tuple[int, Any, Any]] = deque()
        self.subscribers: list[tuple[Callable[[RuntimeEvent], Any], frozenset[str] | None]] = []
        self.callback_errors = 0

    def post(self, kind: int, target: Any, payload: Any) -> None:
        self._q.append((kind, target, payload))

    def notice(self, event: RuntimeEvent) -> None:
        if self.subscribers:
            self._q.append((NOTICE, None, event))

    def call(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the pumping thread at the next pump."""
        self._q.append((CALL, None, fn))

    def __len__(self) -> int:
        return len(self._q)

    def pump(self, budget: float = 0.008) -> int:
        """Deliver queued events on this thread for at most ``budget`` seconds; returns how many were taken."""
        q = self._q
        if not q:
            return 0
        end = time.perf_counter() + budget
        popleft = q.popleft
        progress: dict[JobHandle, None] = {}
        n = 0
        try:
            while q:
                kind, target, payload = popleft()
                n += 1
                if kind == PROGRESS:
                    progress[target] = None
                    continue
                if progress and target in progress:
                    del progress[target]
                    if kind != DONE:  # a final snapshot supersedes any progress before it
                        target._deliver_progress()
                if kind == DONE:
                    target._deliver_done(payload)
                elif kind == LOG:
                    target._deliver_log(payload)
                elif kind == TEXT:
                    target._deliver_text(payload)
                elif kind == NOTICE:
                    self._deliver_notice(payload)
                elif kind == CALL:
                    self._guard(payload)
                if not n & 31 and time.perf_counter() > end:
                    break
        except IndexError:  # another thread pumped the last event concurrently
            pass
        for target in progress:
            target._deliver_progress()
        return n

    def _deliver_notice(self, event: RuntimeEvent) -> None:
        for cb, kinds in list(self.subscribers):
            if kinds is None or event.kind in kinds:
                self._guard(cb, event)

    def _guard(self, fn: Callable[..., Any], *args: Any) -> bool:
        try:
            fn(*args)
            return True
        except Exception:
            self.callback_errors += 1
            log.exception("a Movie Director callback failed")
            return False


class JobHandle:
    """What a caller holds for one job. Safe to use from the thread that pumps; ``status()`` from any thread.

    Callbacks always run on the pumping thread: ``on_progress(job)``, ``on_log(job, line)``, ``on_complete(job)``
    when the job succeeded, ``on_error(job)`` when it failed or was cancelled, ``on_done(job)`` in every case.
    """

    __slots__ = (
        "__weakref__",
        "_complete_cbs",
        "_delivered",
        "_done_cbs",
        "_error_cbs",
        "_final",
        "_job",
        "_live",
        "_log_cbs",
        "_progress_cbs",
        "_rt",
        "_text_cbs",
        "callback_errors",
        "id",
    )

    def __init__(self, runtime: Runtime, job: Job) -> None:
        self.id = job.id
        self._rt = runtime
        self._live = job  # the loop's own object: only ever copied here, never changed
        self._job: Job | None = None
        self._final: Job | None = None  # set by the loop, under the runtime's done condition
        self._delivered = False
        # Callback lists start as shared empty tuples: most handles never get most kinds of callback.
        self._progress_cbs: Sequence[JobCallback] = ()
        self._complete_cbs: Sequence[JobCallback] = ()
        self._error_cbs: Sequence[JobCallback] = ()
        self._done_cbs: Sequence[JobCallback] = ()
        self._log_cbs: Sequence[LogCallback] = ()
        self._text_cbs: Sequence[LogCallback] = ()
        self.callback_errors: list[str] = []

    def __repr__(self) -> str:
        job = self.status()
        return f"<JobHandle {job.backend}/{job.kind} {self.id[:8]} {job.state.value} {job.progress.fraction:.0%}>"

    # --- reading ---------------------------------------------------------------------------------------------
    def status(self) -> Job:
        """The newest snapshot this thread has received (pumped)."""
        job = self._job
        if job is None:
            job = self._job = self._live.snapshot()
        return job

    @property
    def done(self) -> bool:
        """True once the terminal state has been delivered by a pump."""
        return self._delivered

    # --- callbacks --------------------------------------------------------------------------------------------
    def on_progress(self, cb: JobCallback) -> JobHandle:
        """``cb(job)`` whenever progress or state changed (at most once per job per pump)."""
        self._progress_cbs = [*self._progress_cbs, cb]
        return self

    def on_log(self, cb: LogCallback) -> JobHandle:
        self._log_cbs = [*self._log_cbs, cb]
        return self

    def on_text(self, cb: LogCallback) -> JobHandle:
        """``cb(job, delta)`` for every piece of streamed text (LLM tokens), in order, none dropped."""
        self._text_cbs = [*self._text_cbs, cb]
        return self

    def on_complete(self, cb: JobCallback) -> JobHandle:
        self._complete_cbs = [*self._complete_cbs, cb]
        return self._replay(cb, lambda job: job.state is JobState.SUCCEEDED)

    def on_error(self, cb: JobCallback) -> JobHandle:
        self._error_cbs = [*self._error_cbs, cb]
        return self._replay(cb, lambda job: job.state is not JobState.SUCCEEDED)

    def on_done(self, cb: JobCallback) -> JobHandle:
        self._done_cbs = [*self._done_cbs, cb]
        return self._replay(cb, lambda job: True)

    def _replay(self, cb: JobCallback, applies: Callable[[Job], bool]) -> JobHandle:
        """A final callback added after the end still runs, once, at the next pump."""
        job = self._job
        if self._delivered and job is not None and applies(job):
            self._rt.outbox.call(lambda: cb(job))
        return self

    # --- delivery (pumping thread) ----------------------------------------------------------------------------
    def _deliver_progress(self) -> None:
        if self._delivered:
            return
        job = self._job = self._live.snapshot()
        for cb in self._progress_cbs:
            self._call(cb, job)

    def _deliver_log(self, line: str) -> None:
        job = self.status() if self._delivered else self._live.snapshot()
        self._job = job
        for cb in self._log_cbs:
            try:
                cb(job, line)
            except Exception as exc:
                self._failed_callback(cb, exc)

    def _deliver_text(self, delta: str) -> None:
        job = self.status()
        for cb in self._text_cbs:
            try:
                cb(job, delta)
            except Exception as exc:
                self._failed_callback(cb, exc)

    def _deliver_done(self, job: Job) -> None:
        self._job = job
        self._delivered = True
        cbs = self._complete_cbs if job.state is JobState.SUCCEEDED else self._error_cbs
        for cb in cbs:
            self._call(cb, job)
        for cb in self._done_cbs:
            self._call(cb, job)

    def _call(self, cb: JobCallback, job: Job) -> None:
        try:
            cb(job)
        except Exception as exc:
            self._failed_callback(cb, exc)

    def _failed_callback(self, cb: Callable[..., Any], exc: Exception) -> None:
        name = getattr(cb, "__qualname__", repr(cb))
        message = f"callback {name} failed: {type(exc).__name__}: {exc}"
        log.error("job %s: %s", self.id, message, exc_info=exc)
        self.callback_errors.append(message)
        self.status().log.append(message)

    # --- waiting ----------------------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job is terminal and return its final snapshot.

        On the runtime's home thread (Blender's main thread) this pumps while it waits, so callbacks run and it works
        in ``--background`` mode where timers never tick. Raises :class:`RequestTimeoutError` on timeout; call it
        never from inside the loop (``await handle`` there instead).
        """
        rt = self._rt
        if rt.loop_thread.in_loop_thread():
            raise RuntimeError("JobHandle.wait() would block the loop; use `await handle` inside the loop")
        end = None if timeout is None else time.monotonic() + timeout
        pumping = rt.is_home_thread()
        cond = rt.done_condition
        while True:
            if pumping:
                rt.pump()
                if self._delivered:
                    return self.status()
            elif self._final is not None:
                return self._final
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise RequestTimeoutError(f"job {self.id} did not finish within {timeout} s")
            step = 0.05 if remaining is None else min(remaining, 0.05)
            with cond:
                if self._final is None:
                    cond.wait(step if pumping else remaining)

    def result(self, timeout: float | None = None) -> JobOutputs:
        """Wait, then return the outputs or raise JobFailedError / JobCancelledError with the job's message."""
        job = self.wait(timeout)
        if job.state is JobState.SUCCEEDED:
            return job.outputs
        err = job.error
        msg = err.message if err else f"job {job.id} ended {job.state.value}"
        details = {"job_id": job.id, "code": err.code if err else ""}
        if job.state is JobState.CANCELLED:
            raise JobCancelledError(msg, backend=job.backend, details=details)
        raise JobFailedError(msg, backend=job.backend, details=details, retryable=bool(err and err.retryable))

    def __await__(self) -> Any:
        """Inside the loop: ``job = await handle`` waits for the terminal state without blocking the loop."""
        return self._rt._loop_future(self).__await__()

    # --- control ----------------------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Idempotent. The job ends ``cancelled`` at once locally; the server is asked to stop where it can."""
        self._rt.cancel(self.id)

    def dispose(self) -> None:
        """Drop callbacks and forget the handle in the runtime's job list (a running job keeps running)."""
        self._progress_cbs = self._complete_cbs = self._error_cbs = self._done_cbs = ()
        self._log_cbs = self._text_cbs = ()
        self._rt.forget(self.id)


class BatchHandle:
    """Many jobs submitted together; results come back in submission order."""

    def __init__(self, handles: Sequence[JobHandle]) -> None:
        self.handles = list(handles)

    def __len__(self) -> int:
        return len(self.handles)

    @property
    def progress(self) -> float:
        """Mean progress, counting finished jobs as 1."""
        if not self.handles:
            return 1.0
        total = sum(1.0 if h.done else h.status().progress.fraction for h in self.handles)
        return total / len(self.handles)

    @property
    def done(self) -> bool:
        return all(h.done for h in self.handles)

    def wait(self, timeout: float | None = None) -> list[Job]:
        end = None if timeout is None else time.monotonic() + timeout
        jobs = []
        for h in self.handles:
            remaining = None if end is None else max(0.0, end - time.monotonic())
            jobs.append(h.wait(remaining))
        return jobs

    def results(self, timeout: float | None = None) -> list[JobOutputs | None]:
        """Outputs in submission order; None where a job did not succeed."""
        return [j.outputs if j.state is JobState.SUCCEEDED else None for j in self.wait(timeout)]

    def cancel(self) -> None:
        for h in self.handles:
            h.cancel()

    def states(self) -> list[JobState]:
        return [h.status().state for h in self.handles]


def iter_active(handles: Iterable[JobHandle]) -> list[JobHandle]:
    return [h for h in handles if not h.done]
