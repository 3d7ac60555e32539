"""The models a ComfyUI server has, read from its ``/object_info``: checkpoints, LoRAs, VAEs, upscale models, ControlNet
models, samplers and schedulers. Templates name a model *kind*, never a file; this module fills in the file.

Plain Python: never imports bpy. ComfyUI has no "list models" call that covers every kind, but each loader node's
combo input lists the files of its folder (``CheckpointLoaderSimple.input.required.ckpt_name[0]``), so one cached
``/object_info`` answers all (``docs/protocols/comfyui.md``). The default of a model parameter is the user's last
choice on that server, else the server's first model of that kind; a model the server lacks is an error naming what it
has and the folder where such files go.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...runtime.cache import TtlCache
from ...runtime.errors import InvalidRequestError

BACKEND = "comfyui"


@dataclass(frozen=True)
class ModelKind:
    """One kind of model: the loader input whose choices list it, and where such files go on the server."""

    name: str
    node: str
    input: str
    #: The server folder for such files (None for built-in choices such as samplers).
    folder: str | None
    noun: str

    @property
    def where(self) -> str:
        return f"ComfyUI's {self.folder} folder" if self.folder else "the server"


MODEL_KINDS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind("checkpoint", "CheckpointLoaderSimple", "ckpt_name", "models/checkpoints", "checkpoint"),
        ModelKind("lora", "LoraLoader", "lora_name", "models/loras", "LoRA"),
        ModelKind("vae", "VAELoader", "vae_name", "models/vae", "VAE"),
        ModelKind("upscale_model", "UpscaleModelLoader", "model_name", "models/upscale_models", "upscale model"),
        ModelKind("controlnet", "ControlNetLoader", "control_net_name", "models/controlnet", "ControlNet model"),
        ModelKind("sampler", "KSampler", "sampler_name", None, "sampler"),
        ModelKind("scheduler", "KSampler", "scheduler", None, "scheduler"),
    )
}
#: A list longer than this, or a name longer than MAX_NAME, is a hostile or broken server: cut, never trusted.
MAX_NAMES = 5000
MAX_NAME = 1024
#: Cache key of the user's last choice of a kind on one server (kept with the runtime's discovery cache).
CHOICE_KEY = "comfyui:{url}:model-choice:{kind}"


def combo_choices(spec: Any) -> list[str] | None:
    """A combo input's string choices, from the old ``[[...], {...}]`` or the new ``["COMBO", {"options": [...]}]``
    shape; None when ``spec`` is not a combo (anything malformed counts as "not a combo": the server is not
    trusted)."""
    if not isinstance(spec, (list, tuple)) or not spec:
        return None
    head = spec[0]
    values: Any
    if isinstance(head, list):
        values = head
    elif head == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        values = spec[1].get("options")
    else:
        return None
    if not isinstance(values, list):
        return None
    return [v for v in values if isinstance(v, str) and 0 < len(v) <= MAX_NAME][:MAX_NAMES]


def kind_choices(object_info: Mapping[str, Any], kind: str | ModelKind) -> list[str] | None:
    """What the server offers for ``kind``; None when it lacks the loader node (e.g. no ControlNet support)."""
    spec_kind = MODEL_KINDS[kind] if isinstance(kind, str) else kind
    info = object_info.get(spec_kind.node)
    if not isinstance(info, Mapping):
        return None
    inputs = info.get("input")
    if not isinstance(inputs, Mapping):
        return None
    for group in ("required", "optional"):
        specs = inputs.get(group)
        if isinstance(specs, Mapping) and spec_kind.input in specs:
            return combo_choices(specs[spec_kind.input])
    return None


def model_lists(object_info: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{kind: [names]}`` for every kind the server has a loader for (an empty list: the loader, but no files)."""
    lists: dict[str, list[str]] = {}
    for name in MODEL_KINDS:
        found = kind_choices(object_info, name)
        if found is not None:
            lists[name] = found
    return lists


def _shown(names: list[str], limit: int = 12) -> str:
    """A list for a message: the first ``limit`` names, then how many more."""
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def missing_model_error(
    kind: str, value: str, available: list[str] | None, *, param: str = "", server: str = ""
) -> InvalidRequestError:
    """The error for a model the server does not have: what it has, and where such files go."""
    spec = MODEL_KINDS[kind]
    on = f" on {server}" if server else ""
    label = f"{param} " if param else ""
    if available is None:
        message = f"{label}{value!r}: the server{on} has no {spec.node} node, so it cannot load a {spec.noun}"
        hint = "Update ComfyUI, or pick a template that does not need it."
    elif not available:
        message = f"{label}{value!r}: the server{on} has no {spec.noun} at all"
        hint = f"Put one in {spec.where}, then press refresh next to the model list."
    else:
        message = f"{label}{value!r} is not a {spec.noun} the server{on} has; it has: {_shown(available)}"
        hint = f"Pick one of those, or put the file in {spec.where} and press refresh."
    return InvalidRequestError(
        message,
        backend=BACKEND,
        details={"param": param, "kind": kind, "value": value, "available": available or [], "folder": spec.folder},
        hint=hint,
    )


