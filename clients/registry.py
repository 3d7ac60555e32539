"""Which backends exist, how to build their clients, and their defaults.

Plain Python: this module never imports bpy. The preferences, the sidebar and the console API all read this one list,
so adding a backend is one entry here. Client modules are imported only when a client is first built.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ..runtime.backend import BackendClient, BackendConfig, NetworkPolicy


class BackendInfo(NamedTuple):  # not a dataclass: built when the add-on is enabled, a NamedTuple costs 7x less
    name: str
    label: str
    default_url: str
    module: str  # relative to this package; must define ``factory(config, network)``
    description: str = ""
    default_concurrency: int = 1
    needs_key: bool = False
    hidden: bool = False


BACKENDS: tuple[BackendInfo, ...] = (
    BackendInfo(
        "comfyui",
        "ComfyUI",
        "http://127.0.0.1:8188",
        ".comfyui.client",
        "Images from ComfyUI workflows",
        default_concurrency=2,
    ),
    BackendInfo(
        "llm",
        "LLM (LiteLLM)",
        "http://127.0.0.1:4000",
        ".llm.client",
        "Script and shot text from any OpenAI-compatible server",
        default_concurrency=4,
        needs_key=True,
    ),
    BackendInfo(
        "wan2gp",
        "Wan2GP",
        "http://127.0.0.1:7866/mcp",
        ".wan2gp.client",
        "Video clips (MCP at .../mcp, or a Gradio app)",
        default_concurrency=2,  # the client itself runs one generation per server; this lets a model list through
    ),
    BackendInfo("audioldm", "AudioLDM", "http://127.0.0.1:7860", ".audioldm.client", "Sound effects from text"),
    BackendInfo(
        "speech",
        "Speech (TTS)",
        "http://127.0.0.1:8880",
        ".speech.client",
        "Spoken lines from an OpenAI-compatible TTS server (Kokoro-FastAPI, openedai-speech, LocalAI, LiteLLM)",
    ),
    BackendInfo("rvc", "RVC", "http://127.0.0.1:5050", ".rvc.client", "Voice conversion (rvc-python API or Applio)"),
    BackendInfo("local", "Local", "", ".local", "In-process self-check backend", hidden=True),
)

BY_NAME = {b.name: b for b in BACKENDS}


def visible() -> list[BackendInfo]:
    return [b for b in BACKENDS if not b.hidden]


def factory_for(name: str) -> Any:
    """A client factory that imports the backend's module on first use (keeps Blender's start-up light)."""
    info = BY_NAME[name]

    def build(config: BackendConfig, network: NetworkPolicy) -> BackendClient:
        module = importlib.import_module(info.module, __package__)
        return module.factory(config, network)  # type: ignore[no-any-return]

    return build
