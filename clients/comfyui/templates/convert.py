"""From the workflows film-makers actually have to templates: UI-format conversion and parameter inference.

Plain Python: never imports bpy.

ComfyUI's "Save" (UI) format keeps widget values as a bare list, ``widgets_values``, in the order of the node's
widgets, so turning it into the API format the server runs needs the server's ``/object_info`` to name each position.
:func:`ui_to_api` does what ComfyUI's frontend does when it queues a prompt: widget inputs (combos, INT, FLOAT,
STRING, BOOLEAN) take values in ``input_order`` order, a seed's hidden "control_after_generate" value is skipped,
links become ``[str(from_node), from_slot]``, muted nodes (mode 2) vanish, bypassed ones (mode 4) pass their matching
input through, frontend-only nodes (Note, MarkdownNote, Reroute, PrimitiveNode) are dropped with Reroutes
followed to their source, and subgraph instances are inlined first (see :mod:`.ui_graph`).

:func:`infer_params` exposes the parameters of a plain workflow from well-known nodes and from node titles:

- a node titled ``param:<name>`` or ``$<name>`` exposes its first widget (non-link) input as parameter ``<name>``;
  titles win over the rules below;
- CLIPTextEncode: titled with "negative", or feeding a sampler's ``negative`` input → ``negative_prompt``; the first
  other one → ``prompt``;
- the first KSampler / KSamplerAdvanced → ``steps``, ``seed`` (``noise_seed``), ``cfg``, ``denoise``;
- the first Empty…LatentImage → ``width``, ``height``;
- the first LoadImage → ``input_image``.

Defaults are the workflow's own values, so a user's workflow builds unchanged when no value is given; only
``input_image`` has none, as a stale example picture would silently stand in for the one meant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ....runtime.errors import InvalidRequestError
from .schema import BACKEND, SEED_MAX, ParamSpec, ParamTarget, ParamType, is_link, node_title
from .ui_graph import (
    FRONTEND_ONLY_TYPES,
    MODE_BYPASSED,
    MODE_MUTED,
    OVERRIDES,
    flatten,
    is_active,
    is_ui_workflow,
    parse_links,
)

#: Values of the hidden widget ComfyUI's frontend adds after ``seed``/``noise_seed``.
CONTROL_VALUES = frozenset({"fixed", "randomize", "increment", "decrement"})
SEED_NAMES = frozenset({"seed", "noise_seed"})
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
SAMPLER_TYPES = ("KSampler", "KSamplerAdvanced")
_TITLE_PARAM = re.compile(r"^\s*(?:param:\s*|\$)([A-Za-z_][A-Za-z0-9_]*)\s*$")


def is_api_workflow(data: Any) -> bool:
    """True for a non-empty API-format graph: every value a node with a ``class_type``."""
    return (
        isinstance(data, Mapping)
        and bool(data)
        and all(isinstance(n, Mapping) and isinstance(n.get("class_type"), str) for n in data.values())
    )


def _spec_parts(spec: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(spec, (list, tuple)) and spec:
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
        return spec[0], dict(opts)
    return spec, {}


def allowed_values(spec: Any) -> list[Any] | None:
    """A combo input's allowed values (old ``[[...]]`` and new ``["COMBO", {"options": [...]}]`` styles), else None."""
    kind, opts = _spec_parts(spec)
    if isinstance(kind, list):
        return kind
    if kind == "COMBO" and isinstance(opts.get("options"), list):
        return opts["options"]
    return None


def _is_widget(spec: Any) -> bool:
    kind, opts = _spec_parts(spec)
    if opts.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in WIDGET_TYPES


