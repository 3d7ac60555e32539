"""The runner's test app (a real Gradio app in its own process) and a runtime whose ``gradio`` backend drives it.

``RunnerBackend`` is the thinnest BackendClient over GradioRunner: it lets tests run calls as real runtime jobs (real
JobContexts, real cancellation) without any backend-specific code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_support import GradioApp, start_all
from movie_director.clients.gradio_app import GradioCall, GradioRunner
from movie_director.runtime import BackendClient, BackendConfig, HealthInfo, Job, JobContext, JobOutputs, Runtime

APP = [str(Path(__file__).with_name("app.py")), "--port", "{port}"]


class RunnerBackend(BackendClient):
    """request: {"endpoint": "/steps", "args": [...], "kwargs": {...}, "deadline": 30}"""

    name = "gradio"

    def __init__(self, config: BackendConfig, network: Any = None) -> None:
        super().__init__(config, network)
        self.runner = GradioRunner(
            config.url,
            backend=self.name,
            network=self.network,
            max_workers=int(config.options.get("max_workers", 2)),
            max_file_bytes=int(config.options.get("max_file_bytes", 1 << 30)),
        )
        self.calls: dict[str, GradioCall] = {}

    async def submit(self, job: Job, ctx: JobContext) -> str | None:
        req = job.request
        call = await self.runner.start(
            req["endpoint"], *req.get("args", []), ctx=ctx, deadline=req.get("deadline", 30.0), **req.get("kwargs", {})
        )
        self.calls[job.id] = call
        return call.id

    async def get_result(self, job: Job, ctx: JobContext) -> JobOutputs:
        result = await self.calls.pop(job.id).result()
        return JobOutputs(files=result.files, data={"data": result.data})

    async def cancel(self, job: Job) -> None:
        call = self.calls.pop(job.id, None)
        if call is not None:
            await call.cancel()

    async def health(self) -> HealthInfo:
        return await self.runner.health()

    async def close(self) -> None:
        await self.runner.close()


@pytest.fixture(scope="session")
def apps() -> Iterator[dict[str, GradioApp]]:
    """The shared test app, plus a spare one that a test may kill (both boot in parallel)."""
    main, spare = start_all([GradioApp("gradio-test", APP), GradioApp("gradio-spare", APP)])
    yield {"main": main, "spare": spare}
    main.stop()
    spare.stop()


@pytest.fixture(scope="session")
def app(apps: dict[str, GradioApp]) -> GradioApp:
    return apps["main"]


def _make_runtime(tmp_path: Path, url: str, **options: Any) -> Runtime:
    rt = Runtime(output_root=tmp_path / "out")
    concurrency = int(options.pop("concurrency", 4))
    config = BackendConfig(name="gradio", urls=url, concurrency=concurrency, options=options)
    rt.register_backend("gradio", RunnerBackend, config)
    return rt


@pytest.fixture
def make_rt(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """``make_rt(url, **options)``: a runtime with a ``gradio`` backend at ``url``; stopped after the test."""
    made: list[Runtime] = []

    def make(url: str, **options: Any) -> Runtime:
        rt = _make_runtime(tmp_path / str(len(made)), url, **options)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()


@pytest.fixture
def gr_rt(app: GradioApp, make_rt: Callable[..., Runtime]) -> Runtime:
    return make_rt(app.url)


def _runner_of(rt: Runtime) -> GradioRunner:
    async def get() -> GradioRunner:
        client = rt.client("gradio")
        assert isinstance(client, RunnerBackend)
        return client.runner

    return rt.call(get()).result(5)


@pytest.fixture
def runner_of() -> Callable[[Runtime], GradioRunner]:
    """``runner_of(rt)``: the runner inside the runtime's gradio client (built on the loop on first use)."""
    return _runner_of
