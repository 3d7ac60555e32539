"""AudioLDM stand-ins (real Gradio apps in their own processes, shared for the session) and runtimes pointing at them.

Three flavours boot in parallel: the official demo's named ``/text2audio``, the same app with no endpoint names (a
slower sampler, for cancelling), and AudioLDM2's demo (no duration input, always 10 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_support import AUDIOLDM, GradioApp, shared_apps, stop_shared
from movie_director.clients.audioldm import client as audioldm
from movie_director.runtime import BackendConfig, Runtime

APPS = {
    "audioldm": AUDIOLDM,
    "audioldm-unnamed": [*AUDIOLDM[:-1], "0.05", "--no-api-name"],
    "audioldm2": [*AUDIOLDM, "--variant", "audioldm2"],
}


@pytest.fixture(scope="session")
def audioldm_apps() -> Iterator[dict[str, GradioApp]]:
    yield shared_apps(APPS)
    for name in APPS:
        stop_shared(name)


@pytest.fixture
def sound_rt(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    """``sound_rt(url, **options)``: a runtime whose audioldm backend points at ``url``; stopped after the test."""
    made: list[Runtime] = []

    def make(url: str, **options: Any) -> Runtime:
        rt = Runtime(output_root=tmp_path / f"out{len(made)}")
        config = BackendConfig(name="audioldm", urls=url, concurrency=2, timeout=60.0, options=options)
        rt.register_backend("audioldm", audioldm.factory, config)
        made.append(rt)
        return rt

    yield make
    for rt in made:
        rt.stop()
