"""One prompt's progress: weighted as krita-ai-diffusion weighs it (0.2 nodes, 0.8 sampler steps), its own place in
the server's queue, and its reports to the job."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.comfyui.protocol import HistoryEntry, parse_message
from movie_director.clients.comfyui.tracking import PromptTracker, outcome_from_history
from movie_director.runtime import Job, JobState, Runtime
from support import pump_until, txt2img


class Reports:
    """What the tracker tells its job, recorded (the runtime's JobContext has the same four methods)."""

    def __init__(self) -> None:
        self.fractions: list[float] = []
        self.stages: list[str] = []
        self.running = 0
        self.lines: list[str] = []

    def mark_running(self) -> None:
        self.running += 1

    def mark_resubmitted(self, remote_id: str | None = None) -> None:
        pass

    def report_progress(self, fraction: float | None = None, **kw: Any) -> None:
        if fraction is not None:
            self.fractions.append(fraction)
        if kw.get("stage"):
            self.stages.append(kw["stage"])

    def log(self, line: str) -> None:
        self.lines.append(line)


def _msg(kind: str, **data: Any) -> Any:
    return parse_message(json.dumps({"type": kind, "data": {**data, "prompt_id": "p"}}))


def _run(scenario: Any) -> Any:
    async def main() -> Any:
        result = scenario()
        return await result if asyncio.iscoroutine(result) else result

    return asyncio.run(main())


def test_sampler_steps_weigh_eight_tenths() -> None:
    async def scenario() -> list[float]:
        reports = Reports()
        tracker = PromptTracker(prompt_id="p", workflow=txt2img(steps=10), job=reports)
        tracker.handle(_msg("execution_start"))
        for node in ("1", "2", "3", "4"):  # loader, two prompts, latent: 4 of 7 nodes, no step yet
            tracker.handle(_msg("executing", node=node))
        tracker.handle(_msg("executing", node="5"))
        before_sampling = tracker.fraction()
        tracker.handle(_msg("progress", value=5, max=10, node="5"))
        half = tracker.fraction()
        tracker.handle(_msg("progress", value=10, max=10, node="5"))
        sampled = tracker.fraction()
        tracker.handle(_msg("executing", node="6"))
        tracker.handle(_msg("executing", node="7"))
        await asyncio.sleep(0)  # the burst's one report
        return [before_sampling, half, sampled, tracker.fraction(), reports.running]

    before, half, sampled, saving, running = _run(scenario)
    assert before == pytest.approx(0.2 * 4 / 8)  # +1 in the node count: never full before the outputs
    assert half == pytest.approx(0.2 * 4 / 8 + 0.8 * 0.5)
    assert sampled == pytest.approx(0.2 * 4 / 8 + 0.8)
    assert sampled < saving < 0.99
    assert running > 0


def test_a_burst_of_messages_is_one_report_with_the_newest_figures() -> None:
    """Frames that arrive together are applied one by one and reported once, after the last: the job sees the
    newest figures, at a fraction of the cost of a report per frame."""

    async def scenario() -> tuple[list[float], list[float], list[str]]:
        reports = Reports()
        tracker = PromptTracker(prompt_id="p", workflow=txt2img(steps=10), job=reports)
        tracker.handle(_msg("execution_start"))
        for node in ("1", "2", "3", "4", "5"):
            tracker.handle(_msg("executing", node=node))
        for step in range(1, 6):
            tracker.handle(_msg("progress", value=step, max=10, node="5"))
        during = list(reports.fractions)
        await asyncio.sleep(0)
        first = list(reports.fractions)
        tracker.handle(_msg("progress", value=10, max=10, node="5"))
        await asyncio.sleep(0)
        return during, first, reports.stages

    during, reports, stages = _run(scenario)
    assert during == [], "reported before the burst was over"
    assert reports == [pytest.approx(0.2 * 4 / 8 + 0.8 * 0.5)]
    assert stages == ["sampling", "sampling"]


def test_a_progress_state_that_finishes_no_node_is_not_a_report() -> None:
    """ComfyUI sends ``progress_state`` at every node's state change, mostly repeating "running": only one that
    finishes a node changes what the job shows."""

    def state(**nodes: str) -> Any:
        return _msg("progress_state", nodes={n: {"value": 0, "max": 1, "state": s} for n, s in nodes.items()})

    async def scenario() -> tuple[list[float], list[float]]:
        reports = Reports()
        tracker = PromptTracker(prompt_id="p", workflow=txt2img(steps=10), job=reports)
        tracker.handle(_msg("execution_start"))
        await asyncio.sleep(0)
        before = list(reports.fractions)
        tracker.handle(state(**{"1": "running"}))
        tracker.handle(state(**{"1": "running", "2": "pending"}))
        await asyncio.sleep(0)
        unchanged = list(reports.fractions)
        tracker.handle(state(**{"1": "finished"}))
        await asyncio.sleep(0)
        return before, unchanged, reports.fractions

    before, unchanged, after = _run(scenario)
    assert unchanged == before
    assert len(after) == len(before) + 1 and after[-1] > after[0]


def test_a_cached_sampler_leaves_the_weight_to_the_nodes() -> None:
    def scenario() -> tuple[float, float]:
        tracker = PromptTracker(prompt_id="p", workflow=txt2img(steps=10), job=Reports())
        tracker.handle(_msg("execution_cached", nodes=["1", "2", "3", "4", "5"]))
        tracker.handle(_msg("executing", node="6"))
        first = tracker.fraction()
        tracker.handle(_msg("executing", node="7"))
        return first, tracker.fraction()

    first, second = _run(scenario)
    assert first == 0.0 and second == pytest.approx(1 / 3)  # nodes 6 and 7 left, +1 until the outputs are in


def test_queue_position_reads_as_an_ordinal() -> None:
    def scenario() -> list[str]:
        reports = Reports()
        tracker = PromptTracker(prompt_id="p", workflow=txt2img(), job=reports)
        for place in (3, 2, 1, 11, 22):
            tracker.queued_at(place)
        tracker.handle(_msg("execution_start"))
        tracker.queued_at(4)  # once running, the queue no longer matters
        return reports.stages

    stages = _run(scenario)
    assert stages[:5] == ["3rd in queue", "2nd in queue", "1st in queue", "11th in queue", "22nd in queue"]
    assert "4th in queue" not in stages


def test_outcome_from_history_reads_files_errors_and_interruptions() -> None:
    ok = HistoryEntry.model_validate(
        {
            "outputs": {"7": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}},
            "status": {"status_str": "success", "completed": True, "messages": []},
        }
    )
    outcome = outcome_from_history(ok)
    assert outcome.ok and [ref.filename for _, ref in outcome.files] == ["a.png"] and outcome.output_nodes == 1
    failed = HistoryEntry.model_validate(
        {
            "outputs": {},
            "status": {
                "status_str": "error",
                "completed": False,
                "messages": [["execution_error", {"prompt_id": "p", "node_id": "5", "exception_message": "boom"}]],
            },
        }
    )
    error = outcome_from_history(failed).error
    assert error is not None and error.node_id == "5"
    stopped = HistoryEntry.model_validate({"outputs": {}, "status": {"status_str": "error", "messages": []}})
    assert outcome_from_history(stopped).interrupted


