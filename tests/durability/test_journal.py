"""The journal and restarts: jobs survive the runtime stopping (a Blender restart) and come back resumed,
collected or failed with a reason; never silently gone, never stuck."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from movie_director.clients import local
from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.runtime import BackendConfig, JobState, Runtime
from movie_director.runtime.jobs import Job
from movie_director.runtime.journal import Journal
from support import pump_until, txt2img


def test_journal_records_every_transition_before_it_takes_effect(tmp_path: Path) -> None:
    rt = Runtime(output_root=tmp_path, journal=tmp_path / "journal.db")
    rt.register_backend("local", local.factory, BackendConfig(name="local"))
    try:
        job = rt.submit("local", "echo", {"text": "x", "steps": 2}).wait(5)
        assert job.state is JobState.SUCCEEDED
        assert rt.journal is not None
        states = [state for state, _, _ in rt.journal.history(job.id)]
        assert states == ["queued", "submitted", "running", "succeeded"]
        stored = rt.journal.get(job.id)
        assert stored is not None and stored.state is JobState.SUCCEEDED and stored.outputs.text == "x"
    finally:
        rt.stop()


def test_journal_survives_reopening_and_skips_rows_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal(path)
    job = Job(backend="local", kind="echo", request={"text": "a"})
    journal.record(job)
    journal._db.execute("INSERT INTO jobs VALUES ('bad', 'local', 'echo', 'queued', '{not json', 0)")
    journal.close()
    again = Journal(path)
    assert [j.id for j in again.unfinished()] == [job.id]
    assert again.prune(older_than_s=0) == 0  # nothing finished yet
    again.close()


def test_queued_and_running_jobs_resume_after_a_restart(tmp_path: Path) -> None:
    def make() -> Runtime:
        rt = Runtime(output_root=tmp_path, journal=tmp_path / "journal.db")
        rt.register_backend("local", local.factory, BackendConfig(name="local", concurrency=1))
        return rt

    first = make()
    running = first.submit("local", "echo", {"text": "a", "steps": 50, "delay": 0.05})
    queued = first.submit("local", "echo", {"text": "b"})
    assert pump_until(first, lambda: running.status().state is JobState.RUNNING)
    first.stop()  # Blender quits: nothing is cancelled for good
    first.pump()
    assert running.status().state is JobState.CANCELLED  # this session's handle ends...
    assert first.journal is not None and first.journal.get(running.id).state is JobState.RUNNING  # type: ignore[union-attr]

    second = make()
    second.start()
    try:
        handles = {h.id: h for h in second.jobs()}
        assert set(handles) == {running.id, queued.id}
        jobs = {job_id: h.wait(10) for job_id, h in handles.items()}
        assert jobs[running.id].state is JobState.SUCCEEDED and jobs[running.id].outputs.text == "a"
        assert jobs[queued.id].state is JobState.SUCCEEDED and jobs[queued.id].outputs.text == "b"
        assert second.journal is not None and second.journal.unfinished() == []
    finally:
        second.stop()


def test_disabling_the_add_on_cancels_for_good(tmp_path: Path) -> None:
    rt = Runtime(output_root=tmp_path, journal=tmp_path / "journal.db")
    rt.register_backend("local", local.factory, BackendConfig(name="local"))
    h = rt.submit("local", "hang")
    assert pump_until(rt, lambda: h.status().state is JobState.RUNNING)
    rt.stop(cancel_remote=True)
    assert rt.journal is not None and rt.journal.get(h.id).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert rt.journal.unfinished() == []


@pytest.fixture
def slow_emulator():  # type: ignore[no-untyped-def]
    emu = EmulatorThread(step_delay=0.05).start()
    yield emu
    emu.stop()


def _comfy_runtime(tmp_path: Path, url: str, **kwargs) -> Runtime:  # type: ignore[no-untyped-def]
    rt = Runtime(output_root=tmp_path / "out", journal=tmp_path / "journal.db", **kwargs)
    rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=url, concurrency=2))
    return rt


def _files(tmp_path: Path, job_id: str) -> list[str]:
    return sorted(p.name for p in (tmp_path / "out" / "comfyui" / job_id).glob("*") if not p.name.startswith("."))


def test_comfyui_jobs_survive_a_blender_restart_without_duplicates(tmp_path: Path, slow_emulator) -> None:  # type: ignore[no-untyped-def]
    first = _comfy_runtime(tmp_path, slow_emulator.url)
    handles = [first.submit("comfyui", "image", {"workflow": txt2img(steps=8, seed=i)}) for i in range(4)]
    assert pump_until(first, lambda: handles[0].status().progress.step is not None, timeout=10)
    first.stop()
    # Meanwhile the server keeps working on what it was given.
    second = _comfy_runtime(tmp_path, slow_emulator.url)
    second.start()
    try:
        restored = {h.id: h for h in second.jobs()}
        assert set(restored) == {h.id for h in handles}
        for h in restored.values():
            job = h.wait(60)
            assert job.state is JobState.SUCCEEDED, job.error
            assert len(job.outputs.files) == 1
            assert len(_files(tmp_path, job.id)) == 1  # no duplicate outputs
        history = slow_emulator.emulator.history
        assert all(h.id in history for h in handles)
        assert len([k for k in history if k in restored]) == 4  # each prompt ran exactly once on the server
    finally:
        second.stop()


def test_a_prompt_lost_with_the_server_while_blender_was_closed_is_sent_again(tmp_path: Path, slow_emulator) -> None:  # type: ignore[no-untyped-def]
    first = _comfy_runtime(tmp_path, slow_emulator.url)
    h = first.submit("comfyui", "image", {"workflow": txt2img(steps=30)})
    assert pump_until(first, lambda: h.status().progress.step is not None, timeout=10)
    first.stop()
    slow_emulator.restart()  # ComfyUI restarted too: the prompt is gone
    slow_emulator.step_delay = 0.005
    second = _comfy_runtime(tmp_path, slow_emulator.url)
    second.start()
    try:
        (again,) = second.jobs()
        job = again.wait(30)
        assert job.state is JobState.SUCCEEDED, job.error
        assert any("sent it again" in line for line in job.log)
    finally:
        second.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_job_waits_for_an_offline_server_and_goes_out_when_it_answers(tmp_path: Path) -> None:
    port = _free_port()
    rt = _comfy_runtime(tmp_path, f"http://127.0.0.1:{port}", offline_wait=60)
    states: list[str] = []
    rt.subscribe(lambda e: states.append(e.state), kinds={"backend_state"})
    try:
        h = rt.submit("comfyui", "image", {"workflow": txt2img(steps=2)})
        assert pump_until(rt, lambda: h.status().progress.stage == "waiting for server", timeout=10)
        assert h.status().state is JobState.QUEUED and "offline" in states
        rt.pause("comfyui")  # queue control works while offline
        rt.set_concurrency("comfyui", 1)
        with EmulatorThread(port=port, step_delay=0.0):
            assert pump_until(rt, lambda: rt.backend_states.get("comfyui", ("",))[0] == "connected", timeout=40)
            assert h.status().state is JobState.QUEUED  # paused: it waits in the queue
            rt.resume("comfyui")
            job = h.wait(30)
        assert job.state is JobState.SUCCEEDED, job.error
    finally:
        rt.stop()


def test_an_offline_job_can_be_cancelled_and_expires_with_a_reason(tmp_path: Path) -> None:
    rt = _comfy_runtime(tmp_path, f"http://127.0.0.1:{_free_port()}", offline_wait=0.5)
    try:
        cancelled = rt.submit("comfyui", "image", {"workflow": txt2img()})
        expiring = rt.submit("comfyui", "image", {"workflow": txt2img(seed=2)})
        assert pump_until(rt, lambda: cancelled.status().progress.stage == "waiting for server", timeout=10)
        cancelled.cancel()
        assert cancelled.wait(2).state is JobState.CANCELLED
        job = expiring.wait(20)
        assert job.state is JobState.FAILED and job.error and "did not come back" in job.error.message
    finally:
        rt.stop()


def test_journal_stats_count_jobs_by_state(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "s.db")
    done = Job(backend="local", kind="echo")
    journal.record(Job(backend="local", kind="echo"))
    journal.record(done, JobState.SUCCEEDED)
    assert journal.stats() == {"queued": 1, "succeeded": 1}
    journal.close()


@pytest.fixture
def journaled(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime with a journal (``tmp_path / "journal.db"``) and the local backend, its loop running."""
    rt = Runtime(output_root=tmp_path, journal=tmp_path / "journal.db")
    rt.register_backend("local", local.factory, BackendConfig(name="local", concurrency=2))
    rt.submit("local", "echo", {"text": "warm"}).wait(5)
    yield rt
    rt.stop()


