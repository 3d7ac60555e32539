"""Workflow templates: an API-format ComfyUI graph plus the few parameters a film-maker may change.

Plain Python: never imports bpy. A template keeps the graph as ComfyUI's API format
(``{node_id: {"class_type", "inputs", "_meta": {"title"}}}``); each parameter names where its value goes, by node id or
by node title, so a template written by hand and one inferred from a user's workflow are used the same way.
:meth:`Template.build` always returns a fresh copy: the stored graph is never mutated, so one template can serve many
jobs at once.
"""

from __future__ import annotations

import copy
import math
import secrets
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ....runtime.errors import InvalidRequestError
from ..models import MODEL_KINDS, lora_entries, pick_model
from .ui_graph import ui_node_types

BACKEND = "comfyui"
#: KSampler's own seed range; a seed of -1 (or None) asks for a random one in [0, RANDOM_SEED_MAX].
SEED_MAX = 2**64 - 1
RANDOM_SEED_MAX = 2**32 - 1
#: Quality presets: applied under explicit values, and only to parameters a template has (clamped to their range).
PRESETS: dict[str, dict[str, Any]] = {
    "draft": {"steps": 8, "cfg": 5.0},
    "standard": {"steps": 20, "cfg": 7.0},
    "high": {"steps": 40, "cfg": 7.5},
}
#: File name endings that mark an input value as a model file the server must have.
MODEL_EXTENSIONS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".onnx", ".pkl")
#: Output node types beyond the ``Save*``/``Preview*`` naming convention.
OUTPUT_NODE_TYPES = frozenset({"VHS_VideoCombine"})

ParamType = Literal["str", "int", "float", "bool", "image", "choice", "model", "loras"]
_TYPE_WORDS = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "image": "a file name on the server",
    "choice": "one of the choices",
    "model": "a model file name on the server",
    "loras": "a list of LoRAs",
}
#: Ids of the LoraLoader nodes a LoRA stack adds start here, clear of any hand-written template's ids.
LORA_NODE_BASE = 9000


def is_link(value: Any) -> bool:
    """True for an API-format link ``[node_id, output_index]``."""
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def is_model_file(value: Any) -> bool:
    """True when an input value names a model file (by its extension)."""
    return isinstance(value, str) and value.lower().endswith(MODEL_EXTENSIONS)


def is_output_type(class_type: str) -> bool:
    """Whether a node type writes results (SaveImage, PreviewImage, SaveAnimatedWEBP, ...)."""
    return class_type.startswith(("Save", "Preview")) or class_type in OUTPUT_NODE_TYPES


def node_title(node: Mapping[str, Any]) -> str:
    """A node's ``_meta.title``, or its class type when it has none."""
    meta = node.get("_meta")
    title = meta.get("title") if isinstance(meta, Mapping) else None
    return str(title) if title else str(node.get("class_type", ""))


