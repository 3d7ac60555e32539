"""Train Voice in real Blender against the Applio 3.6 stand-in: the operator and the console API train a voice in
stages, the voice list then offers it, the sidebar shows the stage and a Cancel that stops the server's training."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from blender_support import MODULE, LayoutRecorder
from movie_director.clients import media
from rvc_support import AppProcess
from support import pump_until

SETTLE = 20.0


@pytest.fixture(scope="module")
def applio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    root = tmp_path_factory.mktemp("applio-blender")
    app = AppProcess("--root", str(root), "--voices", "alice", "--step-delay", "0.05")
    app.root = root
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def train_addon(addon: ModuleType, applio: AppProcess) -> Iterator[ModuleType]:
    import bpy

    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.rvc.urls = applio.url
    try:
        yield addon
    finally:
        addon.addon_runtime.shutdown()
        prefs.rvc.urls = ""


def _recordings(folder: Path) -> Path:
    folder.mkdir()
    for i, freq in enumerate((170.0, 230.0)):
        media.write_wav(folder / f"take{i}.wav", media.tone(1.0, freq=freq))
    return folder


def _train_module(addon: ModuleType) -> ModuleType:
    return importlib.import_module(".operators.train_voice", addon.__name__)


def _draw(addon: ModuleType) -> list[tuple[str, str]]:
    import bpy

    panel = importlib.import_module(".panels.voice", addon.__name__).MOVIEDIR_PT_train_voice
    calls: list[tuple[str, str]] = []
    panel.draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    return calls


def test_the_operator_trains_in_stages_and_the_new_voice_is_listed(train_addon: Any, tmp_path: Path) -> None:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    settings = bpy.context.scene.movie_director_train
    settings.name, settings.dataset, settings.epochs = "gus", str(_recordings(tmp_path / "takes")), 6
    assert ("prop", "dataset") in _draw(train_addon) and ("operator", "moviedir.train_voice") in _draw(train_addon)
    stages: list[str] = []
    assert bpy.ops.moviedir.train_voice() == {"FINISHED"}
    handle = train_addon.addon_runtime.last_handle
    handle.on_progress(lambda job: stages.append(job.progress.stage.split()[0]) if job.progress.stage else None)
    assert pump_until(train_addon.addon_runtime.runtime(), lambda: bool(stages), SETTLE)
    assert ("operator", "moviedir.cancel_training") in _draw(train_addon)  # running: the bar and its Cancel
    job = handle.wait(90)
    assert job.state.value == "succeeded", job.error
    seen = list(dict.fromkeys(s for s in stages if s in ("upload", "preprocess", "extract", "train", "index")))
    assert seen == ["upload", "preprocess", "extract", "train", "index"], stages
    wm = bpy.context.window_manager
    assert pump_until(train_addon.addon_runtime.runtime(), lambda: "gus" in [v.name for v in wm.movie_director_voices])
    assert ("label", "Trained gus") in _draw(train_addon)


def test_the_console_api_trains_and_cancel_stops_the_servers_training(
    train_addon: Any, applio: AppProcess, tmp_path: Path
) -> None:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    api = train_addon.api
    assert "train_voice" in api.__all__
    handle = api.train_voice("hal", str(_recordings(tmp_path / "takes")), epochs=5000)
    assert pump_until(api.runtime(), lambda: handle.status().progress.stage.startswith("train"), 60)
    assert applio.wait_for("training hal: 5000 epochs", SETTLE)
    assert bpy.ops.moviedir.cancel_training() == {"FINISHED"}
    job = handle.wait(SETTLE)
    assert job.state.value == "cancelled", job.error
    assert applio.wait_for("training hal: stopped", SETTLE), applio.output[-5:]


def test_bad_training_requests_are_refused_in_words(train_addon: Any, tmp_path: Path) -> None:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    train = _train_module(train_addon)
    with pytest.raises(ValueError, match="Name the new voice"):
        train.train_voice("  ", str(tmp_path))
    with pytest.raises(ValueError, match="folder of recordings"):
        train.train_voice("ivy")
    job = train.train_voice("ivy", str(tmp_path / "nothing-here")).wait(SETTLE)
    assert job.state.value == "failed" and "holds no audio files" in job.error.message
    job = train.train_voice("ivy", str(_recordings(tmp_path / "t")), epochs=0).wait(SETTLE)
    assert job.state.value == "failed" and "epochs" in job.error.message
