"""The one placer registry: how a finished job's result lands in Blender, looked up by the name its Placement carries.

Touches bpy (main thread only). A job's :class:`~runtime.placement.Placement` is data stored with the job (in the
journal too), so placing does not depend on a closure that died with the operator or the process: one runtime
subscriber (:func:`attach`, installed by ``addon_runtime`` when the runtime starts) runs the named placer on the job's
``job_finished`` event, on the main thread, however the job was started (operator, console, or resumed after a
restart). A placer that fails is reported on the job (its handle's ``placement_error`` and log, shown in the sidebar),
never only printed. A result asked for from another .blend waits in :data:`PENDING` until that file is open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime
from . import sequencer

if TYPE_CHECKING:
    from ..runtime.core import Runtime
    from ..runtime.jobs import Job
    from ..runtime.outbox import RuntimeEvent
    from ..runtime.placement import Placement

log = logging.getLogger(__name__)

Placer = Callable[[Any, "Job", "Placement"], Any]
PLACERS: dict[str, Placer] = {}
#: The custom property holding a scene's stable id (a renamed scene is still found by it).
SCENE_ID_KEY = "movie_director_id"
#: Finished jobs whose result belongs to another .blend, by job id; placed when that file is open.
PENDING: dict[str, Job] = {}


def register_placer(name: str, fn: Placer) -> None:
    """Make ``fn(scene, job, placement)`` the placer called ``name`` (a Placement names it)."""
    PLACERS[name] = fn


def scene_id(scene: Any) -> str:
    """The scene's stable id, stamped on it the first time it is asked for."""
    value = scene.get(SCENE_ID_KEY)
    if not value:
        import uuid  # on the first job: not when the add-on is enabled

        value = scene[SCENE_ID_KEY] = uuid.uuid4().hex
    return str(value)


def placement_for(
    scene: Any,
    placer: str,
    *,
    frame: int | None = None,
    channel: int = 0,
    name: str = "",
    extra: dict[str, Any] | None = None,
) -> Placement:
    """Where a job asked from ``scene`` now should land: this .blend, this scene, ``frame`` (the playhead)."""
    from ..runtime.placement import Placement  # pydantic: imported on the first job, not when the add-on is enabled

    if placer not in PLACERS:
        raise ValueError(f"Unknown placer {placer!r}; known: {', '.join(sorted(PLACERS))}")
    return Placement(
        placer=placer,
        blend_file=bpy.data.filepath,
        scene=scene.name,
        scene_id=scene_id(scene),
        frame=scene.frame_current if frame is None else int(frame),
        channel=channel,
        name=name,
        extra=extra or {},
    )


def find_scene(placement: Placement) -> Any | None:
    """The placement's scene: by stable id, then by name; None when the file has neither."""
    if placement.scene_id:
        for scene in bpy.data.scenes:
            if scene.get(SCENE_ID_KEY) == placement.scene_id:
                return scene
    return bpy.data.scenes.get(placement.scene) if placement.scene else None


def belongs_here(placement: Placement) -> bool:
    """True when the open file is the one the job was asked from (or it was asked from an unsaved file)."""
    return not placement.blend_file or placement.blend_file == bpy.data.filepath


def place(job: Job) -> Any | None:
    """Run the job's placer now (main thread); report a failure on the job. Returns what the placer returned."""
    placement = job.placement
    if placement is None or job.state.value != "succeeded":
        return None
    if not belongs_here(placement):
        PENDING[job.id] = job
        _report(job, f"result for {placement.blend_file}: open that file to place it", level=logging.INFO)
        return None
    PENDING.pop(job.id, None)
    fn = PLACERS.get(placement.placer)
    scene = find_scene(placement) or bpy.context.scene
    try:
        if fn is None:
            raise LookupError(f"no placer called {placement.placer!r} is registered")
        if scene is None:
            raise LookupError(f"the scene {placement.scene!r} is not in this file")
        placed = fn(scene, job, placement)
        sequencer.mark_generated(placed, job)  # every generated strip starts its list of takes
    except Exception as exc:  # any failure is the user's to see, on the job
        log.warning("placing job %s failed", job.id, exc_info=True)
        _report(job, f"could not place the result: {type(exc).__name__}: {exc}")
        return None
    sequencer.push_undo()  # its own undo step: Ctrl+Z removes exactly this result
    return placed


def place_into(job: Job, scene: Any) -> Any | None:
    """Place a result asked for from another file into ``scene`` of the open file (*Place here*)."""
    if job.placement is None:
        return None
    here = job.placement.model_copy(
        update={"blend_file": bpy.data.filepath, "scene": scene.name, "scene_id": scene_id(scene)}
    )
    return place(job.model_copy(update={"placement": here}))


def place_pending() -> int:
    """Place the waiting results that belong to the file now open; returns how many were placed."""
    ready = [job for job in list(PENDING.values()) if job.placement is not None and belongs_here(job.placement)]
    for job in ready:
        place(job)
    return len(ready)


def _report(job: Job, message: str, level: int = logging.WARNING) -> None:
    rt = addon_runtime.current()
    handle = rt.handle(job.id) if rt is not None else None
    if handle is not None:
        handle.report_problem(message, placement=True)
    log.log(level, "job %s: %s", job.id, message)
    addon_runtime.tag_redraw()


def _on_event(event: RuntimeEvent) -> None:
    if event.job is not None and event.job.placement is not None:
        place(event.job)


def attach(rt: Runtime) -> Callable[[], None]:
    """The runtime hook: place every finished job that carries a placement. Returns the unsubscribe function."""
    return rt.subscribe(_on_event, kinds=("job_finished",))


@bpy.app.handlers.persistent  # type: ignore[misc]
def _on_load(*_args: Any) -> None:
    place_pending()


def register() -> None:
    addon_runtime.add_start_hook(attach)
    if _on_load not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load)


def unregister() -> None:
    addon_runtime.remove_start_hook(attach)
    if _on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load)
    PENDING.clear()
