"""Write and Shot List in real Blender against a real LiteLLM proxy: text streams into a Text block on the main
thread, the shot list lands on the scene and survives saving and reopening the .blend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import llm_support
import pytest
from blender_support import MODULE, LayoutRecorder
from llm_support import LONG_ANSWER, VALID_SHOTS, LiteLLMProxy
from support import pump_until


@pytest.fixture(scope="session")
def llm_proxy() -> Iterator[LiteLLMProxy]:
    """The session's proxy (shared with tests/llm: started once, stopped by the last user)."""
    yield llm_support.acquire()
    llm_support.release()


@pytest.fixture
def llm_addon(addon: ModuleType, llm_proxy: LiteLLMProxy) -> Iterator[ModuleType]:
    """The add-on pointed at the proxy; the LLM modules are registered here until __init__ lists them."""
    import bpy
    from bl_ext.user_default.movie_director.operators import llm_text
    from bl_ext.user_default.movie_director.panels import llm as llm_panel

    own = not hasattr(bpy.types.Scene, "movie_director_llm")
    if own:
        llm_text.register()
        llm_panel.register()
    prefs = bpy.context.preferences.addons[MODULE].preferences
    prefs.llm.urls = llm_proxy.url
    prefs.llm.api_key = llm_proxy.key
    yield addon
    addon.addon_runtime.shutdown()
    prefs.llm.urls = ""
    prefs.llm.api_key = ""
    if own:
        llm_panel.unregister()
        llm_text.unregister()


def _fresh_scene():  # type: ignore[no-untyped-def]
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    return bpy.context.scene


def test_write_streams_the_script_into_a_text_block_as_it_arrives(llm_addon: ModuleType) -> None:
    import bpy
    from bl_ext.user_default.movie_director.operators import llm_text

    _fresh_scene()
    old = bpy.data.texts.new("Harbour")
    old.write("an old draft that must go")
    handle = llm_text.write("The harbour at dusk", text_name="Harbour", model="director-long")
    lengths: list[int] = []
    threads: set[threading.Thread] = set()

    def watch(job, delta: str) -> None:  # type: ignore[no-untyped-def]  # runs after the writer, in order
        threads.add(threading.current_thread())
        if len(lengths) % 50 == 0 or not handle.done:
            lengths.append(len(bpy.data.texts["Harbour"].as_string()))

    handle.on_text(watch)
    job = handle.wait(30)
    assert job.state.value == "succeeded", job.error
    text = bpy.data.texts["Harbour"]
    assert text.as_string() == LONG_ANSWER == job.outputs.text
    assert threads == {threading.main_thread()}
    assert len(lengths) > 20 and lengths == sorted(lengths) and lengths[0] < len(LONG_ANSWER) // 10
    assert len(bpy.data.texts) == 1  # the same block, emptied first


def test_write_operator_from_a_script_returns_at_once_and_cancel_stops_the_text(llm_addon: ModuleType) -> None:
    import bpy

    scene = _fresh_scene()
    settings = scene.movie_director_llm
    settings.prompt = "A very long harbour scene"
    settings.model = "slow-stream"
    settings.text_name = "Draft"
    assert bpy.ops.moviedir.write_script() == {"FINISHED"}
    handle = llm_addon.api.last_job()
    assert handle is not None and not handle.done and handle.status().kind == "chat_stream"
    rt = llm_addon.addon_runtime.runtime()
    assert pump_until(rt, lambda: len(bpy.data.texts["Draft"].as_string()) >= 15, timeout=15)
    handle.cancel()
    job = handle.wait(1.0)
    assert job.state.value == "cancelled"
    written = bpy.data.texts["Draft"].as_string()
    assert 15 <= len(written) < len(LONG_ANSWER) and LONG_ANSWER.startswith(written)
    rt.pump()
    assert bpy.data.texts["Draft"].as_string() == written  # nothing more arrives after the cancel


def test_write_refuses_an_empty_prompt(llm_addon: ModuleType) -> None:
    import bpy

    scene = _fresh_scene()
    scene.movie_director_llm.prompt = "   "
    with pytest.raises(RuntimeError, match="Write a prompt first"):
        bpy.ops.moviedir.write_script()


