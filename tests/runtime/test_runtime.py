"""The runtime end to end with its real loop thread and the in-process ``local`` backend."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest
from movie_director.clients import local
from movie_director.runtime import BackendConfig, JobSpec, JobState, Runtime
from movie_director.runtime.bridge import JobHandle
from movie_director.runtime.errors import JobCancelledError, JobFailedError, RequestTimeoutError
from movie_director.runtime.jobs import Job
from movie_director.runtime.loop import THREAD_NAME
from movie_director.runtime.outbox import Finished, Progressed
from support import client_sockets_to, eventually, open_fds, pump_until, thread_names


def test_start_and_stop_are_idempotent(rt: Runtime) -> None:
    rt.start()
    rt.start()
    assert sum(t.name == THREAD_NAME for t in threading.enumerate()) == 1
    rt.stop()
    rt.stop()
    assert THREAD_NAME not in thread_names()


def test_stop_cancels_running_work_and_joins_within_a_second(rt: Runtime) -> None:
    handles = [rt.submit("local", "hang") for _ in range(3)]  # 2 run, 1 waits in the queue
    rt.call(asyncio.sleep(0)).result(1)
    start = time.monotonic()
    rt.stop()
    assert time.monotonic() - start < 1.0
    assert THREAD_NAME not in thread_names()
    rt.pump()
    for h in handles:
        assert h.done and h.status().state is JobState.CANCELLED
        assert "stopped" in (h.status().error.message or "")


def test_hundred_start_stop_cycles_leak_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web
    from movie_director.clients.http import HttpBackendClient
    from movie_director.clients.serving import AppThread

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_get("/ping", hello)
        return app

    class Pinger(HttpBackendClient):
        name = "pinger"

        async def submit(self, job, ctx):  # type: ignore[no-untyped-def]
            return None

        async def get_result(self, job, ctx):  # type: ignore[no-untyped-def]
            from movie_director.runtime.jobs import JobOutputs

            data = await self.request("GET", self.config.url, "/ping")
            return JobOutputs(data=data)

        async def health(self):  # type: ignore[no-untyped-def]
            raise NotImplementedError

    with AppThread(make_app) as server:
        rt = Runtime(output_root=tmp_path)
        rt.register_backend("pinger", Pinger, BackendConfig(name="pinger", urls=server.url))
        rt.submit("pinger", "ping").wait(5)  # warm-up: imports, first allocation of caches
        rt.stop()
        gc.collect()
        threads, fds = threading.active_count(), open_fds()
        for _ in range(100):
            job = rt.submit("pinger", "ping").wait(5)
            assert job.state is JobState.SUCCEEDED and job.outputs.data == {"ok": True}
            rt.stop()
        gc.collect()
        assert threading.active_count() == threads
        assert client_sockets_to(server.port) == 0
        assert eventually(lambda: open_fds() <= fds), (open_fds(), fds)  # the server's side closes a moment later


def test_callbacks_run_on_the_pumping_thread(rt: Runtime) -> None:
    seen: list[tuple[str, str]] = []
    home = threading.current_thread().name
    h = rt.submit(
        "local",
        "echo",
        {"text": "hi", "steps": 3, "delay": 0.01, "log": True},
        on_progress=lambda j: seen.append(("progress", threading.current_thread().name)),
        on_complete=lambda j: seen.append(("complete", threading.current_thread().name)),
    )
    h.on_log(lambda j, line: seen.append(("log", threading.current_thread().name)))
    h.on_done(lambda j: seen.append(("done", threading.current_thread().name)))
    job = h.wait(5)
    assert job.state is JobState.SUCCEEDED and job.outputs.text == "hi"
    assert {kind for kind, _ in seen} >= {"progress", "complete", "log", "done"}
    assert {name for _, name in seen} == {home}


def test_pump_keeps_only_the_newest_progress_per_job(rt: Runtime) -> None:
    job = Job(backend="local", kind="echo")
    handle = JobHandle(rt, job)
    fractions: list[float] = []
    order: list[str] = []
    handle.on_progress(lambda j: (fractions.append(j.progress.fraction), order.append("progress")))
    handle.on_done(lambda j: order.append("done"))
    for i in range(1, 6):
        job.progress = job.progress.model_copy(update={"fraction": i / 10})
        rt.outbox.post(Progressed(handle, job.snapshot()))
    assert rt.pump() == 5
    assert fractions == [0.5] and order == ["progress"]
    job.progress = job.progress.model_copy(update={"fraction": 0.7})
    rt.outbox.post(Progressed(handle, job.snapshot()))
    job.state = JobState.SUCCEEDED
    rt.outbox.post(Finished(handle, job.snapshot()))
    rt.pump()
    assert order == ["progress", "done"]  # the final snapshot superseded the stale progress event
    assert handle.status().state is JobState.SUCCEEDED


def test_later_runs_first_thing_in_the_next_pump_never_in_the_one_running(rt: Runtime) -> None:
    order: list[str] = []

    def again() -> None:
        order.append("later")
        rt.outbox.later(lambda: order.append("later again"))  # from a later call: waits for the pump after

    def boom() -> None:
        raise ValueError("bad later call")

    rt.outbox.call(lambda: (order.append("call"), rt.outbox.later(again), rt.outbox.later(boom)))
    assert rt.pump() == 1 and order == ["call"]
    assert len(rt.outbox) == 2  # waiting for a pump: Blender's timer keeps pumping
    rt.outbox.call(lambda: order.append("call 2"))
    errors = rt.outbox.callback_errors
    assert rt.pump() == 3 and order == ["call", "later", "call 2"]
    assert rt.outbox.callback_errors == errors + 1  # the failing one was caught, the pump went on
    assert rt.pump() == 1 and order[-1] == "later again"
    assert rt.pump() == 0 and len(rt.outbox) == 0


@pytest.mark.parametrize("budget", [1.0, 0.0], ids=["one-pump", "pumps-cut-by-the-budget"])
@pytest.mark.parametrize("kind", ["echo", "fail"])
def test_coalescing_never_leaves_a_stale_progress_after_the_end(rt: Runtime, kind: str, budget: float) -> None:
    """The job's last progress reports and its end reach the home thread together (the Finished pops the coalesced
    progress): the handle must then show the end's values (100 % when it succeeded, the last reported fraction when
    it failed), never an older progress, and no progress callback runs after the end."""
    from movie_director.runtime.eta import overall

    request = {"steps": 25, "log": True} if kind == "echo" else {}
    handle = rt.submit("local", kind, request)
    seen: list[tuple[str, float]] = []
    handle.on_progress(lambda j: seen.append(("progress", j.progress.fraction)))
    handle.on_done(lambda j: seen.append(("done", j.progress.fraction)))
    rt.done_signal.sleep(handle, 5)  # ended on the loop: every message it sent waits for the home thread
    assert handle.final is not None
    while rt.pump(budget=budget):  # budget 0: the pump stops every 32 messages, mid-stream
        pass
    assert handle.done
    job = handle.status()
    assert job is handle.final or job.progress == handle.final.progress
    fractions = [f for what, f in seen if what == "progress"]
    assert fractions == sorted(fractions)  # never an older progress after a newer one
    assert seen[-1][0] == "done" and [what for what, _ in seen].count("done") == 1
    if kind == "echo":
        assert job.state is JobState.SUCCEEDED and job.progress.fraction == 1.0 and seen[-1][1] == 1.0
    else:
        assert job.state is JobState.FAILED and job.progress.fraction == handle.final.progress.fraction
    assert overall([job]) is None  # the status bar counts it no more


def test_a_failing_callback_is_reported_on_its_job_and_never_raises(rt: Runtime) -> None:
    def boom(job: Job) -> None:
        raise ValueError("bad callback")

    h = rt.submit("local", "echo", {"text": "x"}, on_complete=boom)
    after: list[str] = []
    h.on_done(lambda j: after.append(j.state.value))
    job = h.wait(5)
    assert job.state is JobState.SUCCEEDED and after == ["succeeded"]
    assert any("bad callback" in m for m in h.callback_errors)
    assert any("bad callback" in line for line in h.status().log)


def test_pump_respects_its_time_budget(rt: Runtime) -> None:
    def slow(job: Job) -> None:
        time.sleep(0.002)

    handles = []
    for _ in range(200):
        job = Job(backend="local", kind="noop", state=JobState.SUCCEEDED)
        h = JobHandle(rt, job)
        h.on_done(slow)
        rt.outbox.post(Finished(h, job.snapshot()))
        handles.append(h)
    taken = rt.pump(budget=0.01)
    # The clock is read every 32 events: 32 callbacks of 2 ms are past a 10 ms budget, so the pump stops there
    # (a count, not a wall-clock bound: those depend on the machine's load).
    assert 0 < taken <= 32
    while rt.pump():
        pass
    assert all(h.done for h in handles)


def test_failures_become_terminal_states_with_clear_messages(rt: Runtime) -> None:
    h = rt.submit("local", "fail", {"code": "backend_unavailable", "message": "Cannot reach http://x"})
    job = h.wait(5)
    assert job.state is JobState.FAILED and job.error and job.error.code == "backend_unavailable"
    assert "preferences" in job.error.message
    with pytest.raises(JobFailedError) as info:
        h.result(1)
    assert info.value.retryable
    bad = rt.submit("local", "no-such-kind").wait(5)
    assert bad.state is JobState.FAILED and "cannot do" in (bad.error.message if bad.error else "")


def test_cancel_is_immediate_locally_and_asks_the_server(rt: Runtime) -> None:
    h = rt.submit("local", "hang")
    assert pump_until(rt, lambda: h.status().state is JobState.RUNNING)
    start = time.monotonic()
    h.cancel()
    h.cancel()  # idempotent
    job = h.wait(2)
    assert time.monotonic() - start < 0.5
    assert job.state is JobState.CANCELLED and job.error and job.error.code == "cancelled"
    with pytest.raises(JobCancelledError):
        h.result(0)

    async def cancelled_ids() -> list[str]:
        for _ in range(100):
            client = rt.client("local")
            assert isinstance(client, local.LocalClient)
            if client.cancelled:
                return client.cancelled
            await asyncio.sleep(0.01)
        return []

    assert rt.call(cancelled_ids()).result(2) == [h.id]


def test_cancel_while_queued_never_starts_the_job(rt: Runtime) -> None:
    rt.set_concurrency("local", 1)
    blocker = rt.submit("local", "hang")
    queued = rt.submit("local", "echo", {"text": "never"})
    queued.cancel()
    job = queued.wait(2)
    assert job.state is JobState.CANCELLED and job.started_at is None and job.submitted_at is None
    blocker.cancel()
    blocker.wait(2)


def test_wait_times_out_cleanly(rt: Runtime) -> None:
    h = rt.submit("local", "hang")
    with pytest.raises(RequestTimeoutError):
        h.wait(0.1)
    h.cancel()
    assert h.wait(2).state is JobState.CANCELLED


def test_wait_from_another_thread_does_not_pump(rt: Runtime) -> None:
    h = rt.submit("local", "echo", {"text": "x"})
    called: list[str] = []
    h.on_complete(lambda j: called.append(threading.current_thread().name))
    result: list[Job] = []
    worker = threading.Thread(target=lambda: result.append(h.wait(5)))
    worker.start()
    worker.join(5)
    assert result and result[0].state is JobState.SUCCEEDED
    assert called == []  # callbacks wait for the home thread's pump
    rt.pump()
    assert called == [threading.current_thread().name]


def test_handles_are_awaitable_inside_the_loop(rt: Runtime) -> None:
    h = rt.submit("local", "echo", {"text": "inside"})

    async def inside() -> str:
        job = await h
        return job.outputs.text or ""

    assert rt.call(inside()).result(5) == "inside"
    with pytest.raises(RuntimeError):

        async def blocking() -> None:
            h.wait(1)

        rt.call(blocking()).result(5)


def test_priority_and_concurrency_limit(rt: Runtime) -> None:
    rt.set_concurrency("local", 1)
    rt.pause("local")
    order: list[str] = []
    low = rt.submit("local", "echo", {"text": "low"}, priority=0)
    high = rt.submit("local", "echo", {"text": "high"}, priority=5)
    for h in (low, high):
        h.on_complete(lambda j: order.append(j.outputs.text or ""))
    assert rt.stats()["local"] == {"active": 0, "queued": 2, "limit": 1, "paused": True}
    rt.resume("local")
    low.wait(5)
    high.wait(5)
    assert order == ["high", "low"]


def test_concurrency_changes_live(rt: Runtime) -> None:
    rt.set_concurrency("local", 1)
    hs = [rt.submit("local", "hang") for _ in range(3)]
    rt.call(asyncio.sleep(0.05)).result(1)
    assert rt.stats()["local"]["active"] == 1
    rt.set_concurrency("local", 3)
    rt.call(asyncio.sleep(0.05)).result(1)
    assert rt.stats()["local"]["active"] == 3
    for h in hs:
        h.cancel()
    for h in hs:
        h.wait(2)
    with pytest.raises(Exception, match="at least 1"):
        rt.set_concurrency("local", 0)


def test_global_pause_holds_every_backend(rt: Runtime) -> None:
    rt.pause()
    h = rt.submit("local", "echo", {"text": "x"})
    with pytest.raises(RequestTimeoutError):
        h.wait(0.2)
    assert h.status().state is JobState.QUEUED
    rt.resume()
    assert h.wait(5).state is JobState.SUCCEEDED


def test_batch_in_order_returns_results_in_submission_order(rt: Runtime) -> None:
    started: list[str] = []
    rt.subscribe(lambda e: started.append(e.job_id), kinds={"job_started"})
    batch = rt.submit_batch([JobSpec("local", "echo", {"text": str(i), "steps": 1}) for i in range(5)], parallel=False)
    results = batch.results(10)
    assert [r.text for r in results if r] == ["0", "1", "2", "3", "4"]
    assert started == [h.id for h in batch.handles]
    assert batch.progress == 1.0 and batch.done


def test_batch_parallel_with_stop_on_error_cancels_the_rest(rt: Runtime) -> None:
    specs = [
        JobSpec("local", "hang"),
        JobSpec("local", "fail", {"code": "server_error"}),
        JobSpec("local", "hang"),
    ]
    batch = rt.submit_batch(specs, parallel=True, stop_on_error=True)
    jobs = batch.wait(5)
    assert [j.state for j in jobs] == [JobState.CANCELLED, JobState.FAILED, JobState.CANCELLED]


def test_batch_in_order_stop_on_error_never_starts_later_jobs(rt: Runtime) -> None:
    specs = [
        JobSpec("local", "echo", {"text": "a"}),
        JobSpec("local", "fail"),
        JobSpec("local", "echo", {"text": "c"}),
    ]
    batch = rt.submit_batch(specs, parallel=False, stop_on_error=True)
    jobs = batch.wait(5)
    assert [j.state for j in jobs] == [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED]
    assert jobs[2].started_at is None


def test_runtime_events_reach_subscribers(rt: Runtime) -> None:
    events: list[tuple[str, str]] = []
    unsubscribe = rt.subscribe(lambda e: events.append((e.kind, e.state)))
    rt.submit("local", "echo", {"text": "x"}).wait(5)
    info = rt.check_health("local").result(5)
    rt.pump()
    assert info.ok
    kinds = [k for k, _ in events]
    assert kinds[:1] == ["job_queued"] and "job_started" in kinds and ("job_finished", "succeeded") in events
    assert ("backend_state", "connected") in events
    unsubscribe()
    events.clear()
    rt.submit("local", "echo", {"text": "y"}).wait(5)
    assert events == []


def test_unknown_backend_is_refused_at_submit(rt: Runtime) -> None:
    with pytest.raises(Exception, match="Unknown backend"):
        rt.submit("nope", "x")


def test_dispose_forgets_the_handle(rt: Runtime) -> None:
    h = rt.submit("local", "echo", {"text": "x"})
    h.wait(5)
    assert rt.handle(h.id) is h
    h.dispose()
    assert rt.handle(h.id) is None and h not in rt.jobs()


def test_streamed_text_reaches_on_text_in_order_without_coalescing(rt: Runtime) -> None:
    deltas: list[str] = []
    h = rt.submit("local", "echo", {"text": "x", "steps": 50, "stream": True})
    h.on_text(lambda job, delta: deltas.append(delta))
    assert h.wait(5).state is JobState.SUCCEEDED
    assert "".join(deltas) == "".join(f"{i} " for i in range(1, 51))


def test_batch_states_and_cancel_and_cancel_all(rt: Runtime) -> None:
    batch = rt.submit_batch([JobSpec("local", "hang"), JobSpec("local", "hang"), JobSpec("local", "hang")])
    assert pump_until(rt, lambda: JobState.RUNNING in batch.states())
    batch.cancel()
    assert all(j.state is JobState.CANCELLED for j in batch.wait(5))
    others = [rt.submit("local", "hang") for _ in range(2)]
    rt.cancel_all()
    assert all(h.wait(5).state is JobState.CANCELLED for h in others)
    assert rt.backends == ["local"]


def test_the_default_status_of_a_backend_that_cannot_tell(rt: Runtime) -> None:
    from movie_director.runtime.backend import BackendClient

    job = rt.submit("local", "echo", {"text": "x"}).wait(5)
    status = rt.call(BackendClient.get_status(rt.client("local"), job)).result(5)
    assert status.state is None and "cannot report" in status.message
