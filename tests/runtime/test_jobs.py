from __future__ import annotations

import pytest
from movie_director.runtime.errors import RateLimitedError
from movie_director.runtime.jobs import IllegalTransitionError, Job, JobError, JobState, Progress


def test_happy_path_stamps_each_timestamp() -> None:
    job = Job(backend="b", kind="k")
    assert job.state is JobState.QUEUED and job.submitted_at is None
    job.transition(JobState.SUBMITTED)
    job.transition(JobState.RUNNING)
    job.transition(JobState.SUCCEEDED)
    assert job.submitted_at and job.started_at and job.finished_at
    assert job.submitted_at <= job.started_at <= job.finished_at
    assert job.done


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (JobState.QUEUED, JobState.RUNNING),
        (JobState.QUEUED, JobState.SUCCEEDED),
        (JobState.SUCCEEDED, JobState.FAILED),
        (JobState.CANCELLED, JobState.RUNNING),
        (JobState.FAILED, JobState.QUEUED),
    ],
)
def test_illegal_transitions_are_rejected(start: JobState, target: JobState) -> None:
    job = Job(backend="b", kind="k", state=start)
    with pytest.raises(IllegalTransitionError):
        job.transition(target)
    assert job.state is start


def test_every_live_state_can_fail_or_be_cancelled() -> None:
    for state in (JobState.QUEUED, JobState.SUBMITTED, JobState.RUNNING):
        for end in (JobState.FAILED, JobState.CANCELLED):
            job = Job(backend="b", kind="k", state=state)
            job.transition(end)
            assert job.done


def test_progress_fraction_is_bounded() -> None:
    with pytest.raises(ValueError):
        Progress(fraction=1.5)
    with pytest.raises(ValueError):
        Progress(fraction=-0.1)


def test_snapshot_is_independent_of_the_original() -> None:
    job = Job(backend="b", kind="k")
    job.log.append("one")
    snap = job.snapshot()
    job.log.append("two")
    job.transition(JobState.SUBMITTED)
    assert snap.log == ["one"] and snap.state is JobState.QUEUED


def test_job_error_from_our_error_and_from_a_crash() -> None:
    err = JobError.from_exception(RateLimitedError("slow down", backend="llm", retry_after=3))
    assert err.code == "rate_limited" and err.retryable and err.details["retry_after"] == 3
    assert "llm: slow down" in err.message
    crash = JobError.from_exception(KeyError("x"))
    assert crash.code == "internal_error" and "KeyError" in crash.message
