"""Movie Director: drive local AI generation servers (ComfyUI, Wan2GP, LiteLLM, TTS, RVC, AudioLDM) from Blender.

Registration only registers classes: the runtime, its loop thread and every client module start on first use, so
enabling the add-on costs Blender's start-up almost nothing. bpy is imported inside register()/unregister() so that
``runtime/`` and ``clients/`` stay importable in plain Python through this package.
"""

from __future__ import annotations

import importlib

_MODULES = (
    ".panels.preferences",
    ".operators.placement",
    ".operators.jobs",
    ".operators.image_models",
    ".operators.generate_image",
    ".operators.llm_text",
    ".operators.convert_voice",
    ".operators.cast",
    ".operators.speak_line",
    ".operators.train_voice",
    ".operators.direct",
    ".operators.generate_video",
    ".operators.sound_effect",
    ".operators.takes",
    ".operators.handoff",
    ".operators.storyboard_sheet",
    ".operators.render_cut",
    ".panels.sidebar",
    ".panels.llm",
    ".panels.voice",
    ".panels.speech",
    ".panels.direct",
    ".panels.video",
    ".panels.audio",
    ".panels.statusbar",
    ".panels.takes",
)


def _modules() -> list:  # type: ignore[type-arg]
    return [importlib.import_module(name, __package__) for name in _MODULES]


def register() -> None:
    from . import addon_runtime

    for module in _modules():
        module.register()
    addon_runtime.watch_for_unfinished()  # jobs of the last session resume after start-up, never inside register()


def unregister() -> None:
    from . import addon_runtime

    addon_runtime.stop_watching()
    addon_runtime.shutdown()
    for module in reversed(_modules()):
        module.unregister()


def __getattr__(name: str) -> object:
    """``movie_director.api`` on first touch, so that enabling the add-on does not import the runtime."""
    if name == "api":
        return importlib.import_module(".api", __package__)
    raise AttributeError(name)
