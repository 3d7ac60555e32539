"""How long a running job has left, from the pace of its own steps, and the overall progress the status bar shows.

Plain Python: this module never imports bpy. A server's own estimate (the Gradio queue's) wins when it gives one;
otherwise the time left is the remaining steps at the job's measured seconds per step, once it has done at least
two steps (the first includes model loading and would mislead).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .jobs import Job, JobState

#: Steps a job must have done before its pace is trusted.
MIN_STEPS = 2


class StepClock:
    """Measures one job's seconds per step; ``eta(step, total)`` is the time left, or None when unknown."""

    __slots__ = ("_clock", "_first_step", "_first_t", "_last_step", "_last_t")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._first_step: int | None = None
        self._first_t = 0.0
        self._last_step = 0
        self._last_t = 0.0

    def eta(self, step: int | None, total: int | None) -> float | None:
        if step is None or not total:
            return None
        now = self._clock()
        if self._first_step is None or step < self._last_step:  # the first report, or a new phase restarted its count
            self._first_step, self._first_t = step, now
            self._last_step, self._last_t = step, now
            return None
        if step > self._last_step:
            self._last_step, self._last_t = step, now
        done = self._last_step - self._first_step
        if done < MIN_STEPS:
            return None
        per_step = (self._last_t - self._first_t) / done
        since_last = now - self._last_t
        return max(0.0, (total - self._last_step) * per_step - since_last)


@dataclass(frozen=True)
class Overall:
    """What the status bar says about every live job at once."""

    running: int
    queued: int
    fraction: float
    eta_s: float | None

    @property
    def text(self) -> str:
        parts = []
        if self.running:
            parts.append(f"{self.running} running")
        if self.queued:
            parts.append(f"{self.queued} queued")
        text = "Movie Director: " + ", ".join(parts) if parts else "Movie Director: idle"
        if self.eta_s is not None:
            text += f", {format_eta(self.eta_s)} left"
        return text


def overall(jobs: Iterable[Job]) -> Overall | None:
    """Mean progress and the longest time left of the live jobs, or None when nothing is live."""
    live = [j for j in jobs if not j.state.terminal]
    if not live:
        return None
    queued = sum(1 for j in live if j.state is JobState.QUEUED)
    etas = [j.progress.eta_s for j in live if j.progress.eta_s is not None]
    fraction = sum(j.progress.fraction for j in live) / len(live)
    return Overall(len(live) - queued, queued, fraction, max(etas) if etas else None)


def format_eta(seconds: float) -> str:
    """``"45 s"``, ``"3 min"``, ``"1 h 05 min"``: as precise as a person needs."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    h, m = divmod(round(s / 60), 60)
    return f"{h} h {m:02d} min"
