"""Pipelines of jobs: dependencies, failure and cancellation of dependants only, retry and regeneration with takes,
expansion while running, and resume after a restart without redoing finished stages."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from movie_director.clients import local
from movie_director.runtime import BackendConfig, Runtime
from movie_director.runtime.errors import InvalidRequestError
from movie_director.runtime.pipeline import Bind, PipelineSpec, Stage, StageState, register_expander
from support import pump_until


def echo(sid: str, text: str = "", deps: tuple[str, ...] = (), delay: float = 0.0, steps: int = 0, **kw) -> Stage:  # type: ignore[no-untyped-def]
    return Stage(
        id=sid,
        backend="local",
        kind="echo",
        request={"text": text or sid, "delay": delay, "steps": steps},
        depends_on=list(deps),
        **kw,
    )


def states(spec: PipelineSpec) -> dict[str, str]:
    return {s.id: s.state.value for s in spec.stages}


def make(tmp_path: Path, concurrency: int = 2, journal: bool = False) -> Runtime:
    rt = Runtime(output_root=tmp_path / "out", journal=(tmp_path / "j.db") if journal else None)
    rt.register_backend("local", local.factory, BackendConfig(name="local", concurrency=concurrency))
    return rt


@pytest.fixture
def rt(tmp_path: Path):  # type: ignore[no-untyped-def]
    runtime = make(tmp_path)
    yield runtime
    runtime.stop()


def test_stages_run_in_dependency_order_and_pass_outputs_on(rt: Runtime) -> None:
    spec = PipelineSpec(
        stages=[
            echo("a", "from a"),
            Stage(id="b", backend="local", kind="echo", binds=[Bind(stage="a", select="text", into="text")]),
            echo("c", deps=("a",)),
            Stage(id="d", backend="local", kind="echo", depends_on=["b", "c"], request={"text": "d"}),
        ]
    )
    done = rt.run_pipeline(spec).wait(10)
    assert states(done) == {"a": "succeeded", "b": "succeeded", "c": "succeeded", "d": "succeeded"}
    by_id = {s.id: s for s in done.stages}
    assert by_id["b"].outputs is not None and by_id["b"].outputs.text == "from a"
    assert by_id["a"].finished_at <= by_id["b"].started_at  # type: ignore[operator]
    assert max(by_id["b"].finished_at, by_id["c"].finished_at) <= by_id["d"].started_at  # type: ignore[operator,type-var]


def test_a_failing_middle_stage_fails_only_its_dependants(rt: Runtime) -> None:
    spec = PipelineSpec(
        stages=[
            echo("a"),
            Stage(id="b", backend="local", kind="fail", request={"message": "no"}, depends_on=["a"]),
            echo("d", deps=("b",)),
            echo("c", deps=("a",)),
        ]
    )
    done = rt.run_pipeline(spec).wait(10)
    assert states(done) == {"a": "succeeded", "b": "failed", "d": "failed", "c": "succeeded"}
    assert "no" in done.stages[1].error and done.stages[2].error == "stage b failed"


def test_stop_on_error_stops_everything_left(rt: Runtime) -> None:
    spec = PipelineSpec(
        stop_on_error=True,
        stages=[
            Stage(id="bad", backend="local", kind="fail"),
            Stage(id="slow", backend="local", kind="hang"),
            echo("later", deps=("slow",)),
        ],
    )
    done = rt.run_pipeline(spec).wait(10)
    assert states(done)["bad"] == "failed"
    assert states(done)["slow"] in ("failed", "cancelled") and states(done)["later"] in ("failed", "cancelled")


def test_cancelling_one_branch_leaves_the_others_running(rt: Runtime) -> None:
    spec = PipelineSpec(stages=[echo("a"), Stage(id="b", backend="local", kind="hang", depends_on=["a"]),
                                echo("d", deps=("b",)), echo("c", deps=("a",), delay=0.2, steps=2)])  # fmt: skip
    handle = rt.run_pipeline(spec)
    assert pump_until(rt, lambda: handle.stage("b").state is StageState.RUNNING)
    handle.cancel("b")
    done = handle.wait(10)
    assert states(done) == {"a": "succeeded", "b": "cancelled", "d": "cancelled", "c": "succeeded"}


def test_regenerating_a_stage_redoes_it_and_everything_downstream_keeping_a_take(rt: Runtime) -> None:
    spec = PipelineSpec(stages=[echo("a"), echo("b", deps=("a",)), echo("c", deps=("b",)), echo("x", deps=("a",))])
    handle = rt.run_pipeline(spec)
    first = handle.wait(10)
    jobs_before = {s.id: s.job_id for s in first.stages}
    handle.regenerate("b")
    assert pump_until(rt, lambda: handle.stage("b").job_id != jobs_before["b"])
    again = handle.wait(10)
    jobs_after = {s.id: s.job_id for s in again.stages}
    assert states(again) == {"a": "succeeded", "b": "succeeded", "c": "succeeded", "x": "succeeded"}
    assert jobs_after["a"] == jobs_before["a"] and jobs_after["x"] == jobs_before["x"]  # untouched
    assert jobs_after["b"] != jobs_before["b"] and jobs_after["c"] != jobs_before["c"]  # redone
    assert len(handle.stage("b").takes) == 1 and handle.stage("c").takes == []


def test_a_cancelled_stage_can_be_retried(rt: Runtime) -> None:
    spec = PipelineSpec(stages=[echo("a", delay=0.1, steps=20), echo("b", deps=("a",))])
    handle = rt.run_pipeline(spec)
    assert pump_until(rt, lambda: handle.stage("a").state is StageState.RUNNING)
    handle.cancel("a")
    assert states(handle.wait(10)) == {"a": "cancelled", "b": "cancelled"}
    handle.retry("a")
    assert pump_until(rt, lambda: handle.stage("a").state is StageState.RUNNING)
    assert states(handle.wait(20)) == {"a": "succeeded", "b": "succeeded"}


def test_an_expander_grows_the_pipeline_from_a_result(rt: Runtime) -> None:
    def fan_out(stage: Stage, spec: PipelineSpec) -> list[Stage]:
        count = int(stage.outputs.text or 0)  # type: ignore[union-attr]
        return [echo(f"shot{i}", f"shot {i}", deps=(stage.id,), group=f"shot{i}") for i in range(count)]

    register_expander("test_fan_out", fan_out)
    spec = PipelineSpec(stages=[Stage(id="plan", backend="local", kind="echo", request={"text": "3"},
                                      expander="test_fan_out")])  # fmt: skip
    done = rt.run_pipeline(spec).wait(10)
    assert states(done) == {"plan": "succeeded", "shot0": "succeeded", "shot1": "succeeded", "shot2": "succeeded"}


def test_each_backend_s_concurrency_limit_applies(tmp_path: Path) -> None:
    rt = make(tmp_path, concurrency=1)
    try:
        spec = PipelineSpec(stages=[echo(f"s{i}", delay=0.02, steps=2) for i in range(4)])
        done = rt.run_pipeline(spec).wait(10)
        spans = sorted((s.started_at or 0, s.finished_at or 0) for s in done.stages)
        jobs = sorted((j.status().started_at or 0, j.status().finished_at or 0) for j in rt.jobs())
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(jobs)), jobs  # never two at once
        assert len(spans) == 4
    finally:
        rt.stop()


def test_cycles_and_unknown_stages_are_refused(rt: Runtime) -> None:
    with pytest.raises(InvalidRequestError, match="cycle"):
        rt.run_pipeline(PipelineSpec(stages=[echo("a", deps=("b",)), echo("b", deps=("a",))]))
    with pytest.raises(InvalidRequestError, match="unknown stage"):
        rt.run_pipeline(PipelineSpec(stages=[echo("a", deps=("zzz",))]))


def test_a_half_done_pipeline_resumes_after_a_restart_without_redoing_finished_stages(tmp_path: Path) -> None:
    first = make(tmp_path, journal=True)
    spec = PipelineSpec(stages=[echo("a"), echo("b", deps=("a",), delay=0.05, steps=40), echo("c", deps=("b",))])
    handle = first.run_pipeline(spec)
    assert pump_until(first, lambda: handle.stage("b").state is StageState.RUNNING)
    a_job = handle.stage("a").job_id
    first.stop()

    second = make(tmp_path, journal=True)
    second.start()
    try:
        (restored,) = second.pipelines()
        done = restored.wait(20)
        assert states(done) == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
        assert restored.stage("a").job_id == a_job  # not redone
        assert second.handle(a_job or "") is None  # no job was created for it in this session
    finally:
        second.stop()


def test_the_handle_reports_status_and_overall_progress(rt: Runtime) -> None:
    spec = PipelineSpec(stages=[echo("a", delay=0.05, steps=10), echo("b", deps=("a",))])
    handle = rt.run_pipeline(spec)
    assert handle.status().id == spec.id and handle.progress() < 1.0
    seen: list[float] = []
    handle.on_update(lambda s: seen.append(handle.progress()))
    handle.wait(10)
    assert handle.progress() == 1.0 and seen and max(seen) == 1.0