def default_outputs(workflow: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The ids of every output node: where a run's results come from when a template does not say."""
    return [nid for nid, node in workflow.items() if is_output_type(str(node.get("class_type", "")))]


def derive_required_models(workflow: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """``{class_type: [model file, ...]}`` from every input whose value looks like a model file."""
    found: dict[str, list[str]] = {}
    for node in workflow.values():
        for value in (node.get("inputs") or {}).values():
            if is_model_file(value):
                names = found.setdefault(str(node.get("class_type")), [])
                if value not in names:
                    names.append(value)
    return found


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


class ParamTarget(BaseModel):
    """Where a parameter's value goes: an input of the node with this id, or of every node with this title."""

    model_config = ConfigDict(extra="forbid")

    node: str | None = None
    title: str | None = None
    #: The input the value goes to; a LoRA stack's target names the loader node only (its MODEL and CLIP get chained).
    input: str = ""

    @field_validator("node", mode="before")
    @classmethod
    def _node_id_as_str(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _one_way(self) -> ParamTarget:
        if (self.node is None) == (self.title is None):
            raise ValueError("a parameter target needs exactly one of 'node' (a node id) or 'title' (a node title)")
        return self

    def find(self, workflow: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """The ids of the nodes this target points at (title matching ignores case and outer spaces)."""
        if self.node is not None:
            return [self.node] if self.node in workflow else []
        wanted = (self.title or "").strip().casefold()
        return [nid for nid, node in workflow.items() if node_title(node).strip().casefold() == wanted]

    def describe(self) -> str:
        return f"node {self.node}" if self.node is not None else f"node titled {self.title!r}"


class ParamSpec(BaseModel):
    """One parameter: its type, default, limits and the node inputs it sets."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    type: ParamType = "str"
    default: Any = None
    min: int | float | None = None
    max: int | float | None = None
    #: A hint for sliders only; never enforced, as ComfyUI's own server does not enforce it either.
    step: int | float | None = None
    choices: list[Any] | None = None
    #: For ``type: "model"``: which kind of model (see :data:`..models.MODEL_KINDS`); the server's lists supply the
    #: file, so such a parameter has no default.
    kind: str | None = None
    #: For ``type: "model"`` in a film-maker's own workflow: the file it was saved with, used when none is chosen
    #: (checked against the server's list as a choice is). Never in a built-in template: those name no file.
    saved: str | None = None
    description: str = ""
    targets: list[ParamTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ParamSpec:
        if self.type == "choice" and not self.choices:
            raise ValueError(f"choice parameter {self.name!r} needs a non-empty 'choices' list")
        if self.type == "model":
            if self.kind not in MODEL_KINDS:
                raise ValueError(f"model parameter {self.name!r} needs a 'kind': one of {', '.join(MODEL_KINDS)}")
            if self.default is not None:
                raise ValueError(
                    f"model parameter {self.name!r} must not name a default file: the server's list supplies it"
                )
        elif self.saved is not None:
            raise ValueError(f"parameter {self.name!r} names a saved file but is not a model parameter")
        if self.type != "loras" and any(not t.input for t in self.targets):
            raise ValueError(f"parameter {self.name!r} has a target without an 'input'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"parameter {self.name!r} has min {self.min} above max {self.max}")
        if self.default is not None and not (self.is_seed and self.default == -1):
            try:
                self.default = self.check(self.default)
            except InvalidRequestError as ex:
                raise ValueError(f"bad default: {ex.message}") from ex
        return self

    @property
    def is_seed(self) -> bool:
        """Seeds accept -1/None as "pick one at random"."""
        return self.type == "int" and (self.name == "seed" or self.name.endswith("_seed"))

    @property
    def required(self) -> bool:
        """A parameter without a default (an input picture, typically) must be given on every build."""
        return self.default is None and not self.is_seed and self.type not in ("model", "loras")

    def _range_error(self, value: Any) -> InvalidRequestError:
        if self.min is not None and self.max is not None:
            text = f"{self.name} must be between {self.min} and {self.max}, got {value}"
        elif self.min is not None:
            text = f"{self.name} must be at least {self.min}, got {value}"
        else:
            text = f"{self.name} must be at most {self.max}, got {value}"
        return InvalidRequestError(
            text, backend=BACKEND, details={"param": self.name, "min": self.min, "max": self.max, "value": value}
        )

    def _type_error(self, value: Any) -> InvalidRequestError:
        return InvalidRequestError(
            f"{self.name} must be {_TYPE_WORDS[self.type]}, got {type(value).__name__} {_fmt(value)}",
            backend=BACKEND,
            details={"param": self.name, "expected": self.type, "value": repr(value)},
        )

    def check(self, value: Any) -> Any:
        """``value`` converted to this parameter's type, or InvalidRequestError saying what is allowed."""
        kind = self.type
        if kind == "int":
            if isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise self._type_error(value)
        elif kind == "float":
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise self._type_error(value)
            value = float(value)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise self._type_error(value)
        elif kind == "str":
            if not isinstance(value, str):
                raise self._type_error(value)
        elif kind in ("image", "model") and (not isinstance(value, str) or not value.strip()):
            raise self._type_error(value)
        elif kind == "loras":
            return lora_entries(value, param=self.name)
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(_fmt(c) for c in self.choices)
            raise InvalidRequestError(
                f"{self.name} must be one of {allowed}, got {_fmt(value)}",
                backend=BACKEND,
                details={"param": self.name, "choices": list(self.choices), "value": value},
            )
        too_low = self.min is not None and value < self.min
        too_high = self.max is not None and value > self.max
        if kind in ("int", "float") and (too_low or too_high):
            raise self._range_error(value)
        return value

    def clamp(self, value: Any) -> Any:
        """A preset value fitted into this parameter's range (presets are advice, not user input)."""
        if self.type not in ("int", "float") or not isinstance(value, (int, float)):
            return value
        if self.min is not None:
            value = max(value, self.min)
        if self.max is not None:
            value = min(value, self.max)
        return round(value) if self.type == "int" else float(value)


class Template(BaseModel):
    """A ComfyUI workflow with named parameters; see :meth:`build`."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    name: str = ""
    description: str = ""
    category: str = "utility"
    tags: list[str] = Field(default_factory=list)
    backend: str = BACKEND
    workflow: dict[str, dict[str, Any]] = Field(default_factory=dict)
    params: list[ParamSpec] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    required_models: dict[str, list[str]] = Field(default_factory=dict)
    #: A UI-format ("Save") workflow still waiting for the server's /object_info to become ``workflow``.
    ui_workflow: dict[str, Any] | None = None
    #: Where the template came from: "builtin" or a file path; shown next to catalog problems.
    source: str = ""

    @field_validator("workflow", mode="before")
    @classmethod
    def _check_workflow(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        for nid, node in value.items():
            if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
                raise ValueError(f"workflow node {nid!r} is not an API-format node (no 'class_type')")
            if not isinstance(node.get("inputs", {}), Mapping):
                raise ValueError(f"workflow node {nid!r} has 'inputs' that are not an object")
        return {str(k): {**v, "inputs": dict(v.get("inputs") or {})} for k, v in value.items()}

    @model_validator(mode="after")
    def _derive_and_check(self) -> Template:
        if not self.name:
            self.name = self.id.replace("-", " ").replace("_", " ").title()
        names = [p.name for p in self.params]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"template {self.id!r} declares parameter(s) {', '.join(dupes)} more than once")
        if self.needs_conversion:
            return self
        if not self.workflow:
            raise ValueError(f"template {self.id!r} has an empty workflow")
        for param in self.params:
            for target in param.targets:
                if not target.find(self.workflow):
                    raise ValueError(
                        f"parameter {param.name!r} of template {self.id!r} points at {target.describe()}, "
                        "which the workflow does not have"
                    )
        if not self.outputs:
            self.outputs = default_outputs(self.workflow)
        unknown = [o for o in self.outputs if o not in self.workflow]
        if unknown:
            raise ValueError(f"template {self.id!r} lists output node(s) {', '.join(unknown)} the workflow lacks")
        if not self.required_models:
            self.required_models = derive_required_models(self.workflow)
        return self

    @property
    def needs_conversion(self) -> bool:
        """True while the template is a UI-format workflow that needs the server's /object_info to be usable."""
        return self.ui_workflow is not None and not self.workflow

    @property
    def required_nodes(self) -> set[str]:
        """Every node type the server must know."""
        if self.needs_conversion:
            return ui_node_types(self.ui_workflow or {})
        return {str(node["class_type"]) for node in self.workflow.values()}

    def param(self, name: str) -> ParamSpec | None:
        """The parameter called ``name``, if the template has it."""
        return next((p for p in self.params if p.name == name), None)

    def build(
        self,
        values: Mapping[str, Any] | None = None,
        preset: str | None = None,
        *,
        models: Mapping[str, list[str]] | None = None,
        last_choices: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A new API-format workflow with ``values`` (over ``preset``, over defaults) applied; see build_with_values."""
        return self.build_with_values(values, preset, models=models, last_choices=last_choices)[0]

    def build_with_values(
        self,
        values: Mapping[str, Any] | None = None,
        preset: str | None = None,
        *,
        models: Mapping[str, list[str]] | None = None,
        last_choices: Mapping[str, str] | None = None,
        server: str = "",
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The workflow and every parameter's final value, so a random seed can be reported and reused.

        ``models`` is the server's ``{kind: [names]}`` (:func:`..models.model_lists`): model parameters are checked
        against it and, when not given, take ``last_choices[kind]`` if the server still has it, else its first model.
        Raises InvalidRequestError for an unknown parameter or preset, a wrong type, a value out of range, a model the
        server lacks, or a missing required value; the message names the parameter and what it allows.
        """
        if self.needs_conversion:
            raise InvalidRequestError(
                f"template {self.id!r} is a UI-format workflow; convert it with the server's node list first",
                backend=BACKEND,
                details={"template": self.id},
                hint="Connect to the ComfyUI server, then use the catalog's resolve().",
            )
        values = dict(values or {})
        known = {p.name: p for p in self.params}
        unknown = sorted(k for k in values if k not in known)
        if unknown:
            raise InvalidRequestError(
                f"unknown parameter(s) {', '.join(unknown)} for template {self.id!r}; "
                f"it takes: {', '.join(known) or 'nothing'}",
                backend=BACKEND,
                details={"template": self.id, "unknown": unknown, "known": list(known)},
            )
        preset_values: dict[str, Any] = {}
        if preset is not None:
            if preset not in PRESETS:
                raise InvalidRequestError(
                    f"unknown quality preset {preset!r}; use one of {', '.join(PRESETS)}",
                    backend=BACKEND,
                    details={"preset": preset, "known": list(PRESETS)},
                )
            preset_values = {k: known[k].clamp(v) for k, v in PRESETS[preset].items() if k in known}

        resolved: dict[str, Any] = {}
        for param in self.params:
            if values.get(param.name) is not None:
                value = values[param.name]
            elif param.name in preset_values:
                value = preset_values[param.name]
            else:
                value = param.default
            if param.is_seed and (value is None or (isinstance(value, int) and value == -1)):
                top = RANDOM_SEED_MAX if param.max is None else min(RANDOM_SEED_MAX, int(param.max))
                value = secrets.randbelow(top + 1)
            elif param.type in ("model", "loras"):
                value = self._model_value(param, value, models, last_choices or {}, server)
            elif value is not None:
                value = param.check(value)
            else:
                raise InvalidRequestError(
                    f"{param.name} is required for template {self.id!r}"
                    + (" (a file name on the server: upload the picture first)" if param.type == "image" else ""),
                    backend=BACKEND,
                    details={"template": self.id, "param": param.name},
                )
            resolved[param.name] = value

        workflow = copy.deepcopy(self.workflow)
        for param in self.params:
            for target in param.targets:
                for nid in target.find(workflow):
                    if param.type == "loras":
                        _chain_loras(workflow, nid, resolved[param.name])
                    else:
                        workflow[nid].setdefault("inputs", {})[target.input] = copy.deepcopy(resolved[param.name])
        return workflow, resolved

    def _model_value(
        self,
        param: ParamSpec,
        value: Any,
        models: Mapping[str, list[str]] | None,
        last_choices: Mapping[str, str],
        server: str,
    ) -> Any:
        """A model parameter's file (or a LoRA stack) checked against the server's lists when we have them."""
        if param.type == "loras":
            entries = param.check(value) if value is not None else []
            if models is not None:
                for entry in entries:
                    pick_model("lora", entry["name"], models, param=param.name, server=server)
            return entries
        kind = str(param.kind)
        if value in (None, ""):  # nothing chosen: the film-maker's own workflow keeps the file it was saved with
            value = param.saved
        if models is not None:
            return pick_model(kind, value, models, last_choice=last_choices.get(kind), param=param.name, server=server)
        if value is None:
            raise InvalidRequestError(
                f"{param.name} of template {self.id!r} is a {MODEL_KINDS[kind].noun} the server's list supplies; "
                "connect to the server or name the file",
                backend=BACKEND,
                details={"template": self.id, "param": param.name, "kind": kind},
            )
        return param.check(value)


def _chain_loras(workflow: dict[str, Any], loader: str, entries: list[dict[str, Any]]) -> None:
    """Insert one LoraLoader per entry between ``loader`` (its MODEL and CLIP outputs) and every node that used them."""
    if not entries:
        return
    numeric = [int(n) for n in workflow if n.isdigit()]
    next_id = max([LORA_NODE_BASE - 1, *numeric]) + 1
    added: list[str] = []
    source = loader
    for i, entry in enumerate(entries):
        nid = str(next_id + i)
        workflow[nid] = {
            "class_type": "LoraLoader",
            "inputs": {
                "model": [source, 0],
                "clip": [source, 1],
                "lora_name": entry["name"],
                "strength_model": entry["strength"],
                "strength_clip": entry["strength_clip"],
            },
            "_meta": {"title": f"LoRA {i + 1}"},
        }
        added.append(nid)
        source = nid
    for nid, node in workflow.items():
        if nid in added:
            continue
        for name, value in (node.get("inputs") or {}).items():
            if is_link(value) and str(value[0]) == loader and value[1] in (0, 1):
                node["inputs"][name] = [source, value[1]]
