"""Prompt validation, cache keys and execution order, mirroring ComfyUI's execution.py.

The validation code follows the real server's step by step (same checks, same order, same Python operations), so
the 400 bodies the emulator returns carry the same ``type``/``message``/``details``/``extra_info`` as 0.3.75's,
including its quirks (every failed output is appended to every failing node's ``dependent_outputs``).
"""

from __future__ import annotations

import hashlib
import json
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .nodes import Folders, NodeDef

SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


class DependencyCycleError(Exception):
    """A prompt whose links loop back on themselves."""


DependencyCycleError.__module__ = "comfy_execution.graph"


def full_type_name(klass: type) -> str:
    """``module.Qualname`` as ComfyUI reports exception types (builtins bare)."""
    module = klass.__module__
    return klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"


def error(kind: str, message: str, details: str = "", extra_info: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info or {}}


@dataclass
class Validation:
    """validate_prompt's 4-tuple: ok, top-level error, outputs to execute, node errors."""

    ok: bool
    error: dict[str, Any] | None = None
    outputs: list[str] = field(default_factory=list)
    node_errors: dict[str, Any] = field(default_factory=dict)


def is_link(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], (int, float))
        and not isinstance(value[1], bool)
    )


def validate_node_input(received_type: Any, input_type: Any) -> bool:
    """Whether an output type may feed an input type (``*`` and comma-separated unions as ComfyUI allows)."""
    if received_type == input_type:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = {t.strip() for t in received_type.split(",")}
    wanted = {t.strip() for t in input_type.split(",")}
    if "*" in received or "*" in wanted:
        return True
    return bool(received & wanted)


def _input_info(class_inputs: Mapping[str, Any], name: str) -> tuple[Any, str, dict[str, Any]]:
    for category in ("required", "optional"):
        section = class_inputs.get(category) or {}
        if name in section:
            spec = section[name]
            extra = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            return spec[0], category, extra
    return None, "", {}


class _Validator:
    def __init__(self, prompt: dict[str, Any], registry: Mapping[str, NodeDef], folders: Folders) -> None:
        self.prompt = prompt
        self.registry = registry
        self.folders = folders
        self.validated: dict[str, tuple[bool, list[dict[str, Any]]]] = {}
        self._stack: set[str] = set()

    def validate_inputs(self, unique_id: str) -> tuple[bool, list[dict[str, Any]]]:
        if unique_id in self.validated:
            return self.validated[unique_id]
        if unique_id in self._stack:
            raise DependencyCycleError(f"Dependency cycle detected at node {unique_id}")
        self._stack.add(unique_id)
        try:
            return self._validate(unique_id)
        finally:
            self._stack.discard(unique_id)

    def _validate(self, unique_id: str) -> tuple[bool, list[dict[str, Any]]]:
        node = self.prompt[unique_id]
        inputs = node["inputs"]
        if not isinstance(inputs, dict):
            raise TypeError(f"'inputs' of node {unique_id} must be an object, not {type(inputs).__name__}")
        nodedef = self.registry[node["class_type"]]
        class_inputs = nodedef.input_types(self.folders)
        names = list(class_inputs.get("required") or {}) + list(class_inputs.get("optional") or {})
        errors: list[dict[str, Any]] = []
        valid = True
        for x in names:
            input_type, category, extra_info = _input_info(class_inputs, x)
            if x not in inputs:
                if category == "required":
                    errors.append(error("required_input_missing", "Required input is missing", x, {"input_name": x}))
                continue
            val = inputs[x]
            info = [input_type, extra_info]
            if isinstance(val, list):
                if len(val) != 2:
                    errors.append(
                        error(
                            "bad_linked_input",
                            "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                            x,
                            {"input_name": x, "input_config": info, "received_value": val},
                        )
                    )
                    continue
                o_id = val[0]
                o_class_type = self.prompt[o_id]["class_type"]
                received_type = self.registry[o_class_type].outputs[val[1]]
                if not validate_node_input(received_type, input_type):
                    errors.append(
                        error(
                            "return_type_mismatch",
                            "Return type mismatch between linked nodes",
                            f"{x}, received_type({received_type}) mismatch input_type({input_type})",
                            {"input_name": x, "input_config": info, "received_type": received_type, "linked_node": val},
                        )
                    )
                    continue
                try:
                    ok, _ = self.validate_inputs(o_id)
                    if ok is False:
                        valid = False
                        continue
                except Exception as ex:
                    valid = False
                    reasons = [
                        error(
                            "exception_during_inner_validation",
                            "Exception when validating inner node",
                            str(ex),
                            {
                                "input_name": x,
                                "input_config": info,
                                "exception_message": str(ex),
                                "exception_type": full_type_name(type(ex)),
                                "traceback": traceback.format_tb(ex.__traceback__)[-3:],
                                "linked_node": val,
                            },
                        )
                    ]
                    self.validated[o_id] = (False, reasons)
                    continue
            else:
                try:
                    if isinstance(val, dict) and "__value__" in val:
                        val = val["__value__"]
                        inputs[x] = val
                    if input_type == "INT":
                        val = int(val)
                    elif input_type == "FLOAT":
                        val = float(val)
                    elif input_type == "STRING":
                        val = str(val)
                    elif input_type == "BOOLEAN":
                        val = bool(val)
                    inputs[x] = val
                except Exception as ex:
                    errors.append(
                        error(
                            "invalid_input_type",
                            f"Failed to convert an input value to a {input_type} value",
                            f"{x}, {val}, {ex}",
                            {
                                "input_name": x,
                                "input_config": info,
                                "received_value": val,
                                "exception_message": str(ex),
                            },
                        )
                    )
                    continue
                if x in nodedef.validate_inputs:
                    continue
                if "min" in extra_info and val < extra_info["min"]:
                    errors.append(
                        error(
                            "value_smaller_than_min",
                            f"Value {val} smaller than min of {extra_info['min']}",
                            x,
                            {"input_name": x, "input_config": info, "received_value": val},
                        )
                    )
                    continue
                if "max" in extra_info and val > extra_info["max"]:
                    errors.append(
                        error(
                            "value_bigger_than_max",
                            f"Value {val} bigger than max of {extra_info['max']}",
                            x,
                            {"input_name": x, "input_config": info, "received_value": val},
                        )
                    )
                    continue
                if isinstance(input_type, list) and val not in input_type:
                    config: Any = info
                    if len(input_type) > 20:
                        listing, config = f"(list of length {len(input_type)})", None
                    else:
                        listing = str(input_type)
                    errors.append(
                        error(
                            "value_not_in_list",
                            "Value not in list",
                            f"{x}: '{val}' not in {listing}",
                            {"input_name": x, "input_config": config, "received_value": val},
                        )
                    )
                    continue
        if nodedef.validate is not None:
            filtered = {x: inputs[x] for x in nodedef.validate_inputs if x in inputs}
            if filtered:
                result = nodedef.validate(self.folders, filtered)
                for x in filtered:
                    if result is not True:
                        details = x if result is False else f"{x} - {result}"
                        errors.append(
                            error(
                                "custom_validation_failed",
                                "Custom validation failed for node",
                                details,
                                {"input_name": x},
                            )
                        )
        ret = (False, errors) if errors or valid is not True else (True, [])
        self.validated[unique_id] = ret
        return ret