def _hold_loop(rt: Runtime) -> threading.Event:
    """Keep the loop busy until the returned event is set: what is submitted meanwhile arrives in one turn."""
    gate, held = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        gate.wait(10)

    rt.loop_thread.call_soon(hold)
    assert held.wait(5)
    return gate


def test_a_burst_of_submissions_is_one_commit_and_each_job_is_journaled_before_it_runs(journaled: Runtime) -> None:
    gate = _hold_loop(journaled)
    handles = [journaled.submit("local", "echo", {"text": f"shot {i}"}) for i in range(12)]
    gate.set()
    assert all(h.wait(10).state is JobState.SUCCEEDED for h in handles)
    assert journaled.journal is not None
    histories = [journaled.journal.history(h.id) for h in handles]
    assert all([s for s, _, _ in history] == ["queued", "submitted", "running", "succeeded"] for history in histories)
    queued_at = {history[0][1] for history in histories}
    assert len(queued_at) == 1, "the twelve arrivals are written in one transaction (one time stamp)"
    assert all(history[0][1] <= history[1][1] for history in histories)


def test_a_job_cancelled_in_the_turn_it_was_submitted_ends_cancelled_in_the_journal(journaled: Runtime) -> None:
    gate = _hold_loop(journaled)
    dropped = journaled.submit("local", "echo", {"text": "never"})
    kept = journaled.submit("local", "echo", {"text": "kept"})
    dropped.cancel()
    gate.set()
    assert dropped.wait(5).state is JobState.CANCELLED
    assert kept.wait(5).state is JobState.SUCCEEDED
    assert journaled.journal is not None
    stored = journaled.journal.get(dropped.id)
    assert stored is not None and stored.state is JobState.CANCELLED and stored.request == {"text": "never"}
    assert [s for s, _, _ in journaled.journal.history(dropped.id)] == ["cancelled"]
    assert journaled.journal.unfinished() == []


