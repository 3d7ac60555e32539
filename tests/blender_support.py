"""Helpers for tests in real Blender (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os

import bpy
from support import REPO

MODULE = "bl_ext.user_default.movie_director"


def install() -> None:
    """Put this checkout into the user extension repository, as Blender's installer would put the package."""
    pass

    repo = bpy.utils.user_resource("EXTENSIONS", path="user_default", create=True)
    link = os.path.join(repo, "movie_director")
    if not os.path.lexists(link):
        os.symlink(REPO, link)


class LayoutRecorder:
    """Stands in for a panel's UILayout (Blender gives real ones only to visible regions) and checks every call:
    properties must exist on their data, operators must be registered."""

    def __init__(self, calls: list[tuple[str, str]] | None = None) -> None:
        self.calls = calls if calls is not None else []

    def _child(self, *args: object, **kwargs: object) -> LayoutRecorder:
        return LayoutRecorder(self.calls)

    row = column = box = split = _child

    def label(self, *, text: str = "", icon: str = "NONE") -> None:
        self.calls.append(("label", text))

    def prop(self, data: object, name: str, **kwargs: object) -> None:
        rna = data.bl_rna  # type: ignore[attr-defined]
        assert name in rna.properties, f"{rna.identifier} has no property {name}"
        self.calls.append(("prop", name))

    def progress(self, *, factor: float, type: str = "BAR", text: str = "") -> None:
        assert 0.0 <= factor <= 1.0
        self.calls.append(("progress", text))

    def prop_search(self, data: object, name: str, search_data: object, search_name: str, **kwargs: object) -> None:
        assert name in data.bl_rna.properties  # type: ignore[attr-defined]
        assert search_name in search_data.bl_rna.properties  # type: ignore[attr-defined]
        self.calls.append(("prop_search", name))

    def template_list(self, list_type: str, list_id: str, data: object, prop: str, active_data: object, active: str,
                      **kwargs: object) -> None:  # fmt: skip
        import bpy

        assert hasattr(bpy.types, list_type), f"UI list {list_type} is not registered"
        assert prop in data.bl_rna.properties and active in active_data.bl_rna.properties  # type: ignore[attr-defined]
        self.calls.append(("template_list", prop))

    def template_icon(self, *, icon_value: int, scale: float = 1.0) -> None:
        self.calls.append(("icon", str(icon_value)))

    def operator(self, idname: str, **kwargs: object) -> object:
        import bpy

        category, _, name = idname.partition(".")
        assert hasattr(getattr(bpy.ops, category), name), f"operator {idname} is not registered"
        assert getattr(getattr(bpy.ops, category), name).poll is not None
        self.calls.append(("operator", idname))

        class Props:
            pass

        return Props()