def validate_prompt(
    prompt: Any,
    registry: Mapping[str, NodeDef],
    folders: Folders,
    partial_execution_targets: list[str] | None = None,
) -> Validation:
    """Validate an API-format prompt; converts widget values in place (as the real server does)."""
    if not isinstance(prompt, dict):
        return Validation(False, error("invalid_prompt", "Cannot execute because the prompt is not an object.", ""))
    outputs: list[str] = []
    for x, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return Validation(
                False,
                error(
                    "invalid_prompt",
                    "Cannot execute because a node is missing the class_type property.",
                    f"Node ID '#{x}'",
                ),
            )
        class_type = node["class_type"]
        nodedef = registry.get(class_type) if isinstance(class_type, str) else None
        if nodedef is None:
            return Validation(
                False,
                error("invalid_prompt", f"Cannot execute because node {class_type} does not exist.", f"Node ID '#{x}'"),
            )
        if nodedef.output_node and (partial_execution_targets is None or x in partial_execution_targets):
            outputs.append(x)
    if not outputs:
        return Validation(False, error("prompt_no_outputs", "Prompt has no outputs"))

    validator = _Validator(prompt, registry, folders)
    good: list[str] = []
    failures: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    for o in outputs:
        try:
            ok, reasons = validator.validate_inputs(o)
        except Exception as ex:  # RecursionError too, as on the real server
            ok = False
            reasons = [
                error(
                    "exception_during_validation",
                    "Exception when validating node",
                    str(ex),
                    {
                        "exception_type": full_type_name(type(ex)),
                        "traceback": traceback.format_tb(ex.__traceback__)[-3:],
                    },
                )
            ]
            validator.validated[o] = (False, reasons)
        if ok is True:
            good.append(o)
            continue
        failures.append((o, reasons))
        for node_id, (node_ok, node_reasons) in validator.validated.items():
            if node_ok is not True and node_reasons:
                if node_id not in node_errors:
                    node_errors[node_id] = {
                        "errors": node_reasons,
                        "dependent_outputs": [],
                        "class_type": prompt[node_id]["class_type"],
                    }
                node_errors[node_id]["dependent_outputs"].append(o)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in failures for e in errs)
        return Validation(
            False,
            error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details),
            [],
            node_errors,
        )
    return Validation(True, None, good, node_errors)