def input_specs(info: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A node type's (input name, spec) pairs in widget order: ``input_order`` required then optional."""
    inputs = info.get("input") or {}
    order = info.get("input_order") or {}
    pairs: list[tuple[str, Any]] = []
    for group in ("required", "optional"):
        specs = inputs.get(group) or {}
        listed = order.get(group)
        names = listed if isinstance(listed, list) else list(specs)
        pairs.extend((name, specs[name]) for name in names if name in specs)
    return pairs


class _Graph:
    """The UI graph with link resolution through Reroutes, bypassed and muted nodes."""

    def __init__(self, ui_workflow: Mapping[str, Any]) -> None:
        self.nodes: dict[str, Mapping[str, Any]] = {
            str(n["id"]): n for n in ui_workflow.get("nodes") or [] if isinstance(n, Mapping) and "id" in n
        }
        self.links = {k: (v[0], v[1], v[4]) for k, v in parse_links(ui_workflow.get("links")).items()}

    def source(self, link_id: Any, seen: frozenset[str] = frozenset()) -> list[Any] | None:
        """The API link ``[node, slot]`` behind a UI link, or None when it ends at nothing the server runs."""
        if link_id is None or int(link_id) not in self.links:
            return None
        from_node, from_slot, link_type = self.links[int(link_id)]
        node = self.nodes.get(from_node)
        if node is None or from_node in seen:
            return None
        seen = seen | {from_node}
        kind, mode = node.get("type"), node.get("mode", 0)
        inputs = [i for i in node.get("inputs") or [] if isinstance(i, Mapping)]
        if kind == "Reroute":
            return self.source(inputs[0].get("link"), seen) if inputs else None
        if mode == MODE_BYPASSED:
            # As the frontend does: the input in the same slot if its type matches, else the first of that type.
            same = [i for n, i in enumerate(inputs) if n == from_slot and _types_match(i.get("type"), link_type)]
            other = [i for i in inputs if _types_match(i.get("type"), link_type)]
            for candidate in same + other:
                if candidate.get("link") is not None:
                    return self.source(candidate.get("link"), seen)
            return None
        if mode == MODE_MUTED or kind in FRONTEND_ONLY_TYPES:
            return None
        return [from_node, from_slot]


def _types_match(a: Any, b: Any) -> bool:
    return a == b or "*" in (a, b)


def ui_to_api(ui_workflow: Mapping[str, Any], object_info: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a UI-format workflow to the API format, naming widget values with the server's ``/object_info``.

    Raises InvalidRequestError naming every node type the server does not know.
    """
    if not is_ui_workflow(ui_workflow):
        raise InvalidRequestError("not a ComfyUI UI-format workflow (no 'nodes' list)", backend=BACKEND)
    graph = _Graph(flatten(ui_workflow))  # ValueError for a damaged link or a subgraph loop
    active = {nid: n for nid, n in graph.nodes.items() if is_active(n)}
    unknown = sorted({str(n.get("type")) for n in active.values() if n.get("type") not in object_info})
    if unknown:
        raise InvalidRequestError(
            f"the server does not know node type(s) {', '.join(unknown)}",
            backend=BACKEND,
            details={"missing_nodes": unknown},
            hint="Install the custom nodes this workflow uses on the ComfyUI server.",
        )
    api: dict[str, Any] = {}
    for nid, node in active.items():
        info = object_info[node["type"]]
        ui_inputs = {i.get("name"): i for i in node.get("inputs") or [] if isinstance(i, Mapping)}
        widgets = node.get("widgets_values")
        widgets = widgets if isinstance(widgets, (list, Mapping)) else []
        overrides = node.get(OVERRIDES) or {}
        specs = input_specs(info)
        widget_specs = [(name, spec) for name, spec in specs if _is_widget(spec)]
        pos = 0
        inputs: dict[str, Any] = {}
        for name, spec in specs:
            value: Any = None
            has_value = False
            if _is_widget(spec):
                if isinstance(widgets, Mapping):
                    has_value, value = name in widgets, widgets.get(name)
                elif pos < len(widgets):
                    has_value, value = True, widgets[pos]
                    pos += 1
                    if _takes_control_value(name, spec, widgets, pos, widget_specs):
                        pos += 1
            ui_input = ui_inputs.get(name)
            link = graph.source(ui_input.get("link")) if ui_input else None
            if link is not None:
                inputs[name] = link
            elif name in overrides:
                inputs[name] = overrides[name]
            elif has_value:
                inputs[name] = value
        title = node.get("title") or info.get("display_name") or node["type"]
        api[nid] = {"inputs": inputs, "class_type": node["type"], "_meta": {"title": title}}
    return api


def _takes_control_value(
    name: str, spec: Any, widgets: list[Any], pos: int, widget_specs: list[tuple[str, Any]]
) -> bool:
    """Whether the value at ``pos`` is the frontend's "control_after_generate" companion of INT input ``name``."""
    kind, opts = _spec_parts(spec)
    if kind != "INT" or pos >= len(widgets) or widgets[pos] not in CONTROL_VALUES:
        return False
    if opts.get("control_after_generate") or name in SEED_NAMES:
        return True
    # Undeclared: still a control value unless the next widget could itself take that string.
    names = [n for n, _ in widget_specs]
    following = widget_specs[names.index(name) + 1] if name in names and names.index(name) + 1 < len(names) else None
    if following is None:
        return True
    next_kind, _ = _spec_parts(following[1])
    choices = allowed_values(following[1])
    return next_kind != "STRING" and not (choices and widgets[pos] in choices)


# --------------------------------------------------------------------------------------------------------------------
# Parameter inference


def _sort_key(nid: str) -> tuple[int, str]:
    return (int(nid), nid) if nid.isdigit() else (1 << 62, nid)


def _param_for_value(name: str, value: Any, target: ParamTarget, description: str) -> ParamSpec | None:
    kind: ParamType
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int"
    elif isinstance(value, float):
        kind = "float"
    elif isinstance(value, str):
        kind = "str"
    else:
        return None
    return ParamSpec(name=name, type=kind, default=value, description=description, targets=[target])


#: ComfyUI's own loaders whose ``ckpt_name`` is a file of its models/checkpoints folder (a custom node's input of that
#: name may list another folder, so only these become a checkpoint parameter).
CHECKPOINT_LOADERS = (
    "CheckpointLoaderSimple",
    "CheckpointLoader",
    "ImageOnlyCheckpointLoader",
    "ImageOnlyCheckpointLoaderDevice",
    "unCLIPCheckpointLoader",
)
#: Loaders whose outputs 0 and 1 are MODEL and CLIP, between which and their users LoRAs can be chained (the image-only
#: loaders' output 1 is CLIP_VISION).
LORA_READY_LOADERS = ("CheckpointLoaderSimple", "CheckpointLoader", "unCLIPCheckpointLoader")

# name: (type, min, max, description)
_KNOWN: dict[str, tuple[ParamType, float | int | None, float | int | None, str]] = {
    "prompt": ("str", None, None, "What the picture shows."),
    "negative_prompt": ("str", None, None, "What the picture must not show."),
    "steps": ("int", 1, 10000, "Sampling steps: more is slower and finer."),
    "seed": ("int", -1, SEED_MAX, "Same seed, same picture; -1 picks one at random."),
    "cfg": ("float", 0.0, 100.0, "How closely the picture follows the prompt."),
    "denoise": ("float", 0.0, 1.0, "How much of the input picture is repainted (1 = all of it)."),
    "width": ("int", 16, 16384, "Picture width in pixels."),
    "height": ("int", 16, 16384, "Picture height in pixels."),
    "input_image": ("image", None, None, "The input picture: a file name in the server's input folder."),
}


def _known_param(name: str, value: Any, target: ParamTarget) -> ParamSpec | None:
    kind, lo, hi, description = _KNOWN[name]
    if kind == "image":
        return ParamSpec(name=name, type="image", description=description, targets=[target])
    if kind == "int" and (not isinstance(value, int) or isinstance(value, bool)):
        return None
    if kind == "float" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        return None
    if kind == "str" and not isinstance(value, str):
        return None
    if kind in ("int", "float") and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        lo, hi = None, None  # the workflow's own value must stay valid
    default = float(value) if kind == "float" else value
    return ParamSpec(name=name, type=kind, default=default, min=lo, max=hi, description=description, targets=[target])


def infer_params(workflow: Mapping[str, Mapping[str, Any]]) -> list[ParamSpec]:
    """Parameters for a plain API-format workflow, from node titles first and then well-known nodes."""
    params: dict[str, ParamSpec] = {}
    bound: set[tuple[str, str]] = set()
    ids = sorted(workflow, key=_sort_key)

    def add(name: str, nid: str, input_name: str, spec: ParamSpec | None) -> None:
        if spec is None or name in params or (nid, input_name) in bound:
            return
        params[name] = spec
        bound.add((nid, input_name))

    for nid in ids:
        match = _TITLE_PARAM.match(node_title(workflow[nid]))
        if not match:
            continue
        name = match.group(1)
        widget = next(((k, v) for k, v in (workflow[nid].get("inputs") or {}).items() if not is_link(v)), None)
        if widget is None:
            continue
        target = ParamTarget(node=nid, input=widget[0])
        if name in _KNOWN:
            spec = _known_param(name, widget[1], target)
        else:
            spec = _param_for_value(name, widget[1], target, f"From node {nid} ({node_title(workflow[nid])}).")
        add(name, nid, widget[0], spec)

    def literal(nid: str, input_name: str) -> tuple[bool, Any]:
        value = (workflow[nid].get("inputs") or {}).get(input_name)
        return (input_name in (workflow[nid].get("inputs") or {}) and not is_link(value)), value

    def bind(name: str, nid: str, input_name: str) -> None:
        ok, value = literal(nid, input_name)
        if ok:
            add(name, nid, input_name, _known_param(name, value, ParamTarget(node=nid, input=input_name)))

    negative_sources = {
        str(v[0])
        for nid in ids
        if workflow[nid].get("class_type") in SAMPLER_TYPES
        for k, v in (workflow[nid].get("inputs") or {}).items()
        if k == "negative" and is_link(v)
    }

    def free(class_types: tuple[str, ...], input_name: str) -> list[str]:
        """Nodes of these types whose input is still unbound, in id order."""
        return [n for n in ids if workflow[n].get("class_type") in class_types and (n, input_name) not in bound]

    encoders = free(("CLIPTextEncode",), "text")
    negatives = [n for n in encoders if "negative" in node_title(workflow[n]).casefold()]
    negatives += [n for n in encoders if n in negative_sources and n not in negatives]
    for nid in negatives[:1]:
        bind("negative_prompt", nid, "text")
    for nid in [n for n in encoders if n not in negatives][:1]:
        bind("prompt", nid, "text")
    for nid in [n for n in ids if workflow[n].get("class_type") in SAMPLER_TYPES][:1]:
        for name, input_name in (("steps", "steps"), ("seed", "seed"), ("seed", "noise_seed"), ("cfg", "cfg")):
            bind(name, nid, input_name)
        bind("denoise", nid, "denoise")
    latents = [n for n in ids if re.fullmatch(r"Empty\w*LatentImage", str(workflow[n].get("class_type")))]
    for nid in latents[:1]:
        bind("width", nid, "width")
        bind("height", nid, "height")
    for nid in free(("LoadImage",), "image")[:1]:
        bind("input_image", nid, "image")
    for nid in [n for n in free(CHECKPOINT_LOADERS, "ckpt_name") if isinstance(literal(n, "ckpt_name")[1], str)][:1]:
        add("checkpoint", nid, "ckpt_name", _checkpoint_param(nid, workflow[nid]["inputs"]["ckpt_name"]))
        if workflow[nid].get("class_type") in LORA_READY_LOADERS:
            add("loras", nid, "", _loras_param(nid))
    return list(params.values())


def _checkpoint_param(nid: str, saved: str) -> ParamSpec:
    """The workflow's checkpoint as a choice from the server's list, the file it was saved with by default."""
    return ParamSpec(
        name="checkpoint",
        type="model",
        kind="checkpoint",
        saved=saved,
        description=f"The checkpoint (model file) on the server; by default the workflow's own, {saved}.",
        targets=[ParamTarget(node=nid, input="ckpt_name")],
    )


def _loras_param(nid: str) -> ParamSpec:
    """LoRAs chained after the workflow's checkpoint loader, as the built-in templates do."""
    return ParamSpec(
        name="loras",
        type="loras",
        description='LoRAs applied on top of the checkpoint, in order: [{"name": file, "strength": 1.0}, ...].',
        targets=[ParamTarget(node=nid)],
    )


def guess_category(node_types: set[str]) -> str:
    """txt2img / img2img / utility, from the node types a workflow uses."""
    samples = any(t.startswith("KSampler") or t.startswith("SamplerCustom") for t in node_types)
    if samples and "LoadImage" in node_types:
        return "img2img"
    if samples or any(re.fullmatch(r"Empty\w*LatentImage", t) for t in node_types):
        return "txt2img"
    return "utility"
