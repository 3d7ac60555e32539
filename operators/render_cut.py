"""Render the rough cut to a movie file, with progress and cancel, in the UI (a modal operator, Esc cancels) and
headless (``api.render_cut``, a loop with a progress callback that may cancel).

Touches bpy (main thread only). Blender's animation render cannot be stopped from Python in the background, so the
cut is rendered frame by frame to PNGs in a temporary folder beside the target (cancel works between any two
frames), then one quick pass encodes them with the scene's sounds in a throw-away scene. The movie is written to a
temporary name and renamed when complete; a cancelled or failed render leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bpy

from ..clients.handoff.errors import HandoffError
from . import cut_reader, sequencer

log = logging.getLogger(__name__)

#: Container by extension: (ffmpeg.format, video codec, audio codec).
CONTAINERS = {".mp4": ("MPEG4", "H264", "AAC"), ".mov": ("QUICKTIME", "H264", "AAC"), ".mkv": ("MKV", "H264", "AAC")}


class RenderCancelled(HandoffError):
    pass


class CutRender:
    """One render of a scene's cut, advanced by :meth:`step` (one frame per call, then the encode)."""

    def __init__(self, scene: Any, path: str | Path) -> None:
        from ..clients.handoff.cut import check_media  # the cut's data classes load on the first render

        self.scene_name = scene.name
        self.target = Path(bpy.path.abspath(str(path)))
        if self.target.suffix.lower() not in CONTAINERS:
            raise HandoffError(f"Render to a movie file ({', '.join(CONTAINERS)}): {self.target.name} is not one")
        if not self.target.parent.is_dir():
            raise HandoffError(f"The folder {self.target.parent} does not exist")
        check_media(cut_reader.read_cut(scene))  # empty scene, unsaved relative paths, moved media
        self.frames = list(range(scene.frame_start, scene.frame_end + 1))
        self.done = 0
        self.state = "running"  # running | finished | cancelled | failed
        self.error = ""
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.stem}.render-", dir=self.target.parent))

    @property
    def total(self) -> int:
        return len(self.frames) + 1  # the encode counts as one step

    @property
    def progress(self) -> float:
        return self.done / self.total

    @property
    def scene(self) -> Any:
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            raise HandoffError(f"Scene {self.scene_name!r} is gone")
        return scene

    def step(self) -> bool:
        """Render the next frame (or encode when all are done); False once the render has ended."""
        if self.state != "running":
            return False
        try:
            if self.done < len(self.frames):
                self._frame(self.frames[self.done])
            else:
                self._encode()
                self.state = "finished"
                self._cleanup()
            self.done += 1
        except Exception as exc:
            self.state, self.error = "failed", str(exc)
            self._cleanup()
            raise
        return self.state == "running"

    def cancel(self) -> None:
        if self.state == "running":
            self.state = "cancelled"
            self._cleanup()

    def _cleanup(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _frame_path(self, frame: int) -> Path:
        return self._tmp / f"{frame:06d}.png"

    def _frame(self, frame: int) -> None:
        scene = self.scene
        with _settings(scene.render, filepath=str(self._frame_path(frame)), use_file_extension=False):
            image = scene.render.image_settings
            with _settings(image, media_type="IMAGE"), _settings(image, file_format="PNG", color_mode="RGB"):
                current = scene.frame_current
                scene.frame_set(frame)
                try:
                    bpy.ops.render.render(write_still=True, scene=scene.name)
                finally:
                    scene.frame_set(current)
        if not self._frame_path(frame).is_file():
            raise HandoffError(f"Blender rendered no picture for frame {frame}")

    def _encode(self) -> None:
        """The PNGs and the cut's sounds into the movie, in a throw-away scene that shows them as they are."""
        source = self.scene
        fmt, codec, audio = CONTAINERS[self.target.suffix.lower()]
        part = self._tmp / f"movie{self.target.suffix}"
        scene = bpy.data.scenes.new(".movie_director_encode")
        try:
            scene.render.fps, scene.render.fps_base = source.render.fps, source.render.fps_base
            scene.render.resolution_x, scene.render.resolution_y = (
                source.render.resolution_x,
                source.render.resolution_y,
            )
            scene.render.resolution_percentage = source.render.resolution_percentage
            scene.frame_start, scene.frame_end = self.frames[0], self.frames[-1]
            scene.view_settings.view_transform = "Standard"  # the PNGs are already as the viewer should see them
            scene.view_settings.look = "None"
            strips = sequencer.editable_strips(scene)
            first = self._frame_path(self.frames[0])
            pictures = strips.new_image(name="cut", filepath=str(first), channel=1, frame_start=self.frames[0])
            for frame in self.frames[1:]:
                pictures.elements.append(self._frame_path(frame).name)
            channel = 2
            for strip in sequencer.all_strips(source):
                if strip.type != "SOUND" or strip.mute or strip.sound is None:
                    continue
                sound = strips.new_sound(
                    name=strip.name,
                    filepath=cut_reader.media_path(strip, strip.sound.filepath),
                    channel=channel,
                    frame_start=round(strip.frame_start),
                )
                sound.frame_final_start, sound.frame_final_end = strip.frame_final_start, strip.frame_final_end
                sound.volume = strip.volume
                channel += 1
            image = scene.render.image_settings
            image.media_type = "VIDEO"
            image.file_format = "FFMPEG"
            scene.render.ffmpeg.format, scene.render.ffmpeg.codec = fmt, codec
            scene.render.ffmpeg.audio_codec = audio
            scene.render.filepath, scene.render.use_file_extension = str(part), False
            bpy.ops.render.render(animation=True, scene=scene.name)
        finally:
            bpy.data.scenes.remove(scene)
        if not part.is_file():
            raise HandoffError("Blender wrote no movie (is this Blender built with FFmpeg?)")
        os.replace(part, self.target)


@contextlib.contextmanager
def _settings(owner: Any, **values: Any) -> Iterator[None]:
    """Set attributes for the block, then put the user's back."""
    old = {k: getattr(owner, k) for k in values if hasattr(owner, k)}
    for key, value in values.items():
        if hasattr(owner, key):
            setattr(owner, key, value)
    try:
        yield
    finally:
        for key, value in old.items():
            setattr(owner, key, value)


def render_cut(path: str | Path, *, scene: Any = None, on_progress: Callable[[CutRender], Any] | None = None) -> Path:
    """Render the scene's cut to ``path`` (.mp4, .mov or .mkv), blocking; ``on_progress(render)`` after each frame
    may call ``render.cancel()``, which raises :class:`RenderCancelled` and leaves no file."""
    render = CutRender(scene or bpy.context.scene, path)
    try:
        while render.step():
            if on_progress is not None:
                on_progress(render)
    finally:
        if render.state == "running":  # an exception from on_progress
            render.cancel()
    if render.state == "cancelled":
        raise RenderCancelled(f"The render of {render.target.name} was cancelled")
    if on_progress is not None:
        on_progress(render)
    return render.target


#: The render the UI is running (one at a time), for the panel's progress bar and Cancel button.
_active: list[CutRender | None] = [None]


def active_render() -> CutRender | None:
    return _active[0]


class MOVIEDIR_OT_render_cut(bpy.types.Operator):
    bl_idname = "moviedir.render_cut"
    bl_label = "Render Rough Cut"
    bl_description = "Render the scene's Sequencer to a movie file, with progress; Esc cancels"
    bl_options = {"REGISTER"}  # writes a file; the scene's settings are put back after each frame

    filepath: bpy.props.StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: bpy.props.StringProperty(default="*.mp4;*.mov;*.mkv", options={"HIDDEN"})  # type: ignore[valid-type]
    _timer: Any = None

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None and _active[0] is None

    def invoke(self, context: Any, event: Any) -> set[str]:
        if not self.filepath:
            blend = bpy.data.filepath
            self.filepath = str(Path(blend).with_suffix(".mp4")) if blend else "rough_cut.mp4"
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: Any) -> set[str]:
        try:
            render = CutRender(context.scene, self.filepath)
        except HandoffError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if bpy.app.background or context.window is None:  # no event loop: render now
            try:
                while render.step():
                    pass
            except Exception as exc:
                self.report({"ERROR"}, f"Render failed: {exc}")
                return {"CANCELLED"}
            self.report({"INFO"}, f"Rendered {render.target}")
            return {"FINISHED"}
        _active[0] = render
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.01, window=context.window)
        wm.progress_begin(0, render.total)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> set[str]:
        render = _active[0]
        if render is None or event.type == "ESC" or render.state == "cancelled":
            if render is not None:
                render.cancel()
            self._finish(context)
            self.report({"WARNING"}, "Render cancelled; nothing was written")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        budget = time.monotonic() + 0.2  # frames within the tick's budget, the UI stays responsive between
        try:
            while render.step() and time.monotonic() < budget:
                pass
        except Exception as exc:
            self._finish(context)
            self.report({"ERROR"}, f"Render failed: {exc}")
            return {"CANCELLED"}
        context.window_manager.progress_update(render.done)
        for area in context.screen.areas if context.screen else []:
            area.tag_redraw()
        if render.state == "finished":
            self._finish(context)
            self.report({"INFO"}, f"Rendered {render.target}")
            return {"FINISHED"}
        return {"RUNNING_MODAL"}

    def _finish(self, context: Any) -> None:
        _active[0] = None
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
        wm.progress_end()

    def cancel(self, context: Any) -> None:
        if _active[0] is not None:
            _active[0].cancel()
        self._finish(context)


class MOVIEDIR_OT_cancel_render(bpy.types.Operator):
    bl_idname = "moviedir.cancel_render"
    bl_label = "Cancel Render"
    bl_description = "Stop rendering the rough cut; nothing is written"
    bl_options = {"INTERNAL"}  # acts on the running render

    @classmethod
    def poll(cls, context: Any) -> bool:
        return _active[0] is not None

    def execute(self, context: Any) -> set[str]:
        render = _active[0]
        if render is not None:
            render.cancel()
        return {"FINISHED"}


classes = (MOVIEDIR_OT_render_cut, MOVIEDIR_OT_cancel_render)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()


def unregister() -> None:
    if _active[0] is not None:
        _active[0].cancel()
        _active[0] = None
    _unregister()
