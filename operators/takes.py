"""Takes: every generated strip keeps the files it has shown; any of them can be swapped back in place, and a new
take can be asked for with the same settings and a new seed.

Touches bpy (main thread only). A take swaps the file inside the same strip, so its channel, frames, effects and
modifiers stay; each swap and each new take is its own undo step.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import bpy
from bpy.props import IntProperty

from .. import addon_runtime
from . import sequencer
from .placement import placement_for, register_placer

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job
    from ..runtime.placement import Placement

#: Request keys that hold a seed, per kind of request; a new take asks for a fresh random one.
SEED_KEYS = ("seed",)


def active_generated_strip(scene: Any) -> Any | None:
    """The active strip, if Movie Director made it (it has takes)."""
    editor = scene.sequence_editor if scene else None
    strip = editor.active_strip if editor else None
    return strip if strip is not None and sequencer.TAKES_KEY in strip else None


def new_take(scene: Any, strip: Any) -> JobHandle:
    """Ask the strip's backend again with the strip's settings and a random seed; the result is swapped into the
    same strip when it arrives."""
    try:
        origin = json.loads(strip.get(sequencer.ORIGIN_KEY, ""))
        backend, kind, request = origin["backend"], origin["kind"], dict(origin["request"])
    except (TypeError, ValueError, KeyError):
        raise ValueError(f"{strip.name} does not say what made it: it cannot get a new take") from None
    params = request.get("params")
    for holder in (request, params if isinstance(params, dict) else {}):
        for key in SEED_KEYS:
            if key in holder:
                holder[key] = -1
    where = placement_for(scene, "take", name=strip.name, extra={"strip": strip.name})
    handle = addon_runtime.runtime().submit(backend, kind, request, placement=where)
    addon_runtime.last_handle = handle
    return handle


def place_take(scene: Any, job: Job, placement: Placement) -> None:
    """The "take" placer: the new file is swapped into the strip it was asked for (it stays where it is)."""
    strip_name = str(placement.extra.get("strip", ""))
    target = sequencer.strips(scene).get(strip_name)
    files = [f for f in job.outputs.files if not f.media_type.startswith("text/")]
    if target is None:
        raise LookupError(f"the strip {strip_name!r} is no longer in {scene.name!r}")
    if not files:
        raise LookupError("the job produced no file")
    sequencer.swap_take(target, files[0].path)


register_placer("take", place_take)


class MOVIEDIR_OT_swap_take(bpy.types.Operator):
    bl_idname = "moviedir.swap_take"
    bl_label = "Use Take"
    bl_description = "Show this take in the active strip (same channel, frames and effects)"
    bl_options = {"REGISTER", "UNDO"}  # changes the strip: one undo step

    index: IntProperty(name="Take", min=0)  # type: ignore[valid-type]

    @classmethod
    def poll(cls, context: Any) -> bool:
        return active_generated_strip(context.scene) is not None

    def execute(self, context: Any) -> set[str]:
        strip = active_generated_strip(context.scene)
        files = sequencer.takes(strip)
        if self.index >= len(files):
            self.report({"ERROR"}, f"The strip has {len(files)} takes; there is no take {self.index + 1}")
            return {"CANCELLED"}
        try:
            sequencer.swap_take(strip, files[self.index])
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Take {self.index + 1} of {len(files)}")
        return {"FINISHED"}


class MOVIEDIR_OT_new_take(bpy.types.Operator):
    bl_idname = "moviedir.new_take"
    bl_label = "New Take"
    bl_description = "Generate the active strip again with the same settings and a new seed; it becomes a take"
    bl_options = {"INTERNAL"}  # the take arrives later, as its own undo step

    @classmethod
    def poll(cls, context: Any) -> bool:
        return active_generated_strip(context.scene) is not None

    def execute(self, context: Any) -> set[str]:
        try:
            new_take(context.scene, active_generated_strip(context.scene))
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        addon_runtime.ensure_timer()
        self.report({"INFO"}, "A new take was queued")
        return {"FINISHED"}


classes = (MOVIEDIR_OT_swap_take, MOVIEDIR_OT_new_take)
register, unregister = bpy.utils.register_classes_factory(classes)