def test_shot_list_lands_on_the_scene_and_survives_save_and_reload(llm_addon: ModuleType, tmp_path: Path) -> None:
    import bpy

    scene = _fresh_scene()
    scene.name = "Lighthouse"
    settings = scene.movie_director_llm
    settings.scene_description = "A keeper alone in a lighthouse on a stormy night."
    settings.model = "shots-valid"
    assert bpy.ops.moviedir.shot_list() == {"FINISHED"}
    job = llm_addon.api.last_job().wait(30)
    assert job.state.value == "succeeded", job.error
    expected = VALID_SHOTS["shots"]
    assert settings.shot_list_title == "The Lighthouse"
    assert [s.description for s in settings.shots] == [s["description"] for s in expected]
    assert [s.duration for s in settings.shots] == [4.5, 3.0]
    assert settings.shots[1].dialogue == "MARA: He's not coming back."
    assert settings.shots[0].sound_cues == "foghorn; waves on rocks"

    path = tmp_path / "shots.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True)
    assert "Lighthouse" not in bpy.data.scenes
    bpy.ops.wm.open_mainfile(filepath=str(path))
    reopened = bpy.data.scenes["Lighthouse"].movie_director_llm
    assert [s.camera for s in reopened.shots] == [s["camera"] for s in expected]
    from bl_ext.user_default.movie_director.operators import llm_text

    back = llm_text.scene_shot_list(bpy.data.scenes["Lighthouse"])
    assert back.model_dump(mode="json") == job.outputs.data["shot_list"]  # ready for the other backends


def test_console_shot_list_and_an_invalid_answer_leave_the_old_list(llm_addon: ModuleType) -> None:
    from bl_ext.user_default.movie_director.operators import llm_text

    scene = _fresh_scene()
    first = llm_text.shot_list("A lighthouse.", model="shots-valid", scene=scene)
    assert first.wait(30).state.value == "succeeded"
    second = llm_text.shot_list("A storm.", model="shots-invalid", scene=scene)
    job = second.wait(30)
    assert job.state.value == "failed" and "not a valid ShotList" in job.error.message
    assert len(scene.movie_director_llm.shots) == 2  # the failed answer never replaced the good one


def test_the_panel_draws_settings_buttons_and_shots(llm_addon: ModuleType) -> None:
    import bpy
    from bl_ext.user_default.movie_director.operators import llm_text
    from bl_ext.user_default.movie_director.panels import llm as llm_panel

    class Recorder(LayoutRecorder):
        def _child(self, *args: object, **kwargs: object) -> Recorder:
            return Recorder(self.calls)

        row = column = box = split = _child

        def template_list(self, list_type: str, list_id: str, data, prop: str, active, active_prop: str, **kw) -> None:  # type: ignore[no-untyped-def]
            assert list_type in dir(bpy.types) and prop in data.bl_rna.properties
            assert active_prop in active.bl_rna.properties
            self.calls.append(("list", prop))

    scene = _fresh_scene()
    llm_text.store_shot_list(scene, VALID_SHOTS)
    handle = llm_text.write("x", model="slow-stream")
    calls: list[tuple[str, str]] = []
    llm_panel.MOVIEDIR_PT_llm.draw(type("P", (), {"layout": Recorder(calls)})(), bpy.context)
    handle.cancel()
    handle.wait(2)
    for expected in [
        ("prop", "prompt"),
        ("prop_search", "model"),
        ("operator", "moviedir.refresh_llm_models"),
        ("operator", "moviedir.write_script"),
        ("operator", "moviedir.shot_list"),
        ("operator", "moviedir.cancel_job"),
        ("list", "shots"),
        ("prop", "dialogue"),
    ]:
        assert expected in calls, expected


def test_the_model_picker_lists_the_servers_models(llm_addon: ModuleType) -> None:
    import bpy

    _fresh_scene()
    assert bpy.ops.moviedir.refresh_llm_models() == {"FINISHED"}
    job = llm_addon.addon_runtime.last_handle.wait(30)
    assert job.state.value == "succeeded", job.error
    names = [m.name for m in bpy.context.window_manager.movie_director_llm_models]
    assert names == job.outputs.data["models"] and "director-llm" in names