def test_a_queued_job_shows_its_own_place_in_the_queue(tmp_path: Path) -> None:
    from movie_director.clients.comfyui import client as comfy
    from movie_director.runtime import BackendConfig

    with EmulatorThread(step_delay=0.05) as emulator:
        rt = Runtime(output_root=tmp_path / "out")
        try:
            config = BackendConfig(name="comfyui", urls=emulator.url, concurrency=3)
            rt.register_backend("comfyui", comfy.factory, config)
            stages: list[str] = []

            def record(job: Job) -> None:
                stages.append(job.progress.stage)

            handles = [rt.submit("comfyui", "image", {"workflow": txt2img(steps=10, seed=n)}) for n in range(2)]
            # Both are on the server (one running, one waiting) before the last one is sent: it must be 2nd.
            assert pump_until(rt, lambda: all(h.status().remote_id for h in handles), timeout=30)
            last = rt.submit("comfyui", "image", {"workflow": txt2img(steps=2, seed=9)}, on_progress=record)
            assert pump_until(rt, lambda: all(h.done for h in [*handles, last]), timeout=60)
            assert all(h.wait(1).state is JobState.SUCCEEDED for h in [*handles, last])
        finally:
            rt.stop()
    assert "2nd in queue" in stages, stages
    assert stages.index("2nd in queue") < stages.index("sampling")
