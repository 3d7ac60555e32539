"""The handles callers hold: one per job (:class:`JobHandle`) and one per batch (:class:`BatchHandle`).

Plain Python: this module never imports bpy. A handle lives on the home thread: the outbox (``runtime/outbox.py``)
delivers frozen job snapshots to it, and it runs the caller's callbacks. It talks to the runtime only through the
public :class:`HandleHost` interface (cancel, pump, the done signal), so this module imports nothing of the runtime's
front or engine.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from .errors import JobCancelledError, JobFailedError, RequestTimeoutError
from .jobs import Job, JobOutputs, JobSnapshot, JobState
from .outbox import Outbox, RuntimeEvent

__all__ = ["BatchHandle", "DoneSignal", "HandleHost", "JobHandle", "Outbox", "RuntimeEvent", "iter_active"]

log = logging.getLogger(__name__)

JobCallback = Callable[[Job], Any]
LogCallback = Callable[[Job, str], Any]


class DoneSignal:
    """Wakes threads blocked in :meth:`JobHandle.wait` when a job ends; notifies only when someone sleeps."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self._sleepers = 0

    def settle(self, handle: JobHandle, final: Job) -> None:
        """Loop thread: publish ``final`` on ``handle`` and wake the waiters, if any."""
        with self.condition:
            handle.final = final
            if self._sleepers:
                self.condition.notify_all()

    def sleep(self, handle: JobHandle, timeout: float | None) -> None:
        with self.condition:
            if handle.final is None:
                self._sleepers += 1
                try:
                    self.condition.wait(timeout)
                finally:
                    self._sleepers -= 1


class HandleHost(Protocol):
    """What a handle needs from the runtime (implemented by :class:`~runtime.core.Runtime`)."""

    outbox: Outbox

    @property
    def done_signal(self) -> DoneSignal: ...

    def cancel(self, job_id: str, reason: str = ...) -> None: ...
    def forget(self, job_id: str) -> None: ...
    def pump(self, budget: float | None = None) -> int: ...
    def is_home_thread(self) -> bool: ...
    def in_loop_thread(self) -> bool: ...
    def loop_future(self, job_id: str) -> asyncio.Future[Job] | None: ...


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
        "_job",
        "_log_cbs",
        "_progress_cbs",
        "_rt",
        "_text_cbs",
        "callback_errors",
        "final",
        "id",
        "placement_error",
    )

    def __init__(self, runtime: HandleHost, job: Job) -> None:
        """``job``: the job as submitted (a snapshot is taken now, before the loop owns it)."""
        self.id = job.id
        self._rt = runtime
        self._job: Job = job.snapshot()
        #: The final snapshot, set by the loop through :meth:`DoneSignal.settle` (read by non-pumping waiters).
        self.final: Job | None = None
        self._delivered = False
        #: Why the finished job's result could not be placed in Blender ("" when it was, or nothing was asked).
        self.placement_error = ""
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
        """The newest snapshot this thread has received (pumped); frozen."""
        return self._job

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
        if self._delivered and applies(job):
            self._rt.outbox.call(lambda: cb(job))
        return self

    # --- delivery (pumping thread; called by the outbox) ----------------------------------------------------------
    def deliver_progress(self, job: Job) -> None:
        if self._delivered:
            return
        job = self._job = self._with_problems(job) if self.callback_errors else job
        for cb in self._progress_cbs:
            self._call(cb, job)

    def deliver_log(self, job: Job, line: str) -> None:
        if not self._delivered:
            self._job = job
        job = self._job
        for cb in self._log_cbs:
            try:
                cb(job, line)
            except Exception as exc:
                self._failed_callback(cb, exc)

    def deliver_text(self, delta: str) -> None:
        job = self.status()
        for cb in self._text_cbs:
            try:
                cb(job, delta)
            except Exception as exc:
                self._failed_callback(cb, exc)

    def deliver_done(self, job: Job) -> None:
        self._job = self._with_problems(job) if self.callback_errors else job
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
        self.report_problem(message)

    def report_problem(self, message: str, *, placement: bool = False) -> None:
        """Record a home-side failure on the job (a callback, or placing its result): in ``callback_errors``, on the
        job's log and, for a placement, in :attr:`placement_error` (the sidebar shows it)."""
        self.callback_errors.append(message)
        if placement:
            self.placement_error = message
        self._job = self._with_problems(self._job)

    def _with_problems(self, job: Job) -> Job:
        """``job`` with the home-side problems on its log (the loop's snapshots do not know them)."""
        for line in self.callback_errors:
            if line not in job.log and isinstance(job, JobSnapshot):
                job = job.with_log_line(line)
        return job

    # --- waiting ----------------------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job is terminal and return its final snapshot.

        On the runtime's home thread (Blender's main thread) this pumps while it waits, so callbacks run and it works
        in ``--background`` mode where timers never tick. Raises :class:`RequestTimeoutError` on timeout; call it
        never from inside the loop (``await handle`` there instead).
        """
        rt = self._rt
        if rt.in_loop_thread():
            raise RuntimeError("JobHandle.wait() would block the loop; use `await handle` inside the loop")
        end = None if timeout is None else time.monotonic() + timeout
        pumping = rt.is_home_thread()
        signal = rt.done_signal
        while True:
            if pumping:
                rt.pump()
                if self._delivered:
                    return self.status()
            elif self.final is not None:
                return self.final
            remaining = None if end is None else end - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise RequestTimeoutError(f"job {self.id} did not finish within {timeout} s")
            step = 0.05 if remaining is None else min(remaining, 0.05)
            signal.sleep(self, step if pumping else remaining)

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
        fut = self._rt.loop_future(self.id)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            if self.final is not None:
                fut.set_result(self.final)
            else:
                fut.set_exception(RuntimeError("the job is not known to this loop"))
        return fut.__await__()

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

    def on_progress(self, cb: Callable[[BatchHandle], Any]) -> BatchHandle:
        """``cb(batch)`` on the pumping thread whenever one of its jobs moved or ended (read ``batch.progress``)."""
        for h in self.handles:
            h.on_progress(lambda job: cb(self))
            h.on_done(lambda job: cb(self))
        return self

    def on_done(self, cb: Callable[[BatchHandle], Any]) -> BatchHandle:
        """``cb(batch)`` once, on the pumping thread, when every job of the batch has ended."""
        fired: list[bool] = []

        def check(job: Job) -> None:
            if not fired and self.done:
                fired.append(True)
                cb(self)

        for h in self.handles:
            h.on_done(check)
        return self

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
