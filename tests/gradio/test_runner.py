"""GradioRunner against a real Gradio app: progress, logs, errors, deadlines, cancellation, files, discovery, and
not one thread left behind."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from gradio_support import GradioApp
from movie_director.clients.gradio_app import EndpointQuery, GradioRunner, Role
from movie_director.runtime import Job, JobState, NetworkPolicy, Runtime
from movie_director.runtime.errors import (
    BackendUnavailableError,
    NotFoundError,
    OnlineAccessError,
    ProtocolError,
)
from support import pump_until


def call(rt: Runtime, endpoint: str, *args: object, deadline: float = 20.0, **kwargs: object):  # type: ignore[no-untyped-def]
    return rt.submit(
        "gradio", "call", {"endpoint": endpoint, "args": list(args), "kwargs": kwargs, "deadline": deadline}
    )


def on_loop(rt: Runtime, coro, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    return rt.call(coro).result(timeout)


def test_progress_steps_and_log_lines_reach_the_job(gr_rt: Runtime) -> None:
    seen: list[Job] = []
    lines: list[str] = []
    h = call(gr_rt, "/steps", 6, 0.12, "sampling").on_progress(seen.append).on_log(lambda job, line: lines.append(line))
    assert pump_until(gr_rt, lambda: h.done, timeout=20)
    job = h.wait(1)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.data["data"] == "sampling done"
    assert job.started_at is not None  # marked running when the app started processing
    steps = [(j.progress.stage, j.progress.step, j.progress.total) for j in seen]
    assert any(stage == "sampling" and total == 6 and 0 <= (step or 0) < 6 for stage, step, total in steps), steps
    assert job.progress.stage == "finishing"  # the last bar: progress(0.95, desc="finishing")
    assert all(j.progress.fraction < 1.0 for j in seen)
    assert "starting sampling" in lines and "WARNING: this is only a test" in lines
    assert job.remote_id and len(job.remote_id) >= 16  # the app's event id


def test_gr_error_fails_the_job_with_the_apps_message(gr_rt: Runtime) -> None:
    job = call(gr_rt, "/fail", "The take is ruined: no sound recorded").wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "job_failed"
    assert "The take is ruined: no sound recorded" in job.error.message


def test_an_app_crash_without_details_says_where_to_look(gr_rt: Runtime) -> None:
    job = call(gr_rt, "/crash", "x").wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "job_failed" and "console" in job.error.message
    assert "secret internal detail" not in job.error.message


def test_our_deadline_ends_a_job_the_app_never_finishes(gr_rt: Runtime) -> None:
    start = time.monotonic()
    job = call(gr_rt, "/block", 60, deadline=0.6).wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error.code == "timeout" and "/block" in job.error.message
    assert time.monotonic() - start < 5
    released = call(gr_rt, "/release").wait(20)
    assert released.state is JobState.SUCCEEDED, released.error  # the app's worker is free again


def _peek(rt: Runtime, key: str) -> dict:  # type: ignore[type-arg]
    runner = _runner(rt)
    return on_loop(rt, runner.call("/peek", key, deadline=10)).data  # type: ignore[no-any-return]


def _runner(rt: Runtime) -> GradioRunner:
    async def get() -> GradioRunner:
        return rt.client("gradio").runner  # type: ignore[attr-defined,no-any-return]

    return on_loop(rt, get())


def test_cancelling_a_running_job_stops_it_on_the_app(gr_rt: Runtime) -> None:
    key = uuid.uuid4().hex
    h = call(gr_rt, "/count", key, 2000, 0.01)
    assert pump_until(gr_rt, lambda: (_peek(gr_rt, key) or {}).get("steps", 0) >= 3, timeout=15)
    h.cancel()
    assert h.wait(5).state is JobState.CANCELLED
    assert pump_until(gr_rt, lambda: _peek(gr_rt, key).get("closed") is True, timeout=15)
    assert _peek(gr_rt, key)["steps"] < 2000


def test_cancelling_a_queued_job_removes_it_from_the_apps_queue(gr_rt: Runtime) -> None:
    blocker = call(gr_rt, "/block", 30)
    assert pump_until(gr_rt, lambda: blocker.status().state is JobState.RUNNING, timeout=15)
    key = uuid.uuid4().hex
    queued = call(gr_rt, "/count", key, 3, 0.0)
    assert pump_until(gr_rt, lambda: queued.status().progress.stage == "queued", timeout=15)
    assert "queue" in queued.status().progress.message
    queued.cancel()
    assert queued.wait(5).state is JobState.CANCELLED
    assert call(gr_rt, "/release").wait(20).state is JobState.SUCCEEDED
    assert blocker.wait(20).state is JobState.SUCCEEDED
    after = uuid.uuid4().hex
    assert call(gr_rt, "/count", after, 1, 0.0).wait(20).state is JobState.SUCCEEDED  # FIFO: would have run first
    assert _peek(gr_rt, key) == {}


def test_cancelling_one_of_two_parallel_calls_leaves_the_other_alone(gr_rt: Runtime) -> None:
    # Gradio's /cancel stops every task of one session and endpoint: each parallel call needs its own session.
    first = call(gr_rt, "/steps", 40, 0.05, "first")
    second = call(gr_rt, "/steps", 8, 0.05, "second")
    both_running = (first, second)
    assert pump_until(gr_rt, lambda: all((h.status().progress.step or 0) >= 1 for h in both_running), timeout=15)
    first.cancel()
    assert first.wait(5).state is JobState.CANCELLED
    job = second.wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.outputs.data["data"] == "second done"


def test_a_call_right_after_a_cancelled_one_is_not_lost(gr_rt: Runtime) -> None:
    # The cancelled call's event stream closes under the next call unless the runner waits for it to close.
    for i in range(4):
        timed_out = call(gr_rt, "/block", 30, deadline=0.3).wait(10)
        assert timed_out.error is not None and timed_out.error.code == "timeout"
        released = call(gr_rt, "/release").wait(10)
        assert released.state is JobState.SUCCEEDED, (i, released.error)


def test_more_calls_than_workers_all_finish(app: GradioApp, make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(app.url, concurrency=8, max_workers=2)
    handles = [call(rt, "/steps", 3, 0.05, f"take {i}") for i in range(8)]
    jobs = [h.wait(30) for h in handles]
    assert [j.state for j in jobs] == [JobState.SUCCEEDED] * 8
    assert sorted(j.outputs.data["data"] for j in jobs) == sorted(f"take {i} done" for i in range(8))


def test_output_files_land_in_the_job_folder(gr_rt: Runtime) -> None:
    job = call(gr_rt, "/two_files", "slate").wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    folder = Path(gr_rt.output_root) / "gradio" / job.id
    a, b = job.outputs.files
    assert [Path(a.path).parent, Path(b.path).parent] == [folder.resolve()] * 2
    assert (Path(a.path).read_text(), Path(b.path).read_text()) == ("slate", "etals")
    assert a.media_type == "text/plain" and a.size == 5 and (a.node, b.node) == ("0", "1")
    assert list(job.outputs.data["data"]) == [a.path, b.path, "SLATE"]


def test_file_names_from_the_app_are_sanitised(gr_rt: Runtime) -> None:
    job = call(gr_rt, "/make_file", "take:..:one.bin", 10).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    (out,) = job.outputs.files
    path = Path(out.path)
    assert path.parent == (Path(gr_rt.output_root) / "gradio" / job.id).resolve()
    assert ":" not in path.name and path.stat().st_size == 10


def test_a_file_over_the_size_limit_is_refused(app: GradioApp, make_rt: Callable[..., Runtime]) -> None:
    rt = make_rt(app.url, max_file_bytes=1000)
    job = call(rt, "/make_file", "big.bin", 5000).wait(20)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "protocol_error"
    assert "limit" in job.error.message
    assert not any((Path(rt.output_root) / "gradio" / job.id).iterdir())


def test_path_arguments_are_uploaded(gr_rt: Runtime, tmp_path: Path) -> None:
    src = tmp_path / "line.wav"
    src.write_bytes(b"x" * 1234)
    result = on_loop(gr_rt, _runner(gr_rt).call("/upload_size", src, deadline=20))
    assert result.data == 1234


def test_endpoints_without_api_name_are_found_by_name_or_by_labels(gr_rt: Runtime) -> None:
    runner = _runner(gr_rt)
    by_name = on_loop(gr_rt, runner.find_endpoint(EndpointQuery(names=("synthesize",))))
    assert by_name.by == "name" and by_name.endpoint.api_name == "/synthesize"
    roles = {
        "text": Role(("input your text", "prompt"), ("Textbox",)),
        "seed": Role(("seed", "different result"), ("Number",)),
    }
    by_labels = on_loop(gr_rt, runner.find_endpoint([EndpointQuery(names=("text2audio",), roles=roles)]))
    assert by_labels.by == "parameters" and set(by_labels.roles) == {"text", "seed"}
    result = on_loop(gr_rt, runner.call(by_labels, *by_labels.arguments({"text": "rain", "seed": 3}), deadline=10))
    assert result.data in ("synth:rain:3", "rain|3")
    lam = on_loop(gr_rt, runner.find_endpoint(EndpointQuery(names=("lambda",), roles=roles)))
    assert lam.endpoint.api_name == "/lambda" and lam.roles == {"text": 0, "seed": 1}
    defaults = on_loop(gr_rt, runner.call(lam, *lam.arguments({"text": "wind"}), deadline=10))
    assert defaults.data == "wind|7"  # the app's default for the seed


def test_a_missing_endpoint_is_named_with_what_the_app_offers(gr_rt: Runtime) -> None:
    runner = _runner(gr_rt)
    with pytest.raises(NotFoundError) as err:
        on_loop(gr_rt, runner.find_endpoint(EndpointQuery(names=("text2audio",), what="text-to-audio endpoint")))
    assert "text-to-audio endpoint" in str(err.value) and "/steps(n, delay, desc)" in str(err.value)
    job = call(gr_rt, "/no_such_thing").wait(10)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "not_found"
    assert "/two_files" in job.error.message


def test_an_app_that_is_not_running_is_unavailable(make_rt: Callable[..., Runtime]) -> None:
    from gradio_support import free_port

    rt = make_rt(f"http://127.0.0.1:{free_port()}")
    start = time.monotonic()
    job = call(rt, "/steps", 1, 0, "x").wait(20)
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "backend_unavailable"
    assert time.monotonic() - start < 10
    assert rt.check_health("gradio").result(20).ok is False


def test_online_access_off_refuses_other_computers(tmp_path: Path) -> None:
    rt = Runtime(output_root=tmp_path, network=NetworkPolicy(online_access=False))
    runner = GradioRunner("http://192.0.2.1:7860", backend="gradio", network=rt.network)
    try:
        with pytest.raises(OnlineAccessError):
            on_loop(rt, runner.info())
    finally:
        on_loop(rt, runner.close())
        rt.stop()


def test_health_names_the_gradio_version(gr_rt: Runtime) -> None:
    info = gr_rt.check_health("gradio").result(20)
    assert info.ok and info.version.startswith("6.") and "endpoints" in info.message


def test_the_app_vanishing_mid_job_fails_it_quickly(
    apps: dict[str, GradioApp], make_rt: Callable[..., Runtime]
) -> None:
    spare = apps["spare"]
    rt = make_rt(spare.url)
    h = call(rt, "/steps", 400, 0.05, "long", deadline=120)
    assert pump_until(rt, lambda: (h.status().progress.step or 0) >= 2, timeout=20)
    spare.kill()
    start = time.monotonic()
    job = h.wait(30)
    assert job.state is JobState.FAILED and job.error is not None, job
    assert job.error.code == "backend_unavailable", job.error
    assert time.monotonic() - start < 10
    again = call(rt, "/steps", 1, 0, "again").wait(20)  # reconnects, and says the app is gone
    assert again.state is JobState.FAILED and again.error is not None
    assert again.error.code == "backend_unavailable"
    runner = _runner(rt)
    on_loop(rt, runner.close())
    assert runner.threads() == []


def test_close_ends_every_thread_even_with_a_job_in_flight(app: GradioApp, tmp_path: Path) -> None:
    rt = Runtime(output_root=tmp_path)
    rt.start()
    baseline = threading.active_count()
    runner = GradioRunner(app.url, backend="gradio", network=rt.network)
    try:
        on_loop(rt, runner.call("/remember", "a", deadline=10))  # an app with session state: it wants a heartbeat
        (conn,) = runner._conns
        assert conn.heartbeat is not None and not conn.heartbeat.done()
        key = uuid.uuid4().hex

        async def start_long():  # type: ignore[no-untyped-def]
            return await runner.start("/count", key, 5000, 0.01, deadline=60)

        pending = on_loop(rt, start_long())  # returns once the app queued it (not necessarily running yet)
        assert not pending.done
        assert pump_until(rt, lambda: (_peek_direct(app, key).get("steps") or 0) >= 1, timeout=15)
        assert runner.threads(), "the runner should be using threads now"
        assert threading.active_count() > baseline
        on_loop(rt, runner.close())
        assert runner.threads() == []
        assert threading.active_count() == baseline
        assert conn.heartbeat.done()
        assert pump_until(rt, lambda: _peek_direct(app, key).get("closed") is True, timeout=15)
    finally:
        rt.stop()


def _peek_direct(app: GradioApp, key: str) -> dict:  # type: ignore[type-arg]
    """Ask the app directly (a fresh gradio_client, closed at once) how a run went."""
    import asyncio

    async def ask() -> dict:  # type: ignore[type-arg]
        runner = GradioRunner(app.url, backend="peek", network=NetworkPolicy())
        try:
            return (await runner.call("/peek", key, deadline=10)).data  # type: ignore[no-any-return]
        finally:
            await runner.close()

    return asyncio.run(ask())


def test_unreadable_answers_are_protocol_errors() -> None:
    from movie_director.clients.gradio_app.endpoints import parse_info

    with pytest.raises(ProtocolError):
        parse_info({"named_endpoints": {"/x": {"parameters": "nope"}}}, url="http://a")
    with pytest.raises(ProtocolError):
        parse_info(["not", "a", "dict"], url="http://a")


def test_errors_map_onto_the_hierarchy() -> None:
    import concurrent.futures

    from gradio_client import utils as gc_utils
    from movie_director.clients.gradio_app.errors import map_exception

    url = "http://127.0.0.1:1"
    assert map_exception(gc_utils.QueueError("full"), url=url, backend="b").code.value == "rate_limited"
    lost = map_exception(concurrent.futures.CancelledError(), url=url, backend="b")
    assert isinstance(lost, BackendUnavailableError)
    assert map_exception(KeyError("data"), url=url, backend="b").code.value == "protocol_error"


def test_a_started_call_can_be_cancelled_directly(app: GradioApp, tmp_path: Path) -> None:
    rt = Runtime(output_root=tmp_path)
    rt.start()
    runner = GradioRunner(app.url, backend="gradio", network=rt.network)
    try:
        key = uuid.uuid4().hex

        async def start_long():  # type: ignore[no-untyped-def]
            return await runner.start("/count", key, 5000, 0.01, deadline=60)

        call = on_loop(rt, start_long())
        assert not call.done
        on_loop(rt, call.cancel())
        assert pump_until(rt, lambda: call.done, timeout=10) and call.cancelled
    finally:
        on_loop(rt, runner.close())
        rt.stop()
