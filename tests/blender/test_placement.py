"""Placement as data, in real Blender: a finished job lands through the placer its Placement names, run by the one
runtime subscriber on the main thread however the job was started; a renamed scene is found by its stable id; a
result asked for from another .blend waits instead of landing in the wrong file; a failing placer is reported on the
job, not only printed."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest


@pytest.fixture
def placement(addon: ModuleType) -> Iterator[ModuleType]:
    """The add-on's placer registry, with a recording "probe" placer; removed and the runtime shut down after."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    module = importlib.import_module(".operators.placement", addon.__name__)
    calls: list[tuple[Any, Any, Any]] = []
    module.register_placer("probe", lambda scene, job, where: calls.append((scene, job, where)))
    module.calls = calls  # type: ignore[attr-defined]
    yield module
    addon.addon_runtime.shutdown()
    module.PLACERS.pop("probe", None)
    module.PLACERS.pop("broken", None)
    module.PENDING.clear()


def test_a_result_lands_in_its_scene_even_renamed_and_is_stored_with_the_job(
    addon: ModuleType, placement: ModuleType
) -> None:
    import bpy

    asked = bpy.data.scenes.new("Shot A")
    where = placement.placement_for(asked, "probe", frame=7, channel=3, name="take", extra={"seconds": 2.5})
    handle = addon.api.submit("local", "echo", {"text": "x"}, placement=where)
    asked.name = "Renamed"
    decoy = bpy.data.scenes.new("Shot A")  # the old name now belongs to another scene
    job = handle.wait(10)
    assert job.state.value == "succeeded"
    ((scene, placed_job, got),) = placement.calls
    assert scene == asked and scene != decoy
    assert (got.frame, got.channel, got.name, got.extra) == (7, 3, "take", {"seconds": 2.5})
    assert placed_job.id == handle.id and handle.placement_error == ""
    stored = addon.addon_runtime.current().journal.get(handle.id)
    assert stored.placement == where  # placement is part of the job's spec, in the journal


def test_a_result_for_another_file_waits_and_says_so(addon: ModuleType, placement: ModuleType) -> None:
    import bpy

    where = placement.placement_for(bpy.context.scene, "probe").model_copy(update={"blend_file": "/elsewhere/a.blend"})
    handle = addon.api.submit("local", "echo", {"text": "x"}, placement=where)
    assert handle.wait(10).state.value == "succeeded"
    assert placement.calls == []
    assert handle.id in placement.PENDING and "/elsewhere/a.blend" in handle.placement_error


def test_a_failing_placer_is_reported_on_the_job(addon: ModuleType, placement: ModuleType) -> None:
    import bpy

    def broken(scene: Any, job: Any, where: Any) -> None:
        raise RuntimeError("this Blender cannot read sound")

    placement.register_placer("broken", broken)
    handle = addon.api.submit(
        "local", "echo", {"text": "x"}, placement=placement.placement_for(bpy.context.scene, "broken")
    )
    assert handle.wait(10).state.value == "succeeded"
    assert "this Blender cannot read sound" in handle.placement_error
    assert any("this Blender cannot read sound" in line for line in handle.status().log)
    from blender_support import LayoutRecorder

    sidebar = importlib.import_module(".panels.sidebar", addon.__name__)
    calls: list[tuple[str, str]] = []
    sidebar.MOVIEDIR_PT_jobs.draw(type("P", (), {"layout": LayoutRecorder(calls)})(), bpy.context)
    assert any(kind == "label" and "this Blender cannot read sound" in text for kind, text in calls)


def test_an_unknown_placer_is_refused_when_asked(addon: ModuleType, placement: ModuleType) -> None:
    import bpy

    with pytest.raises(ValueError, match=r"Unknown placer 'nope'.*image"):
        placement.placement_for(bpy.context.scene, "nope")


def test_last_job_is_the_last_one_submitted_however_started(addon: ModuleType, placement: ModuleType) -> None:
    first = addon.api.submit("local", "echo", {"text": "x"})
    assert addon.api.last_job() is first
    second = addon.addon_runtime.runtime().submit("local", "echo", {"text": "y"})
    assert addon.api.last_job() is second
    second.wait(10)


def test_looking_at_a_scene_never_gives_it_a_sequencer(addon: ModuleType, placement: ModuleType, tmp_path: Any) -> None:
    """Reading (a free channel, a strip by name, the strip under the playhead) leaves a scene without a Sequencer as it
    was: an empty Sequencer would dirty the file and change what Blender shows. Only placing a result creates one."""
    import bpy

    sequencer = importlib.import_module(".operators.sequencer", addon.__name__)
    generate_image = importlib.import_module(".operators.generate_image", addon.__name__)
    scene = bpy.data.scenes.new("Bare")
    assert scene.sequence_editor is None
    assert sequencer.first_free_channel(scene, 1, 25) == 1
    assert sequencer.strips(scene).get("take") is None and list(sequencer.strips(scene)) == []
    assert sequencer.remove_strip(scene, "take") is None
    with pytest.raises(ValueError, match="no image strip under the playhead"):
        generate_image.export_input_image(scene, "STRIP")
    assert scene.sequence_editor is None, "a look at the scene created a Sequencer"
    still = bpy.data.images.new("still", 8, 8)
    still.filepath_raw = str(tmp_path / "still.png")
    still.file_format = "PNG"
    still.save()
    strip = sequencer.place_image(scene, still.filepath_raw, frame=1, duration=12, name="still")
    assert scene.sequence_editor is not None and strip.channel == 1
    assert sequencer.strips(scene).get("still") == strip
