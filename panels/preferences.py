"""Add-on preferences: server URLs, API keys, concurrency and the output folder, one box per backend.

Touches bpy (main thread only). Keys use ``subtype="PASSWORD"`` and ``SKIP_SAVE``: they are never written to a .blend
or to the saved preferences; set ``MOVIE_DIRECTOR_<BACKEND>_API_KEY`` in the environment to keep one across sessions.
"""

from __future__ import annotations

from typing import Any

import bpy
from bpy.props import IntProperty, PointerProperty, StringProperty

from .. import addon_runtime
from ..clients import registry
from ..runtime.urls import validate_url


def _urls_changed(self: Any, context: Any) -> None:
    """Validate URLs as they are typed (no network here); a bad one is reported and the runtime keeps the old."""
    for url in (self.urls or "").replace(",", " ").split():
        try:
            validate_url(url)
        except ValueError as exc:
            self.url_error = str(exc)
            return
    self.url_error = ""
    addon_runtime.apply_preferences()


def _changed(self: Any, context: Any) -> None:
    addon_runtime.apply_preferences()


class MOVIEDIR_PG_backend(bpy.types.PropertyGroup):
    urls: StringProperty(  # type: ignore[valid-type]
        name="Server URLs",
        description="One or more server URLs, separated by spaces or commas. Empty = the default local server",
        default="",
        update=_urls_changed,
    )
    url_error: StringProperty(options={"HIDDEN", "SKIP_SAVE"})  # type: ignore[valid-type]
    api_key: StringProperty(  # type: ignore[valid-type]
        name="API Key",
        description="Optional key sent to the server; never saved in files",
        subtype="PASSWORD",
        options={"HIDDEN", "SKIP_SAVE"},
        update=_changed,
    )
    concurrency: IntProperty(  # type: ignore[valid-type]
        name="Concurrency",
        description="How many jobs this backend runs at once",
        default=1,
        min=1,
        max=16,
        update=_changed,
    )


def _preferences_annotations() -> dict[str, Any]:
    annotations: dict[str, Any] = {
        "output_dir": StringProperty(
            name="Output Folder",
            description="Where generated files are saved. Empty = the extension's own user folder",
            subtype="DIR_PATH",
            default="",
            update=_changed,
        ),
        "templates_dir": StringProperty(
            name="User Templates",
            description="A folder of your own ComfyUI workflows (API or UI format)",
            subtype="DIR_PATH",
            default="",
        ),
    }
    for info in registry.visible():
        annotations[info.name] = PointerProperty(type=MOVIEDIR_PG_backend)
    return annotations


class MOVIEDIR_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = addon_runtime.PACKAGE
    __annotations__ = _preferences_annotations()

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.prop(self, "output_dir")
        layout.prop(self, "templates_dir")
        if not bpy.app.online_access:
            layout.label(text="Online access is off: only servers on this computer can be used.", icon="INFO")
        for info in registry.visible():
            settings = getattr(self, info.name)
            box = layout.box()
            box.label(text=f"{info.label}: {info.description}")
            box.prop(settings, "urls", text=f"URLs (default {info.default_url})")
            if settings.url_error:
                box.label(text=settings.url_error, icon="ERROR")
            row = box.row()
            row.prop(settings, "api_key")
            row.prop(settings, "concurrency")
            box.operator("moviedir.test_connection", icon="LINKED").backend = info.name


classes = (MOVIEDIR_PG_backend, MOVIEDIR_AP_preferences)
register, unregister = bpy.utils.register_classes_factory(classes)