def _link_sources(prompt: Mapping[str, Any], node_id: str) -> list[str]:
    node = prompt.get(node_id)
    inputs = node.get("inputs") if isinstance(node, dict) else None
    if not isinstance(inputs, dict):
        return []
    return [v[0] for v in inputs.values() if is_link(v) and v[0] in prompt]


def node_signatures(prompt: Mapping[str, Any], registry: Mapping[str, NodeDef], folders: Folders) -> dict[str, str]:
    """Cache keys: class, IS_CHANGED and inputs, with links replaced by their source's key (iterative, cycle-safe)."""
    sigs: dict[str, str] = {}
    for root in prompt:
        stack: list[tuple[str, bool]] = [(root, False)]
        visiting: set[str] = set()
        while stack:
            node_id, expanded = stack.pop()
            if node_id in sigs:
                continue
            if not expanded:
                if node_id in visiting:
                    continue
                visiting.add(node_id)
                stack.append((node_id, True))
                stack.extend((src, False) for src in _link_sources(prompt, node_id) if src not in sigs)
                continue
            sigs[node_id] = _signature(prompt, node_id, sigs, registry, folders)
    return sigs


def _signature(
    prompt: Mapping[str, Any], node_id: str, sigs: Mapping[str, str], registry: Mapping[str, NodeDef], folders: Folders
) -> str:
    node = prompt.get(node_id)
    if not isinstance(node, dict):
        return "invalid:" + repr(node)[:200]
    class_type = node.get("class_type")
    raw_inputs = node.get("inputs")
    inputs: dict[str, Any] = raw_inputs if isinstance(raw_inputs, dict) else {}
    nodedef = registry.get(class_type) if isinstance(class_type, str) else None
    changed: Any = None
    if nodedef is not None and nodedef.is_changed is not None:
        try:
            changed = nodedef.is_changed(folders, inputs)
        except Exception:
            changed = None
    items = []
    for name in sorted(inputs, key=str):
        value = inputs[name]
        if is_link(value) and value[0] in prompt:
            items.append([name, "link", sigs.get(value[0], f"cycle:{value[0]}"), value[1]])
        else:
            items.append([name, value])
    blob = json.dumps([class_type, changed, items], sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class ExecutionList:
    """Which node runs next: ComfyUI's ExecutionList with its ux_friendly_pick_node heuristic."""

    def __init__(self, prompt: Mapping[str, Any], registry: Mapping[str, NodeDef], is_cached: Callable[[str], bool]):
        self.prompt = prompt
        self.registry = registry
        self.is_cached = is_cached
        self.pending: dict[str, None] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, set[Any]]] = {}

    def add_node(self, node_id: str) -> None:
        ids = [node_id]
        links: list[tuple[str, Any, str]] = []
        while ids:
            uid = ids.pop()
            if uid in self.pending:
                continue
            self.pending[uid] = None
            self.block_count[uid] = 0
            self.blocking[uid] = {}
            for value in self.prompt[uid]["inputs"].values():
                if is_link(value) and value[0] in self.prompt:
                    if not self.is_cached(value[0]):
                        ids.append(value[0])
                    links.append((value[0], value[1], uid))
        for src, socket, dst in links:
            if self.is_cached(src):
                continue
            if dst not in self.blocking[src]:
                self.blocking[src][dst] = set()
                self.block_count[dst] += 1
            self.blocking[src][dst].add(socket)

    def is_empty(self) -> bool:
        return not self.pending

    def _is_output(self, node_id: str) -> bool:
        nodedef = self.registry.get(self.prompt[node_id]["class_type"])
        return bool(nodedef and nodedef.output_node)

    def stage(self) -> str:
        available = [n for n in self.pending if self.block_count[n] == 0]
        if not available:
            raise DependencyCycleError("Dependency cycle detected")
        for n in available:
            if self._is_output(n):
                return n
        for n in available:
            if any(self._is_output(b) for b in self.blocking[n]):
                return n
        for n in available:
            if any(self._is_output(b2) for b in self.blocking[n] for b2 in self.blocking.get(b, {})):
                return n
        return available[0]

    def complete(self, node_id: str) -> None:
        self.pending.pop(node_id, None)
        for dst in self.blocking.pop(node_id, {}):
            self.block_count[dst] -= 1
