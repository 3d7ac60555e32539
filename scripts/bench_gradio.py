"""Gradio figures for scripts/bench.py (loaded by it), against scripts/gradio_bench_app.py in its own process.

- gradio_calls_per_s: calls of an endpoint that answers at once, one after another, through the runtime and the
  add-on's GradioRunner (as the AudioLDM, Wan2GP and RVC backends call their apps), beside gradio_peer_calls_per_s:
  plain ``gradio_client.Client.predict`` on the same app. CPU milliseconds per call for both beside them.
  Target: at least 1.3x the peer.
- gradio_first_progress_ms: from submitting a call to its first ``gr.Progress`` step reaching the caller (ours: the
  job's on_progress callback, the caller pumping every millisecond; the peer: ``Job.status()`` polled every
  millisecond), beside gradio_peer_first_progress_ms. Target: no later than the peer.
"""

from __future__ import annotations

import os
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench_support import server_process
from movie_director.clients.gradio_app import GradioRunner
from movie_director.clients.scratch import scratch_dir
from movie_director.runtime import BackendClient, BackendConfig, HealthInfo, Job, JobContext, JobOutputs, Runtime

APP = str(Path(__file__).with_name("gradio_bench_app.py"))
ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
CALLS = 40
ROUNDS = 3


class RunnerBackend(BackendClient):
    """The thinnest backend over GradioRunner: request {"endpoint": "/echo", "args": [...]}."""

    name = "gradio"

    def __init__(self, config: BackendConfig, network: Any = None) -> None:
        super().__init__(config, network)
        self.runner = GradioRunner(config.url, backend=self.name, network=self.network)

    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        return None

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        req = job.request
        result = await self.runner.call(req["endpoint"], *req["args"], ctx=ctx, deadline=60.0)
        return JobOutputs(data={"data": result.data})

    async def health(self) -> HealthInfo:
        return await self.runner.health()

    async def close(self) -> None:
        await self.runner.close()


def ours(rt: Runtime) -> tuple[float, float, float]:
    """(calls/s, CPU ms per call, first-progress ms) through the runtime."""
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(CALLS):
        job = rt.submit("gradio", "call", {"endpoint": "/echo", "args": [f"x{i}"]}).wait(60)
        assert job.state.value == "succeeded", job.error
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    first: list[float] = []
    t0 = time.perf_counter()
    handle = rt.submit("gradio", "call", {"endpoint": "/steps", "args": [5, 0.05]})
    # step 0 counts: tqdm's first update is 0 of n, as the peer's first non-empty progress_data is
    handle.on_progress(lambda job: first.append(time.perf_counter()) if job.progress.step is not None else None)
    while not first and not handle.done:
        rt.pump()
        with rt.done_condition:
            rt.done_condition.wait(0.001)
    handle.wait(60)
    return CALLS / took, cpu * 1000 / CALLS, (first[0] - t0) * 1000


def peer(client: Any) -> tuple[float, float, float]:
    """The same with plain gradio_client."""
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(CALLS):
        client.predict(f"x{i}", api_name="/echo")
    took, cpu = time.perf_counter() - start, time.process_time() - cpu
    tick = threading.Event()
    t0 = time.perf_counter()
    job = client.submit(5, 0.05, api_name="/steps")
    while not job.status().progress_data and not job.done():
        tick.wait(0.001)
    first = time.perf_counter() - t0
    job.result(60)
    return CALLS / took, cpu * 1000 / CALLS, first * 1000


def bench_gradio() -> dict[str, float]:
    os.environ.update(ENV)
    from gradio_client import Client

    mine: list[tuple[float, float, float]] = []
    theirs: list[tuple[float, float, float]] = []
    with socket.socket() as s:  # Gradio needs a real port number: it checks the address it serves on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with server_process([APP, "--port", str(port)], env=dict(os.environ, **ENV)) as url:
        rt = Runtime(output_root=scratch_dir("md-bench-"))
        rt.register_backend("gradio", RunnerBackend, BackendConfig(name="gradio", urls=url, concurrency=1))
        client = Client(url, verbose=False)
        for i in range(3):  # warm-up: connections, the app's /info, imports
            rt.submit("gradio", "call", {"endpoint": "/echo", "args": [f"w{i}"]}).wait(60)
            client.predict(f"w{i}", api_name="/echo")
        for _ in range(ROUNDS):  # alternate, so that machine noise hits both alike
            theirs.append(peer(client))
            mine.append(ours(rt))
        client.close()
        rt.stop()

    def med(runs: list[tuple[float, float, float]], i: int) -> float:
        return statistics.median(r[i] for r in runs)

    return {
        "gradio_calls_per_s": med(mine, 0),
        "gradio_peer_calls_per_s": med(theirs, 0),
        "gradio_cpu_ms_per_call": med(mine, 1),
        "gradio_peer_cpu_ms_per_call": med(theirs, 1),
        "gradio_first_progress_ms": med(mine, 2),
        "gradio_peer_first_progress_ms": med(theirs, 2),
    }


SECTIONS = [("gradio", bench_gradio)]
TARGETS = {
    "gradio_calls_per_s": lambda r: r["gradio_calls_per_s"] >= 1.3 * r["gradio_peer_calls_per_s"],
    "gradio_first_progress_ms": lambda r: r["gradio_first_progress_ms"] <= r["gradio_peer_first_progress_ms"],
}
