"""Train Voice: a folder of recordings becomes a new RVC voice on an Applio server, in one job whose progress names
its stage (upload, preprocess, extract, train, index); the sidebar's Cancel (or the Jobs panel's) stops it, the
server's training too. Also the console function ``train_voice``.

Touches bpy (main thread only). The sidebar follows the last training job through :data:`CURRENT` (draw code reads
it, never waits); when a training succeeds the voice list is refreshed so the new voice can be picked at once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import bpy

from .. import addon_runtime
from .base import JobOperator
from .convert_voice import BACKEND, voices

if TYPE_CHECKING:
    from ..runtime.bridge import JobHandle
    from ..runtime.jobs import Job
    from ..runtime.placement import Placement

log = logging.getLogger(__name__)

#: The training job the sidebar follows (its progress bar and Cancel button).
CURRENT: dict[str, Any] = {"handle": None}
SAMPLE_RATES = [("40000", "40 kHz", "Applio's default"), ("48000", "48 kHz", ""), ("32000", "32 kHz", "")]
TRAIN_F0_METHODS = [
    ("rmvpe", "RMVPE", "Robust and fast; the usual choice"),
    ("crepe", "Crepe", "Smooth pitch, slower"),
    ("crepe-tiny", "Crepe Tiny", "Crepe's smaller model"),
]


def train_request(name: str, dataset: str = "", *, dataset_path: str = "", **settings: Any) -> dict[str, Any]:
    """An RVC "train" job request: ``dataset`` is a local folder of recordings (uploaded first), ``dataset_path`` a
    folder already on the server; ``settings`` are epochs, sample_rate, batch_size, save_every_epoch, f0method."""
    name = name.strip()
    if not name:
        raise ValueError("Name the new voice first")
    if not dataset and not dataset_path:
        raise ValueError("Choose the folder of recordings to train on")
    request: dict[str, Any] = {"name": name, **settings, "title": f"train voice {name}"}
    if dataset:
        request["dataset"] = bpy.path.abspath(dataset) if dataset.startswith("//") else dataset
    if dataset_path:
        request["dataset_path"] = dataset_path
    return request


def submit_training(request: dict[str, Any]) -> JobHandle:
    """Queue one training; the sidebar follows it and the voice list is refreshed when it succeeds."""
    handle = addon_runtime.runtime().submit(BACKEND, "train", request)
    CURRENT["handle"] = handle
    handle.on_progress(_redraw).on_log(lambda job, line: _redraw(job))
    handle.on_complete(_trained)
    return handle


def train_voice(name: str, dataset: str = "", *, dataset_path: str = "", **settings: Any) -> JobHandle:
    """Train a new RVC voice called ``name`` on the (first) RVC server, which must be an Applio server. ``dataset``
    is a local folder (or file) of recordings; ``dataset_path`` instead names a folder already on the server.
    ``settings``: ``epochs`` (200), ``sample_rate`` (40000), ``batch_size`` (8), ``save_every_epoch`` (10),
    ``f0method`` ("rmvpe"). ``handle.cancel()`` stops it, on the server too."""
    return submit_training(train_request(name, dataset, dataset_path=dataset_path, **settings))


def _trained(job: Job) -> None:
    voices(refresh=True)


def _redraw(job: Job) -> None:
    addon_runtime.tag_redraw()


# --- Blender types ----------------------------------------------------------------------------------------------------
class MOVIEDIR_PG_train_settings(bpy.types.PropertyGroup):
    name: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Voice Name", description="The new voice's name (letters, digits, - _ . and spaces)", default=""
    )
    dataset: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Recordings", description="A folder of clean recordings of one speaker (10+ minutes is best)",
        subtype="DIR_PATH", default="",
    )  # fmt: skip
    epochs: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Epochs", description="Training passes over the recordings", default=200, min=1, max=10000
    )
    sample_rate: bpy.props.EnumProperty(name="Sample Rate", items=SAMPLE_RATES, default="40000")  # type: ignore[valid-type]
    batch_size: bpy.props.IntProperty(  # type: ignore[valid-type]
        name="Batch Size", description="Recordings per step (lower it if the server runs out of memory)",
        default=8, min=1, max=64,
    )  # fmt: skip
    f0method: bpy.props.EnumProperty(name="Pitch Method", items=TRAIN_F0_METHODS, default="rmvpe")  # type: ignore[valid-type]


def settings_request(settings: Any) -> dict[str, Any]:
    return train_request(
        settings.name,
        settings.dataset,
        epochs=settings.epochs,
        sample_rate=int(settings.sample_rate),
        batch_size=settings.batch_size,
        f0method=settings.f0method,
    )


class MOVIEDIR_OT_train_voice(JobOperator):
    bl_idname = "moviedir.train_voice"
    bl_label = "Train Voice"
    bl_description = "Train a new RVC voice from a folder of recordings on the Applio server (takes a long time)"
    bl_options = {"REGISTER"}  # changes no Blender data

    what = "The voice training"

    @classmethod
    def poll(cls, context: Any) -> bool:
        return context.scene is not None

    def start_job(self, context: Any, placement: Placement | None) -> JobHandle:
        return submit_training(settings_request(context.scene.movie_director_train))


class MOVIEDIR_OT_cancel_training(bpy.types.Operator):
    bl_idname = "moviedir.cancel_training"
    bl_label = "Cancel Training"
    bl_description = "Stop the voice training (on the server too)"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: Any) -> bool:
        handle = CURRENT["handle"]
        return handle is not None and not handle.done

    def execute(self, context: Any) -> set[str]:
        handle = CURRENT["handle"]
        if handle is not None and not handle.done:
            handle.cancel()
            self.report({"INFO"}, "Stopping the voice training")
        return {"FINISHED"}


classes = (MOVIEDIR_PG_train_settings, MOVIEDIR_OT_train_voice, MOVIEDIR_OT_cancel_training)
_register, _unregister = bpy.utils.register_classes_factory(classes)


def register() -> None:
    _register()
    bpy.types.Scene.movie_director_train = bpy.props.PointerProperty(type=MOVIEDIR_PG_train_settings)


def unregister() -> None:
    del bpy.types.Scene.movie_director_train
    _unregister()
    CURRENT["handle"] = None
