"""ComfyUI as a hostile or broken server would behave: clashing output names, a lost answer to POST /prompt, garbage
in /history, no outputs at all, progress frames with Infinity and NaN. Every test asserts the invariants: the job is
terminal within a bound, no file lands outside its job folder, nothing runs twice, and the backend's slot is free for
the next job."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from comfyui_fake import FakeComfy, Output, Script, workflow
from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.outputs import plan_outputs
from movie_director.clients.comfyui.protocol import FileRef
from movie_director.runtime import BackendConfig, Job, JobHandle, JobState, RetryPolicy, Runtime
from support import eventually

BOUND = 20.0  # seconds within which every job must be terminal


@pytest.fixture
def fake() -> Iterator[FakeComfy]:
    with FakeComfy() as server:
        yield server


@pytest.fixture
def rt(fake: FakeComfy, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(output_root=tmp_path / "out")
    config = BackendConfig(name="comfyui", urls=fake.url, concurrency=1, retry=RetryPolicy(base_delay=0.05))
    runtime.register_backend("comfyui", comfy.factory, config)
    yield runtime
    runtime.stop()


def finish(rt: Runtime, handle: JobHandle, fake: FakeComfy, tmp_path: Path) -> Job:
    """Wait (bounded) for the job, then check the invariants every hostile test shares."""
    job = handle.wait(BOUND)
    assert job.state.terminal
    folder = (tmp_path / "out" / "comfyui" / job.id).resolve()
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file():
            assert path.resolve().parent == folder, f"{path} is outside the job's folder"
            assert not path.name.startswith(".part-"), f"a half-written download was left: {path}"
    # The slot is released: a well-behaved job on the same (concurrency 1) backend runs to its end.
    fake.script = Script()
    after = rt.submit("comfyui", "image", {"workflow": workflow()}).wait(BOUND)
    assert after.state is JobState.SUCCEEDED, after.error
    return job


def test_outputs_with_one_name_in_two_subfolders_both_arrive_intact(
    rt: Runtime, fake: FakeComfy, tmp_path: Path
) -> None:
    fake.script.outputs = [
        Output("10", "img_00001_.png", "a", b"\x89PNG-from-a"),
        Output("11", "img_00001_.png", "b", b"\x89PNG-from-b"),  # same size: only the name tells them apart
    ]
    job = finish(rt, rt.submit("comfyui", "image", {"workflow": workflow(saves=2)}), fake, tmp_path)
    assert job.state is JobState.SUCCEEDED, job.error
    by_node = {f.node: Path(f.path) for f in job.outputs.files}
    assert set(by_node) == {"10", "11"} and by_node["10"] != by_node["11"]
    assert by_node["10"].read_bytes() == b"\x89PNG-from-a"
    assert by_node["11"].read_bytes() == b"\x89PNG-from-b"


def test_a_resumed_download_is_skipped_only_for_that_very_output_when_intact(fake: FakeComfy, tmp_path: Path) -> None:
    outs = [Output("10", "img_00001_.png", "a", b"AAAA"), Output("11", "img_00001_.png", "b", b"BBBBBB")]
    fake.script.outputs = outs
    plan = plan_outputs([(o.node, FileRef(**o.ref())) for o in outs])
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / plan[1].name).write_bytes(b"BBBBBB")  # output b, fetched in full before a restart
    (folder / plan[0].name).write_bytes(b"AA")  # output a, cut short (as a file of another size)
    (folder / "img_00001_.png").write_bytes(b"XXXX")  # a's file name and size, but not output a

    async def resume_downloads() -> list[Path]:
        client = comfy.ComfyClient(BackendConfig(name="comfyui", urls=fake.url, retry=RetryPolicy(base_delay=0.05)))
        try:
            conn = client.connection(fake.url)
            return [Path((await client.download(conn, p.node, p.ref, folder, p.name)).path) for p in plan]
        finally:
            await client.close()

    a, b = asyncio.run(asyncio.wait_for(resume_downloads(), BOUND))
    assert a.read_bytes() == b"AAAA" and b.read_bytes() == b"BBBBBB"
    assert fake.view_gets == [("a", "img_00001_.png")]  # b was kept; a was fetched again, once
    assert (folder / "img_00001_.png").read_bytes() == b"XXXX"  # never mistaken for an output


def test_a_lost_answer_to_post_prompt_never_runs_the_prompt_twice(rt: Runtime, fake: FakeComfy, tmp_path: Path) -> None:
    fake.script.lose_first_answer = True
    job = finish(rt, rt.submit("comfyui", "image", {"workflow": workflow()}), fake, tmp_path)
    assert job.state is JobState.SUCCEEDED, job.error
    assert fake.prompt_posts.count(job.id) == 1, "the prompt was sent again although the server had it"
    assert fake.runs.count(job.id) == 1
    assert len(job.outputs.files) == 1


def test_a_post_that_never_arrived_is_sent_again_and_runs_once(rt: Runtime, fake: FakeComfy, tmp_path: Path) -> None:
    fake.script.drop_first_request = True
    job = finish(rt, rt.submit("comfyui", "image", {"workflow": workflow()}), fake, tmp_path)
    assert job.state is JobState.SUCCEEDED, job.error
    assert fake.prompt_posts.count(job.id) == 2
    assert fake.runs.count(job.id) == 1


def test_malformed_history_is_a_protocol_error_not_a_success(rt: Runtime, fake: FakeComfy, tmp_path: Path) -> None:
    fake.script.announce_outputs = False  # only /history can name the outputs, and it answers garbage
    fake.script.history_body = lambda pid: {pid: {"outputs": "garbage", "status": 7}}
    job = finish(rt, rt.submit("comfyui", "image", {"workflow": workflow()}), fake, tmp_path)
    assert job.state is JobState.FAILED
    assert job.error is not None and job.error.code == "protocol_error", job.error
    assert "history" in job.error.message


def test_a_workflow_with_output_nodes_cannot_succeed_with_no_outputs(
    rt: Runtime, fake: FakeComfy, tmp_path: Path
) -> None:
    fake.script.outputs = []
    job = finish(rt, rt.submit("comfyui", "image", {"workflow": workflow()}), fake, tmp_path)
    assert job.state is JobState.FAILED
    assert job.error is not None and "no output file" in job.error.message


@pytest.mark.parametrize("value", ["Infinity", "NaN", "-Infinity", "1e400"])
def test_a_bad_progress_frame_never_drops_the_event_socket(
    rt: Runtime, fake: FakeComfy, tmp_path: Path, value: str
) -> None:
    frame = '{"type": "progress", "data": {"value": VALUE, "max": MAX, "prompt_id": "$PID", "node": "1"}}'
    fake.script.frames = [
        frame.replace("VALUE", value).replace("MAX", "10"),
        frame.replace("VALUE", "3").replace("MAX", value),
        frame.replace("VALUE", "5").replace("MAX", "10"),
    ]
    job = finish(rt, rt.submit("comfyui", "image", {"workflow": workflow()}), fake, tmp_path)
    assert job.state is JobState.SUCCEEDED, job.error
    assert fake.ws_connections == 1, "a bad frame dropped the event socket"
    assert job.progress.step == 5 and job.progress.total == 10  # the good frame after the bad ones still counts
    assert sum("malformed" in line for line in job.log) == 2


def test_a_lost_prompt_that_cannot_be_sent_again_fails_the_job(rt: Runtime, fake: FakeComfy, tmp_path: Path) -> None:
    fake.script.forget_then_refuse = True
    handle = rt.submit("comfyui", "image", {"workflow": workflow()})
    assert eventually(lambda: len(fake.prompt_posts) == 1, timeout=BOUND)
    fake.drop_sockets()  # on reconnect the client asks about its prompt: the server has never heard of it
    job = finish(rt, handle, fake, tmp_path)
    assert job.state is JobState.FAILED
    assert job.error is not None and "forgot the model" in job.error.message
    assert fake.prompt_posts.count(job.id) == 2 and job.id not in fake.runs