def no_model_error(kind: str, *, param: str = "", server: str = "") -> InvalidRequestError:
    """The error when a template needs a kind of model and the server has none (or no loader for it)."""
    spec = MODEL_KINDS[kind]
    on = f" {server}" if server else ""
    where = f"Put one in {spec.where}" if spec.folder else "Check the server's installation"
    needed = f" ({param} needs one)" if param and param != kind else ""
    return InvalidRequestError(
        f"The ComfyUI server{on} has no {spec.noun} at all{needed}",
        backend=BACKEND,
        details={"param": param, "kind": kind, "available": [], "folder": spec.folder},
        hint=f"{where}, then press refresh next to the model list.",
    )


def missing_phrase(node_type: str, input_name: str, value: str, choices: list[Any]) -> str:
    """How a workflow's missing model is named in a refusal: with what the server has and where such files go."""
    kind = next((k for k in MODEL_KINDS.values() if k.node == node_type and k.input == input_name), None)
    if kind is None:
        return f"model {value} for {node_type}.{input_name}"
    has = _shown([c for c in choices if isinstance(c, str)]) or "none"
    where = f"; {kind.noun}s go in {kind.where}" if kind.folder else ""
    return f"{kind.noun} {value} for {node_type}.{input_name} (the server has: {has}{where})"


def pick_model(
    kind: str,
    value: Any,
    lists: Mapping[str, list[str]],
    *,
    last_choice: str | None = None,
    param: str = "",
    server: str = "",
) -> str:
    """The model to use: ``value`` when the server has it (error otherwise), else the user's last choice if the
    server still has it, else the server's first model of that kind."""
    available = lists.get(kind)
    if value not in (None, ""):
        if not isinstance(value, str):
            raise InvalidRequestError(
                f"{param or kind} must be a {MODEL_KINDS[kind].noun} name, got {type(value).__name__}",
                backend=BACKEND,
                details={"param": param, "kind": kind, "value": repr(value)},
            )
        if available is None or value not in available:
            raise missing_model_error(kind, value, available, param=param, server=server)
        return value
    if available and last_choice in available:
        return last_choice  # type: ignore[return-value]
    if available:
        return available[0]
    raise no_model_error(kind, param=param, server=server)


def lora_entries(value: Any, *, param: str = "loras") -> list[dict[str, Any]]:
    """A LoRA stack as ``[{"name", "strength", "strength_clip"}]`` from dicts, ``(name, strength)`` pairs or bare
    names; InvalidRequestError names the entry that is wrong."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise InvalidRequestError(
            f"{param} must be a list of LoRAs (name and strength), got {type(value).__name__}",
            backend=BACKEND,
            details={"param": param},
        )
    entries: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"name": item}
        elif isinstance(item, (list, tuple)) and 1 <= len(item) <= 3:
            item = dict(zip(("name", "strength", "strength_clip"), item, strict=False))
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise InvalidRequestError(
                f"{param}[{i}] must have a LoRA file name",
                backend=BACKEND,
                details={"param": param, "index": i},
            )
        strength = item.get("strength", 1.0)
        clip = item.get("strength_clip", strength)
        for label, number in (("strength", strength), ("strength_clip", clip)):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not -100.0 <= number <= 100.0:
                raise InvalidRequestError(
                    f"{param}[{i}].{label} must be a number between -100 and 100, got {number!r}",
                    backend=BACKEND,
                    details={"param": param, "index": i},
                )
        entries.append({"name": item["name"], "strength": float(strength), "strength_clip": float(clip)})
    return entries


def last_choices(cache: TtlCache, url: str) -> dict[str, str]:
    """The user's last choice per kind on the server at ``url`` (kept in the runtime's discovery cache, on disk)."""
    found = {kind: cache.get(CHOICE_KEY.format(url=url, kind=kind), ttl=math.inf) for kind in MODEL_KINDS}
    return {kind: value for kind, value in found.items() if isinstance(value, str)}


def remember_choice(cache: TtlCache, url: str, kind: str, value: str) -> None:
    """``value`` becomes the default for ``kind`` on the server at ``url``."""
    cache.put(CHOICE_KEY.format(url=url, kind=kind), value)
