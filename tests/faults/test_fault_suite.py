"""The fault suite: the ComfyUI client behind a TCP fault proxy. After every fault each job is terminal (or still
legitimately running), none is lost, no output is duplicated or half-written, and nothing leaks."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.faultproxy import FaultProxy
from movie_director.runtime import BackendConfig, JobHandle, JobState, RetryPolicy, Runtime
from support import eventually, open_fds, pump_until, txt2img


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    emu = EmulatorThread(step_delay=0.02).start()
    yield emu
    emu.stop()


@pytest.fixture
def proxy(emulator: EmulatorThread) -> Iterator[FaultProxy]:
    with FaultProxy(urlsplit(emulator.url).port or 0) as p:
        yield p


class Rig:
    def __init__(self, tmp_path: Path, url: str, retry: RetryPolicy | None = None) -> None:
        gc.collect()
        self.fds = open_fds()
        self.out = tmp_path / "out"
        self.rt = Runtime(output_root=self.out)
        config = BackendConfig(name="comfyui", urls=url, concurrency=2, retry=retry or RetryPolicy(base_delay=0.05))
        self.rt.register_backend("comfyui", comfy.factory, config)

    def submit(self, n: int, steps: int = 6) -> list[JobHandle]:
        return [self.rt.submit("comfyui", "image", {"workflow": txt2img(steps=steps, seed=i)}) for i in range(n)]

    def check(self, handles: list[JobHandle], *, expect_success: bool = True) -> None:
        jobs = [h.wait(60) for h in handles]
        for job in jobs:
            assert job.state.terminal  # none hangs, none is lost
            if expect_success:
                assert job.state is JobState.SUCCEEDED, job.error
            folder = self.out / "comfyui" / job.id
            files = sorted(p.name for p in folder.glob("*")) if folder.exists() else []
            assert not [f for f in files if f.startswith(".part-")], "a half-written download was left behind"
            assert len(files) == len(job.outputs.files), f"duplicate or missing outputs: {files}"
        self.rt.stop()
        gc.collect()
        ours = [t.name for t in threading.enumerate() if not t.name.startswith(("comfyui-emulator", "fault-proxy"))]
        assert ours == ["MainThread"], ours
        # The in-process emulator and proxy close their ends of our sockets a moment later: wait (bounded) for that.
        assert eventually(lambda: open_fds() <= self.fds + 2), (open_fds(), self.fds)


def test_websocket_reset_mid_run(tmp_path: Path, emulator: EmulatorThread, proxy: FaultProxy) -> None:
    rig = Rig(tmp_path, proxy.url)
    emulator.step_delay = 0.05
    handles = rig.submit(3, steps=10)
    assert pump_until(rig.rt, lambda: handles[0].status().progress.step is not None)
    proxy.reset_all()
    rig.check(handles)


def test_backend_killed_and_restarted_mid_job(tmp_path: Path, emulator: EmulatorThread, proxy: FaultProxy) -> None:
    rig = Rig(tmp_path, proxy.url)
    emulator.step_delay = 0.05
    handles = rig.submit(3, steps=10)
    assert pump_until(rig.rt, lambda: handles[0].status().progress.step is not None)
    emulator.restart()
    emulator.step_delay = 0.01
    rig.check(handles)


def test_reads_stalled_past_the_deadline_fail_cleanly(tmp_path: Path, proxy: FaultProxy) -> None:
    rig = Rig(tmp_path, proxy.url, retry=RetryPolicy(max_retries=1, base_delay=0.05, deadline=1.0))
    proxy.mode = "stall"
    stalled = rig.submit(1)
    job = stalled[0].wait(15)
    assert job.state is JobState.FAILED and job.error and job.error.code in ("timeout", "backend_unavailable")
    proxy.mode = "pass"
    proxy.reset_all()
    healthy = rig.submit(1)
    rig.check(healthy)


@pytest.mark.parametrize("status", [429, 503])
def test_bursts_of_429_and_503_are_retried(
    tmp_path: Path, emulator: EmulatorThread, proxy: FaultProxy, status: int
) -> None:
    rig = Rig(tmp_path, proxy.url, retry=RetryPolicy(max_retries=4, base_delay=0.05))
    warm = rig.submit(1)  # connect and preflight first: the burst then hits the job's own requests
    assert warm[0].wait(30).state is JobState.SUCCEEDED
    proxy.respond(status, 3)
    handles = rig.submit(2)
    rig.check(warm + handles)
    assert proxy.respond_count == 0  # every injected answer was served


def test_connections_cut_during_downloads(tmp_path: Path, emulator: EmulatorThread, proxy: FaultProxy) -> None:
    rig = Rig(tmp_path, proxy.url)
    emulator.view_delay = 0.3
    handles = rig.submit(2, steps=2)
    assert pump_until(rig.rt, lambda: any(h.status().progress.stage == "downloading" for h in handles), timeout=20)
    proxy.cut_all()
    emulator.view_delay = 0.0
    rig.check(handles)


def test_slow_network_still_finishes(tmp_path: Path, proxy: FaultProxy) -> None:
    rig = Rig(tmp_path, proxy.url)
    proxy.mode, proxy.delay = "slow", 0.01
    proxy.reset_all()
    rig.check(rig.submit(2, steps=3))


def test_malformed_frames_never_kill_the_listener(tmp_path: Path, emulator: EmulatorThread, proxy: FaultProxy) -> None:
    rig = Rig(tmp_path, proxy.url)
    emulator.step_delay = 0.05
    handles = rig.submit(2, steps=8)
    assert pump_until(rig.rt, lambda: handles[0].status().progress.step is not None)
    emulator.malformed_frame_next = True
    rig.check(handles)
