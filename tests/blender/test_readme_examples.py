"""The README's console and headless examples run as written, in real Blender, against the stand-ins.

The code blocks are read from README.md itself, so an example that stops working (a renamed function, a voice the
stand-ins do not have) fails here. Only placeholders a reader must replace anyway (a folder of their recordings, a
cut file) are swapped for real files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from blender_support import MODULE
from movie_director.clients import media
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.llm import standin
from movie_director.clients.serving import AppThread
from rvc_support import AppProcess
from support import REPO

README = REPO / "README.md"


def _block(heading: str, nth: int = 0) -> str:
    """The ``nth`` ```python block after ``heading`` in the README."""
    text = README.read_text()
    start = text.index(heading)
    blocks = re.findall(r"```python\n(.*?)```", text[start:], flags=re.S)
    return blocks[nth]


@pytest.fixture
def every_standin(addon: ModuleType, tmp_path: Path) -> Iterator[ModuleType]:
    """Every backend's stand-in, as "Trying it without a GPU" starts them (Applio for RVC: it also trains)."""
    import bpy
    from gradio_support import AUDIOLDM, shared_apps
    from movie_director.clients.speech import standin as speech_standin
    from movie_director.clients.wan2gp.standin_mcp import StandinServer

    audioldm = shared_apps({"audioldm": AUDIOLDM})["audioldm"]
    applio = AppProcess("--root", str(tmp_path / "applio"), "--voices", "keeper,mara", "--step-delay", "0.01")
    wan = StandinServer(step_delay=0.0).start()
    try:
        with (
            AppThread(standin.make_app) as llm_server,
            EmulatorThread(step_delay=0.0) as emu,
            AppThread(speech_standin.make_app) as tts,
        ):
            prefs = bpy.context.preferences.addons[MODULE].preferences
            urls = {
                "llm": llm_server.url, "comfyui": emu.url, "wan2gp": wan.url, "audioldm": audioldm.url,
                "rvc": applio.url, "speech": tts.url,
            }  # fmt: skip
            for name, url in urls.items():
                getattr(prefs, name).urls = url
            try:
                yield addon
            finally:
                addon.addon_runtime.shutdown()
                prefs = bpy.context.preferences.addons[MODULE].preferences  # the headless example re-enables
                for name in urls:
                    getattr(prefs, name).urls = ""
    finally:
        wan.stop()
        applio.stop()


@pytest.mark.timeout(600)
def test_the_console_and_hand_off_examples_run_as_written(every_standin: ModuleType, tmp_path: Path) -> None:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "film.blend"))  # "//" paths need a saved file
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for i, freq in enumerate((170.0, 230.0)):
        media.write_wav(recordings / f"take{i}.wav", media.tone(1.0, freq=freq))
    console = _block("### From Blender's Python console").replace("/path/to/recordings", str(recordings))
    namespace: dict[str, object] = {"__name__": "__console__"}
    exec(compile(console, "README.md (console)", "exec"), namespace)

    api = every_standin.api
    pipeline = namespace["pipeline"]
    assert pipeline.status().stages and all(s.state.value == "succeeded" for s in pipeline.status().stages)  # type: ignore[attr-defined]
    assert "gull" in api.voices(refresh=True).result(10).data["voices"]  # trained
    assert api.last_job() is not None

    cut = tmp_path / "cut.otio"
    handoff = _block("### Hand-off: the cut leaves Blender").replace("/path/cut.otio", str(cut))
    exec(compile(handoff, "README.md (hand-off)", "exec"), namespace)
    assert cut.is_file() and (tmp_path / "storyboard.png").is_file() and (tmp_path / "cut.mp4").is_file()


@pytest.mark.timeout(300)
def test_the_headless_example_runs_as_written(every_standin: ModuleType, tmp_path: Path) -> None:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    headless = _block("### Headless")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(headless, "README.md (headless)", "exec"), {"__name__": "__main__"})
    finally:
        os.chdir(cwd)
    assert (tmp_path / "shots.blend").is_file()
    strips = sorted(bpy.context.scene.sequence_editor.strips, key=lambda s: s.frame_final_start)
    assert [s.frame_final_start for s in strips] == [1, 49, 97]
