"""Time left from a job's own pace, and the status bar's summary of every live job."""

from __future__ import annotations

from movie_director.runtime.eta import StepClock, format_eta, overall
from movie_director.runtime.jobs import Job, JobState, Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_time_left_comes_from_the_measured_seconds_per_step_after_two_steps() -> None:
    clock = FakeClock()
    eta = StepClock(clock)
    assert eta.eta(1, 10) is None  # the first step includes loading the model: no pace yet
    clock.now += 2.0
    assert eta.eta(2, 10) is None
    clock.now += 2.0
    assert eta.eta(3, 10) == 14.0  # 2 s a step, 7 steps left
    clock.now += 1.0  # time passes without a new step: the estimate counts down
    assert eta.eta(3, 10) == 13.0


def test_a_restarted_count_starts_a_new_measurement() -> None:
    clock = FakeClock()
    eta = StepClock(clock)
    for step in (1, 2, 3):
        eta.eta(step, 3)
        clock.now += 5.0
    assert eta.eta(1, 20) is None  # a second phase (decoding) counts from 1 again


def test_unknown_totals_give_no_estimate() -> None:
    assert StepClock(FakeClock()).eta(None, None) is None
    assert StepClock(FakeClock()).eta(3, 0) is None


def test_overall_counts_live_jobs_and_takes_the_longest_time_left() -> None:
    running = Job(backend="a", kind="k", state=JobState.RUNNING, progress=Progress(fraction=0.5, eta_s=30.0))
    slow = Job(backend="a", kind="k", state=JobState.RUNNING, progress=Progress(fraction=0.1, eta_s=200.0))
    queued = Job(backend="b", kind="k")
    done = Job(backend="b", kind="k", state=JobState.SUCCEEDED, progress=Progress(fraction=1.0))
    summary = overall([running, slow, queued, done])
    assert summary is not None
    assert (summary.running, summary.queued, summary.eta_s) == (2, 1, 200.0)
    assert abs(summary.fraction - 0.2) < 1e-9
    assert summary.text == "Movie Director: 2 running, 1 queued, 3 min left"
    assert overall([done]) is None


def test_time_left_reads_as_a_person_says_it() -> None:
    assert [format_eta(s) for s in (4.4, 59, 61, 3599, 3900)] == ["4 s", "59 s", "1 min", "60 min", "1 h 05 min"]
