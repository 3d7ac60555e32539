"""The runtime against hostile results and careless callers: every failure ends its job with a message, releases its
slot, and leaks no key; a broken journal never stops start-up. Each test is bounded in time."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy
import pytest
from movie_director.clients import local
from movie_director.runtime import (
    BackendClient,
    BackendConfig,
    HealthInfo,
    Job,
    JobContext,
    JobOutputs,
    JobState,
    Runtime,
)
from movie_director.runtime.errors import InvalidRequestError
from movie_director.runtime.journal import Journal
from movie_director.runtime.pipeline import PipelineSpec, Stage
from support import pump_until

KEY = "sk-hostile-0123456789abcdef"


def deep(n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = out
    for _ in range(n):
        cur["x"] = {}
        cur = cur["x"]
    return out


class EchoServer(BackendClient):
    """A server that answers with whatever the request tells it to: outputs nested ``depth`` deep, log lines and
    progress text (which may echo the key it was sent)."""

    name = "hostile"

    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        return None

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        ctx.mark_running()
        say = str(job.request.get("say", ""))
        if say:
            ctx.log(say)
            ctx.report_progress(0.5, stage=say, message=say)
        return JobOutputs(text=say, data=deep(int(job.request.get("depth", 0))))

    async def health(self) -> HealthInfo:
        return HealthInfo(ok=True, url="hostile", message="answers anything")


def hostile_runtime(tmp_path: Path, **config: Any) -> Runtime:
    rt = Runtime(output_root=tmp_path / "out", journal=tmp_path / "jobs.db")
    rt.register_backend("hostile", EchoServer, BackendConfig(name="hostile", concurrency=1, **config))
    return rt


def test_a_result_the_journal_cannot_store_fails_the_job_and_frees_its_slot(tmp_path: Path) -> None:
    rt = hostile_runtime(tmp_path)
    try:
        bad = rt.submit("hostile", "x", {"depth": 300})  # "Maximum serialization depth exceeded" in the journal
        after = rt.submit("hostile", "x", {"say": "next"})  # same backend, concurrency 1: needs the slot back
        job = bad.wait(10)
        assert job.state is JobState.FAILED
        assert job.error is not None and "journal" in job.error.message and "depth" in job.error.message
        assert after.wait(10).state is JobState.SUCCEEDED
        stored = rt.journal.get(bad.id)  # type: ignore[union-attr]
        assert stored is not None and stored.state is JobState.FAILED  # not left "running" for the next start
    finally:
        rt.stop()


def test_numpy_numbers_are_converted_and_other_objects_refused_naming_the_parameter(rt: Runtime) -> None:
    handle = rt.submit("local", "echo", {"text": "x", "steps": numpy.int64(2), "delay": numpy.float32(0.0)})
    job = handle.wait(10)
    assert job.state is JobState.SUCCEEDED
    assert type(job.request["steps"]) is int and type(job.request["delay"]) is float
    with pytest.raises(InvalidRequestError, match=r"'params\.seed' is a object"):
        rt.submit("local", "echo", {"params": {"seed": object()}})
    with pytest.raises(InvalidRequestError, match=r"'cfg' is nan"):
        rt.submit("local", "echo", {"cfg": float("nan")})
    with pytest.raises(InvalidRequestError, match=r"'data' is a bytes"):
        rt.submit("local", "echo", {"data": b"\x00"})
    assert [h.id for h in rt.jobs()] == [handle.id]  # nothing refused was queued


@pytest.mark.parametrize("damage", ["random", "truncated", "pages"])
def test_a_corrupt_journal_is_moved_aside_said_once_and_a_fresh_one_used(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    if damage == "random":
        path.write_bytes(os.urandom(8192))
    else:
        good = Journal(path)
        for i in range(200):
            good.record(Job(backend="local", kind="echo", request={"text": "x" * 500, "i": i}))
        good.close()
        data = path.read_bytes()
        if damage == "truncated":
            path.write_bytes(data[: len(data) // 3])
        else:  # overwrite pages in the middle with noise
            middle = len(data) // 2
            path.write_bytes(data[:middle] + os.urandom(8192) + data[middle + 8192 :])
    with caplog.at_level(logging.WARNING, logger="movie_director.runtime.journal"):
        rt = Runtime(output_root=tmp_path / "out", journal=path)
        rt.register_backend("local", local.factory, BackendConfig(name="local"))
        try:
            assert rt.submit("local", "echo", {"text": "after"}).wait(10).state is JobState.SUCCEEDED
        finally:
            rt.stop()
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("jobs.db.corrupt-")]
    assert moved, "the damaged journal is kept for inspection"
    warnings = [r for r in caplog.records if "could not be read" in r.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()


def test_no_key_reaches_a_job_log_progress_text_or_the_journal(tmp_path: Path) -> None:
    # The key is set through the plain runtime API only (no add-on): configuring it registers it as a secret.
    rt = hostile_runtime(tmp_path, api_key=KEY)
    try:
        line = f"POST /generate Authorization: Bearer {KEY} ok"
        seen: list[str] = []
        handle = rt.submit("hostile", "x", {"say": line, "note": f"key={KEY}"})
        handle.on_log(lambda job, text: seen.append(text))
        handle.on_progress(lambda job: seen.extend([job.progress.stage, job.progress.message]))
        job = handle.wait(10)
        assert job.state is JobState.SUCCEEDED
        texts = [*seen, *job.log, job.progress.message, job.progress.stage, str(job.outputs.text)]
        assert any("Bearer ***" in t for t in texts)
        assert not any(KEY in t for t in texts)
    finally:
        rt.stop()
    for name in ("jobs.db", "jobs.db-wal"):
        file = tmp_path / name
        if file.exists():
            assert KEY.encode() not in file.read_bytes()


def test_stop_closes_the_journal_files(tmp_path: Path) -> None:
    rt = hostile_runtime(tmp_path)
    rt.submit("hostile", "x", {"say": "hi"}).wait(10)

    def open_journal_files() -> list[str]:
        out = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(str(tmp_path / "jobs.db")):
                out.append(target)
        return out

    assert open_journal_files()
    rt.stop()
    assert open_journal_files() == []


def test_an_unknown_stage_is_refused_at_the_call_naming_the_stages(rt: Runtime) -> None:
    spec = PipelineSpec(stages=[Stage(id="shot1.image", backend="local", kind="echo", request={"text": "a"})])
    handle = rt.run_pipeline(spec)
    handle.wait(10)
    for action in (handle.regenerate, handle.retry, handle.cancel):
        with pytest.raises(KeyError, match=r"no stage 'shot2\.image'.*shot1\.image"):
            action("shot2.image")


def test_wait_after_regenerate_waits_for_the_new_take(rt: Runtime) -> None:
    stage = Stage(id="s", backend="local", kind="echo", request={"text": "a", "steps": 5, "delay": 0.02})
    handle = rt.run_pipeline(PipelineSpec(stages=[stage]))
    first = handle.wait(10).stages[0].job_id
    handle.regenerate("s")
    again = handle.wait(10).stages[0]  # no pumping in between: wait itself must not return the old result
    assert again.job_id != first and again.state.value == "succeeded" and len(again.takes) == 1


def test_a_failure_recording_a_new_job_fails_it_at_once(tmp_path: Path) -> None:
    rt = hostile_runtime(tmp_path)
    try:
        rt.journal.close()  # type: ignore[union-attr]
        (tmp_path / "jobs.db").unlink()
        (tmp_path / "jobs.db").mkdir()  # the journal's file is now a folder: sqlite cannot open it
        handle = rt.submit("hostile", "x", {"say": "hi"})
        job = handle.wait(10)
        assert job.state is JobState.FAILED and job.error is not None and "journal" in job.error.message
    finally:
        rt.stop()
    assert isinstance(sqlite3.sqlite_version, str)


def test_a_second_session_does_not_take_over_a_live_sessions_jobs_until_it_is_gone(tmp_path: Path) -> None:
    def session() -> Runtime:
        rt = Runtime(output_root=tmp_path / "out", journal=tmp_path / "shared.db", lease=0.6)
        rt.register_backend("local", local.factory, BackendConfig(name="local", concurrency=1))
        return rt

    first, second = session(), session()
    try:
        running = first.submit("local", "echo", {"text": "a", "steps": 40, "delay": 0.05})
        queued = first.submit("local", "echo", {"text": "b"})
        second.start()  # both sessions share the journal (the extension's user folder)
        assert second.jobs() == []  # the first session is alive: nothing is taken over, nothing sent twice
        assert running.wait(10).state is JobState.SUCCEEDED and queued.wait(10).state is JobState.SUCCEEDED
        # A job of a session that goes away unfinished is taken over by the live one, within a lease.
        hanging = first.submit("local", "echo", {"text": "c", "steps": 60, "delay": 0.05})
        assert pump_until(first, lambda: hanging.status().state is JobState.RUNNING)
        first.stop()  # Blender quits: the job stays unfinished in the journal, its owner gone
        assert pump_until(second, lambda: second.handle(hanging.id) is not None, timeout=5)
        taken = second.handle(hanging.id)
        assert taken is not None and taken.wait(20).state is JobState.SUCCEEDED
        history = [state for state, _, _ in second.journal.history(hanging.id)]  # type: ignore[union-attr]
        assert history.count("queued") == 1  # taken over (resumed), not queued and sent again
    finally:
        first.stop()
        second.stop()


def test_every_secret_a_backend_config_holds_is_registered() -> None:
    from movie_director.runtime.errors import redact

    config = BackendConfig(
        name="x", api_key="sk-config-key-000111\n", options={"hf_token": "hf_secret_token_42", "mode": "fast"}
    )
    assert config.secrets() == ["sk-config-key-000111", "hf_secret_token_42"]
    rt = Runtime()
    rt.register_backend("x", local.factory, config)
    assert redact("k=sk-config-key-000111 t=hf_secret_token_42 mode=fast") == "k=*** t=*** mode=fast"
