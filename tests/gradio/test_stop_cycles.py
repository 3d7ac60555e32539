"""Stopping the runtime while a Gradio job runs closes every client in parallel within the stop budget: twenty
start/stop cycles, each with a job running on a real Gradio app, leave no ``md-gradio-*`` thread behind (each is gone
within a bound after stop() returns)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from gradio_support import GradioApp
from movie_director.runtime import BackendConfig, JobState, Runtime
from support import pump_until


def gradio_threads(within: float = 0.0) -> list[str]:
    """The runner threads still alive, after giving each up to ``within`` seconds to end (a closed pool's idle
    worker may still be on its way out when a loaded machine returns from stop())."""
    threads = [t for t in threading.enumerate() if t.name.startswith("md-gradio-")]
    for thread in threads:
        thread.join(within)
    return [t.name for t in threads if t.is_alive()]


def test_twenty_start_stop_cycles_with_a_running_gradio_job_leave_no_thread(
    app: GradioApp, make_rt: Callable[..., Runtime]
) -> None:
    assert gradio_threads() == []
    rt = make_rt(app.url, concurrency=2)
    # A second client, closed at the same stop: one slow closer must not starve the other (they run side by side).
    rt.register_backend("other", rt.engine.factories["gradio"], BackendConfig(name="other", urls=app.url))
    for cycle in range(20):
        key = uuid.uuid4().hex
        handle = rt.submit("gradio", "call", {"endpoint": "/count", "args": [key, 5000, 0.01], "deadline": 60})
        other = rt.submit("other", "call", {"endpoint": "/steps", "args": [5000, 0.01, "other"], "deadline": 60})
        assert pump_until(rt, lambda h=handle: h.status().state is JobState.RUNNING, timeout=20), cycle
        rt.stop(timeout=1.0)
        assert not rt.running
        assert handle.wait(5).state is JobState.CANCELLED and other.wait(5).state is JobState.CANCELLED
        assert gradio_threads(within=5.0) == [], f"cycle {cycle}: {gradio_threads()}"
