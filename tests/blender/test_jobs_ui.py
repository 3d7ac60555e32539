"""The jobs a film-maker sees in real Blender: the status bar, the jobs panel's controls, takes and undo.

Every operator's execute path runs here against the ComfyUI emulator; nothing is mocked.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from blender_support import MODULE, LayoutRecorder
from movie_director.clients.comfyui.emulator import EmulatorThread
from support import pump_until


@pytest.fixture
def comfy(addon: ModuleType) -> Iterator[tuple[ModuleType, Any]]:
    import bpy

    with EmulatorThread(step_delay=0.005) as emu:
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.comfyui.urls = emu.url
        prefs.comfyui.concurrency = 1
        yield addon, emu
        addon.addon_runtime.shutdown()
        prefs.comfyui.urls = ""


def _scene() -> Any:
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps = 24
    settings = scene.movie_director_image
    settings.template = "txt2img"
    settings.prompt, settings.width, settings.height, settings.steps = "a lighthouse", 128, 72, 3
    return scene


def _draw(module: ModuleType, cls: str) -> list[tuple[str, str]]:
    import bpy

    calls: list[tuple[str, str]] = []
    getattr(module, cls).draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    return calls


def _generate(addon: ModuleType) -> Any:
    import bpy

    assert bpy.ops.moviedir.generate_image() == {"FINISHED"}
    return addon.addon_runtime.last_handle


def test_no_generation_operator_listens_for_esc(comfy: tuple[ModuleType, Any]) -> None:
    """Esc to stop playback or a grab must never cancel a job: operators queue and return, in the UI as in scripts."""
    import bpy

    addon, _ = comfy
    base = importlib.import_module(".operators.base", addon.__name__)
    assert not hasattr(base.JobOperator, "modal") and not hasattr(base.JobOperator, "invoke")
    _scene()
    assert bpy.ops.moviedir.generate_image("INVOKE_DEFAULT") == {"FINISHED"}  # the UI path returns at once too
    handle = addon.addon_runtime.last_handle
    assert handle.wait(30).state.value == "succeeded"


def test_the_status_bar_shows_live_jobs_with_one_cancel_and_then_how_they_ended(comfy: tuple[ModuleType, Any]) -> None:
    import bpy

    addon, emu = comfy
    statusbar = importlib.import_module(".panels.statusbar", addon.__name__)
    _scene()
    emu.step_delay = 0.2  # slow enough to see it run
    bpy.context.scene.movie_director_image.steps = 50
    handle = _generate(addon)
    rt = addon.addon_runtime.runtime()
    assert pump_until(rt, lambda: handle.status().state.value == "running", timeout=15)
    calls: list[tuple[str, str]] = []
    statusbar.draw_status(type("H", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    assert ("operator", "moviedir.cancel_all") in calls
    (bar,) = [text for kind, text in calls if kind == "progress"]
    assert bar.startswith("Movie Director: 1 running")
    assert bpy.ops.moviedir.cancel_all() == {"FINISHED"}
    assert handle.wait(5).state.value == "cancelled"
    calls.clear()
    statusbar.draw_status(type("H", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    assert calls == [("label", "comfyui image was cancelled")]


def test_a_paused_backend_holds_its_queue_and_a_moved_job_starts_first(comfy: tuple[ModuleType, Any]) -> None:
    import bpy

    addon, _ = comfy
    sidebar = importlib.import_module(".panels.sidebar", addon.__name__)
    _scene()
    rt = addon.addon_runtime.runtime()
    assert bpy.ops.moviedir.pause_backend(backend="comfyui") == {"FINISHED"}
    assert rt.is_paused("comfyui")
    handles = [_generate(addon) for _ in range(3)]
    assert pump_until(rt, lambda: rt.stats().get("comfyui", {}).get("queued") == 3, timeout=5)
    assert all(h.status().state.value == "queued" for h in handles)
    assert ("operator", "moviedir.job_priority") in _draw(sidebar, "MOVIEDIR_PT_jobs")
    assert ("label", "Queue held: queued jobs wait until you resume") in _draw(sidebar, "MOVIEDIR_PT_backends")
    for _ in range(2):
        assert bpy.ops.moviedir.job_priority(job_id=handles[2].id, direction="UP") == {"FINISHED"}
    assert bpy.ops.moviedir.job_priority(job_id=handles[0].id, direction="DOWN") == {"FINISHED"}
    assert bpy.ops.moviedir.pause_backend(backend="comfyui") == {"FINISHED"}  # resume
    assert not rt.is_paused("comfyui")
    jobs = [h.wait(60) for h in handles]
    assert all(j.state.value == "succeeded" for j in jobs)
    order = sorted(range(3), key=lambda i: jobs[i].submitted_at or 0)
    assert order == [2, 1, 0]


def test_a_started_job_cannot_move_and_an_unknown_one_is_reported(comfy: tuple[ModuleType, Any]) -> None:
    import bpy

    addon, _ = comfy
    _scene()
    handle = _generate(addon)
    handle.wait(30)
    assert bpy.ops.moviedir.job_priority(job_id=handle.id, direction="UP") == {"CANCELLED"}
    assert bpy.ops.moviedir.retry_job(job_id="no-such-job") == {"CANCELLED"}
    assert bpy.ops.moviedir.cancel_job(job_id="no-such-job") == {"CANCELLED"}


def test_retry_runs_a_cancelled_job_again_and_use_settings_copies_it_back(comfy: tuple[ModuleType, Any]) -> None:
    import bpy

    addon, emu = comfy
    sidebar = importlib.import_module(".panels.sidebar", addon.__name__)
    scene = _scene()
    scene.movie_director_image.seed = 1234
    emu.step_delay = 0.2
    scene.movie_director_image.steps = 40
    handle = _generate(addon)
    assert bpy.ops.moviedir.cancel_job(job_id=handle.id) == {"FINISHED"}
    assert handle.wait(5).state.value == "cancelled"
    assert ("operator", "moviedir.retry_job") in _draw(sidebar, "MOVIEDIR_PT_jobs")
    emu.step_delay = 0.005
    assert bpy.ops.moviedir.retry_job(job_id=handle.id) == {"FINISHED"}
    again = addon.addon_runtime.last_handle
    assert again.id != handle.id and again.status().request == handle.status().request
    assert again.wait(30).state.value == "succeeded"

    settings = scene.movie_director_image
    settings.prompt, settings.seed, settings.steps = "something else", -1, 7
    assert bpy.ops.moviedir.use_job_settings(job_id=again.id) == {"FINISHED"}
    assert (settings.prompt, settings.seed, settings.steps, settings.width) == ("a lighthouse", 1234, 40, 128)


def test_clear_finished_empties_the_list_of_ended_jobs(comfy: tuple[ModuleType, Any]) -> None:
    import bpy

    addon, _ = comfy
    _scene()
    handle = _generate(addon)
    handle.wait(30)
    rt = addon.addon_runtime.runtime()
    assert handle in rt.jobs()
    assert bpy.ops.moviedir.clear_finished() == {"FINISHED"}
    assert handle not in rt.jobs()


def test_placing_a_result_is_one_undo_step(comfy: tuple[ModuleType, Any]) -> None:
    import bpy

    addon, _ = comfy
    scene = _scene()
    scene.sequence_editor_create()
    bpy.ops.ed.undo_push(message="before")
    handle = _generate(addon)
    assert handle.wait(30).state.value == "succeeded"
    assert len(bpy.context.scene.sequence_editor.strips) == 1
    assert bpy.ops.ed.undo() == {"FINISHED"}
    assert len(bpy.context.scene.sequence_editor.strips) == 0  # exactly the placed strip went
    assert bpy.ops.ed.redo() == {"FINISHED"}
    assert len(bpy.context.scene.sequence_editor.strips) == 1


def test_every_generated_strip_keeps_its_takes_and_swaps_them_in_place(comfy: tuple[ModuleType, Any]) -> None:
    import bpy

    addon, _ = comfy
    takes_panel = importlib.import_module(".panels.takes", addon.__name__)
    scene = _scene()
    handle = _generate(addon)
    assert handle.wait(30).state.value == "succeeded"
    (strip,) = scene.sequence_editor.strips
    scene.sequence_editor.active_strip = strip
    first = handle.status().outputs.files[0].path
    assert json.loads(strip["takes"]) == [first]
    strip.channel, strip.frame_start = 3, 10  # the film-maker moved it
    where = (strip.channel, strip.frame_final_start, strip.frame_final_duration)

    assert bpy.ops.moviedir.new_take() == {"FINISHED"}
    take = addon.addon_runtime.last_handle
    assert take.status().request["params"]["seed"] == -1  # a new seed, the same settings
    assert take.wait(30).state.value == "succeeded"
    second = take.status().outputs.files[0].path
    strip = scene.sequence_editor.strips[strip.name]
    assert json.loads(strip["takes"]) == [first, second]
    assert (strip.channel, strip.frame_final_start, strip.frame_final_duration) == where
    assert len(scene.sequence_editor.strips) == 1
    calls = _draw(takes_panel, "MOVIEDIR_PT_takes")
    assert [c for c in calls if c[0] == "operator"].count(("operator", "moviedir.swap_take")) == 2

    assert bpy.ops.moviedir.swap_take(index=0) == {"FINISHED"}
    assert Path(strip.directory, strip.elements[0].filename) == Path(first)
    assert (strip.channel, strip.frame_final_start, strip.frame_final_duration) == where
    with pytest.raises(RuntimeError, match="The strip has 2 takes; there is no take 6"):
        bpy.ops.moviedir.swap_take(index=5)  # from a script an operator's error report raises


@pytest.mark.parametrize("layout", ["SIDE_BY_SIDE", "SEQUENCE"])
def test_variations_queue_one_batch_of_seeds_laid_out_as_asked(comfy: tuple[ModuleType, Any], layout: str) -> None:
    import bpy

    addon, _ = comfy
    scene = _scene()
    scene.frame_current = 10
    settings = scene.movie_director_image
    settings.variations, settings.variation_layout, settings.seed = 3, layout, 40
    assert bpy.ops.moviedir.generate_variations() == {"FINISHED"}
    batch = addon.addon_runtime.last_batch
    seen: list[float] = []
    ended: list[int] = []
    batch.on_progress(lambda b: seen.append(b.progress)).on_done(lambda b: ended.append(len(b)))
    jobs = batch.wait(60)
    addon.addon_runtime.runtime().pump()
    assert [j.state.value for j in jobs] == ["succeeded"] * 3
    assert [j.request["params"]["seed"] for j in jobs] == [40, 41, 42]
    assert ended == [3] and seen and seen[-1] == 1.0
    strips = sorted(scene.sequence_editor.strips, key=lambda s: (s.frame_final_start, s.channel))
    if layout == "SIDE_BY_SIDE":
        assert [(s.frame_final_start, s.channel) for s in strips] == [(10, 1), (10, 2), (10, 3)]
    else:
        assert [(s.frame_final_start, s.channel) for s in strips] == [(10, 1), (58, 1), (106, 1)]


def test_variations_are_bounded(comfy: tuple[ModuleType, Any]) -> None:
    addon, _ = comfy
    gen = importlib.import_module(".operators.generate_image", addon.__name__)
    _scene()
    with pytest.raises(ValueError, match="between 1 and 16"):
        gen.submit_variations(17, prompt="x")


def test_a_result_for_another_file_waits_and_can_be_placed_here_or_in_its_own_file(
    comfy: tuple[ModuleType, Any], tmp_path: Path
) -> None:
    import bpy

    addon, emu = comfy
    placement = importlib.import_module(".operators.placement", addon.__name__)
    sidebar = importlib.import_module(".panels.sidebar", addon.__name__)
    scene = _scene()
    first_file = str(tmp_path / "first.blend")
    bpy.ops.wm.save_as_mainfile(filepath=first_file)
    emu.step_delay = 0.05
    scene.movie_director_image.steps = 20
    handles = [_generate(addon), _generate(addon)]
    bpy.ops.wm.read_homefile(use_empty=True)  # another file is open while they finish
    rt = addon.addon_runtime.runtime()
    assert all(h.wait(60).state.value == "succeeded" for h in handles)
    rt.pump()
    assert {h.id for h in handles} <= set(placement.PENDING)
    editor = bpy.context.scene.sequence_editor
    assert editor is None or len(editor.strips) == 0, [s.name for s in editor.strips]  # nothing in the wrong file
    calls = _draw(sidebar, "MOVIEDIR_PT_jobs")
    assert ("label", "Result for first.blend") in calls
    assert ("operator", "moviedir.place_here") in calls and ("operator", "moviedir.open_result_file") in calls

    assert bpy.ops.moviedir.place_here(job_id=handles[0].id) == {"FINISHED"}
    assert len(bpy.context.scene.sequence_editor.strips) == 1
    assert handles[0].id not in placement.PENDING

    assert bpy.ops.moviedir.open_result_file(job_id=handles[1].id) == {"FINISHED"}
    assert bpy.data.filepath == first_file
    (strip,) = bpy.context.scene.sequence_editor.strips  # the other result landed in its own file
    assert handles[1].id not in placement.PENDING
    assert Path(strip.directory, strip.elements[0].filename) == Path(handles[1].status().outputs.files[0].path)


def test_the_console_api_has_every_jobs_panel_control(comfy: tuple[ModuleType, Any]) -> None:
    addon, _ = comfy
    api = addon.api
    scene = _scene()
    scene.movie_director_image.seed = 5
    api.pause("comfyui")
    first = api.generate_image("one", width=64, height=64, steps=3, seed=1)
    second = api.generate_image("two", width=64, height=64, steps=3, seed=2)
    assert api.move_job(second, "UP") == 1
    with pytest.raises(ValueError, match="UP or DOWN"):
        api.move_job(first, "SIDEWAYS")
    api.resume("comfyui")
    assert [j.state.value for j in (second.wait(30), first.wait(30))] == ["succeeded", "succeeded"]
    assert second.status().submitted_at <= first.status().submitted_at  # type: ignore[operator]
    with pytest.raises(ValueError, match="has started"):
        api.move_job(first, "UP")
    again = api.retry(first)
    assert again.wait(30).state.value == "succeeded" and again.status().request == first.status().request
    copied, refused = api.use_settings(again)
    assert "prompt" in copied and not refused and scene.movie_director_image.prompt == "one"
    assert api.output_folder(again) == Path(again.status().outputs.files[0].path).parent
    assert api.cancel_all() == 0
    assert api.clear_finished() >= 3 and api.jobs() == []
    batch = api.generate_variations("three", 2, layout="SEQUENCE", width=64, height=64, steps=2, seed=9)
    assert [j.request["params"]["seed"] for j in batch.wait(60)] == [9, 10]
    with pytest.raises(ValueError, match="not waiting"):
        api.place_here(again)
