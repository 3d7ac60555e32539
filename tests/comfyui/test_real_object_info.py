"""Against the node set of a real server: ``data/object_info-0.3.75.json.gz`` is GET /object_info of a stock ComfyUI
0.3.75 (CPU, no model files, torchaudio absent so its two audio modules are missing: 516 node types). The emulator's
nodes must have the real nodes' shape, and UI-format workflows (subgraphs too) must convert into prompts that pass the
structural checks the server makes before it runs anything."""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from comfyui_workflows import subgraph_workflow
from movie_director.clients.comfyui.emulator import NODES, Folders
from movie_director.clients.comfyui.templates import ui_to_api
from movie_director.clients.comfyui.templates.schema import is_link

DATA = Path(__file__).parent / "data" / "object_info-0.3.75.json.gz"
EMULATOR_ONLY = {"KSamplerEmulated", "SlowSteps"}  # SlowSteps was the recording's own custom node


@cache
def real() -> dict[str, Any]:
    with gzip.open(DATA, "rt", encoding="utf-8") as fh:
        info: dict[str, Any] = json.load(fh)
    return info


def _kind(spec: Any) -> Any:
    return "COMBO" if isinstance(spec[0], list) else spec[0]


def test_the_recording_is_a_stock_server() -> None:
    info = real()
    assert len(info) == 516
    assert info["KSampler"]["input_order"]["required"][:3] == ["model", "seed", "steps"]
    assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == []  # no model files there


@pytest.mark.parametrize("name", sorted(set(NODES) - EMULATOR_ONLY))
def test_an_emulated_node_has_the_real_nodes_shape(name: str, tmp_path: Path) -> None:
    emulated = json.loads(json.dumps(NODES[name].info(Folders(tmp_path, tmp_path, tmp_path))))
    original = real()[name]
    for key in ("input_order", "output", "output_is_list", "output_name", "output_node", "display_name"):
        assert emulated.get(key) == original.get(key), key
    for group in ("required", "optional"):
        ours, theirs = emulated["input"].get(group) or {}, original["input"].get(group) or {}
        assert {k: _kind(v) for k, v in ours.items()} == {k: _kind(v) for k, v in theirs.items()}, group


def structural_errors(prompt: dict[str, Any], info: dict[str, Any]) -> list[str]:
    """What the server's validate_inputs refuses before it looks at values: unknown node types, missing required
    inputs, links to nodes or outputs that do not exist, and links whose type does not fit the input."""
    errors = []
    for node_id, node in prompt.items():
        spec = info.get(node["class_type"])
        if spec is None:
            errors.append(f"{node_id}: unknown type {node['class_type']}")
            continue
        required = spec["input"].get("required") or {}
        known = {**required, **(spec["input"].get("optional") or {}), **(spec["input"].get("hidden") or {})}
        for name in required:
            if name not in node["inputs"]:
                errors.append(f"{node_id}: {name} missing")
        for name, value in node["inputs"].items():
            if name not in known:
                errors.append(f"{node_id}: unknown input {name}")
            elif is_link(value):
                source = prompt.get(str(value[0]))
                if source is None:
                    errors.append(f"{node_id}.{name}: link to missing node {value[0]}")
                    continue
                outputs = info[source["class_type"]]["output"]
                wanted = _kind(known[name])
                if value[1] >= len(outputs):
                    errors.append(f"{node_id}.{name}: output {value[1]} of {source['class_type']} does not exist")
                elif wanted not in ("*", outputs[value[1]]) and outputs[value[1]] != "*":
                    errors.append(f"{node_id}.{name}: {outputs[value[1]]} does not fit {wanted}")
            elif _kind(known[name]) in ("MODEL", "CLIP", "VAE", "LATENT", "IMAGE", "CONDITIONING"):
                errors.append(f"{node_id}.{name}: a value where a link is needed")
    return errors


def test_a_subgraph_workflow_converts_into_a_prompt_the_real_server_would_accept() -> None:
    prompt = ui_to_api(subgraph_workflow("model.safetensors"), real())
    assert structural_errors(prompt, real()) == []
    sampler = prompt["10:5"]["inputs"]
    assert (sampler["seed"], sampler["steps"], sampler["sampler_name"], sampler["scheduler"]) == (
        4242,
        3,
        "euler",
        "normal",
    )


def test_the_structural_check_catches_a_wrong_link() -> None:
    prompt = ui_to_api(subgraph_workflow("model.safetensors"), real())
    prompt["10:6:1"]["inputs"]["vae"] = ["10:1", 0]  # MODEL into a VAE input
    assert structural_errors(prompt, real()) == ["10:6:1.vae: MODEL does not fit VAE"]