def test_a_burst_the_journal_refuses_fails_every_job_of_it_with_the_reason(journaled: Runtime, tmp_path: Path) -> None:
    assert journaled.journal is not None
    gate = _hold_loop(journaled)
    journaled.journal.close()
    (tmp_path / "journal.db").unlink()
    (tmp_path / "journal.db").mkdir()  # sqlite cannot open a folder
    handles = [journaled.submit("local", "echo", {"text": f"shot {i}"}) for i in range(3)]
    gate.set()
    for h in handles:
        job = h.wait(5)
        assert job.state is JobState.FAILED and job.error is not None and "journal" in job.error.message


def test_jobs_can_be_moved_in_the_turn_they_arrive_and_start_in_their_new_order(journaled: Runtime) -> None:
    """What the jobs panel does right after a submission (move a job up) sees the job in its queue at once, though
    it is written to the journal only at the end of the loop's turn."""
    journaled.configure(BackendConfig(name="local", concurrency=1))
    journaled.pause("local")
    gate = _hold_loop(journaled)
    first = journaled.submit("local", "echo", {"text": "one"})
    second = journaled.submit("local", "echo", {"text": "two"})
    journaled.set_priority(second.id, 1)
    gate.set()
    journaled.resume("local")
    assert [h.wait(5).state for h in (first, second)] == [JobState.SUCCEEDED, JobState.SUCCEEDED]
    assert second.status().submitted_at <= first.status().submitted_at  # type: ignore[operator]


def test_a_job_submitted_as_blender_quits_is_resumed_at_the_next_start(tmp_path: Path) -> None:
    def make() -> Runtime:
        rt = Runtime(output_root=tmp_path, journal=tmp_path / "journal.db")
        rt.register_backend("local", local.factory, BackendConfig(name="local"))
        return rt

    first = make()
    first.submit("local", "echo", {"text": "warm"}).wait(5)
    gate = _hold_loop(first)
    late = first.submit("local", "echo", {"text": "late"})
    threading.Timer(0.2, gate.set).start()  # stop() queues its cancel behind the turn that holds the arrival
    first.stop(timeout=3.0)
    assert first.journal is not None and first.journal.get(late.id) is not None, "written before the loop stopped"

    second = make()
    second.start()
    try:
        handle = second.handle(late.id)
        assert handle is not None, "resumed at the next start"
        job = handle.wait(10)
        assert job.state is JobState.SUCCEEDED and job.outputs.text == "late"
    finally:
        second.stop()
