"""Subgraph workflows (the current frontend's ``definitions.subgraphs``): expanded as the frontend expands them, nested
ones too, and the result runs on the emulator with the node set it reports in /object_info."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from comfyui_workflows import _in, subgraph_workflow
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.comfyui.templates import ui_to_api
from movie_director.clients.comfyui.templates.ui_graph import flatten, ui_node_types
from movie_director.runtime import JobState, Runtime


@pytest.fixture(scope="module")
def emulator() -> Any:
    emu = EmulatorThread(step_delay=0.0).start()
    yield emu
    emu.stop()


def _object_info(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/object_info", timeout=10) as resp:
        return json.loads(resp.read())


def test_subgraphs_expand_nested_with_execution_ids_and_promoted_widgets(emulator: EmulatorThread) -> None:
    info = _object_info(emulator.url)
    checkpoint = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0][0]
    ui = subgraph_workflow(checkpoint)
    assert ui_node_types(ui) == {
        "CheckpointLoaderSimple",
        "CLIPTextEncode",
        "EmptyLatentImage",
        "KSampler",
        "VAEDecode",
        "ImageInvert",
        "SaveImage",
    }
    api = ui_to_api(ui, info)
    assert set(api) == {"10:1", "10:2", "10:3", "10:4", "10:5", "10:6:1", "10:6:2", "20"}
    assert api["10:2"]["inputs"] == {"text": "a red fox in the snow", "clip": ["10:1", 1]}
    assert api["10:3"]["inputs"]["text"] == "blurry"
    assert api["10:5"]["inputs"]["seed"] == 4242 and api["10:5"]["inputs"]["steps"] == 3
    assert api["10:6:1"]["inputs"] == {"samples": ["10:5", 0], "vae": ["10:1", 2]}
    assert api["10:6:2"]["inputs"] == {"image": ["10:6:1", 0]}
    assert api["20"]["inputs"]["images"] == ["10:6:2", 0]


def test_an_instance_input_wired_from_outside_wins_over_its_widget(emulator: EmulatorThread) -> None:
    info = _object_info(emulator.url)
    ui = subgraph_workflow("x.safetensors")
    ui["nodes"][0]["inputs"] = [_in("text", "STRING", 2, widget=True)]
    ui["nodes"].append({"id": 30, "type": "PrimitiveNode", "mode": 0, "inputs": [], "widgets_values": ["p"]})
    ui["nodes"].append(
        {"id": 31, "type": "CLIPTextEncode", "mode": 0, "inputs": [_in("clip", "CLIP", None)], "widgets_values": ["z"]}
    )
    ui["links"].append([2, 31, 0, 10, 0, "STRING"])  # an odd wiring, but it must resolve to node 31's output
    api = ui_to_api(ui, info)
    assert api["10:2"]["inputs"]["text"] == ["31", 0]


def test_subgraph_loops_and_damaged_links_are_refused() -> None:
    loop = {"nodes": [{"id": 1, "type": "L", "mode": 0}], "definitions": {"subgraphs": [{"id": "L", "nodes": []}]}}
    loop["definitions"]["subgraphs"][0]["nodes"] = [{"id": 1, "type": "L", "mode": 0}]
    with pytest.raises(ValueError, match="nests deeper"):
        flatten(loop)
    damaged = {"nodes": [], "links": [], "definitions": {"subgraphs": [{"id": "S", "links": [{"id": "x"}]}]}}
    damaged["nodes"] = [{"id": 1, "type": "S", "mode": 0}]
    with pytest.raises(ValueError, match="malformed"):
        flatten(damaged)


def test_a_subgraph_workflow_runs_on_the_emulator(emulator: EmulatorThread, tmp_path: Path) -> None:
    from movie_director.clients.comfyui import client as comfy
    from movie_director.runtime import BackendConfig

    info = _object_info(emulator.url)
    checkpoint = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0][0]
    api = ui_to_api(subgraph_workflow(checkpoint), info)
    rt = Runtime(output_root=tmp_path / "out")
    try:
        rt.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emulator.url))
        job = rt.submit("comfyui", "image", {"workflow": api}).wait(30)
        assert job.state is JobState.SUCCEEDED, job.error
        (out,) = job.outputs.files
        assert out.node == "20" and Path(out.path).is_file()
    finally:
        rt.stop()


def test_instance_inputs_are_matched_by_name_not_position(emulator: EmulatorThread) -> None:
    """As in 0.3.75's own qwen image-edit template: the instance saves only its linked inputs, while the definition's
    input 0 is a widget promoted onto the instance (proxyWidgets ``["-1", name]``)."""
    definition = {
        "id": "sg",
        "inputs": [{"name": "ckpt_name", "type": "COMBO"}, {"name": "images", "type": "IMAGE"}],
        "outputs": [],
        "nodes": [
            {
                "id": 1,
                "type": "CheckpointLoaderSimple",
                "mode": 0,
                "inputs": [_in("ckpt_name", "COMBO", 11, widget=True)],
                "widgets_values": ["definition-default.safetensors"],
            },
            {"id": 2, "type": "ImageInvert", "mode": 0, "inputs": [_in("image", "IMAGE", 12)]},
            {"id": 3, "type": "SaveImage", "mode": 0, "inputs": [_in("images", "IMAGE", 13)], "widgets_values": ["x"]},
        ],
        "links": [
            {"id": 11, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0, "type": "COMBO"},
            {"id": 12, "origin_id": -10, "origin_slot": 1, "target_id": 2, "target_slot": 0, "type": "IMAGE"},
            {"id": 13, "origin_id": 2, "origin_slot": 0, "target_id": 3, "target_slot": 0, "type": "IMAGE"},
        ],
    }
    ui = {
        "nodes": [
            {"id": 4, "type": "EmptyImage", "mode": 0, "inputs": [], "widgets_values": [8, 8, 1, 0]},
            {
                "id": 5,
                "type": "sg",
                "mode": 0,
                "inputs": [_in("images", "IMAGE", 1)],
                "properties": {"proxyWidgets": [["-1", "ckpt_name"]]},
                "widgets_values": ["chosen.safetensors"],
            },
        ],
        "links": [[1, 4, 0, 5, 0, "IMAGE"]],
        "definitions": {"subgraphs": [definition]},
    }
    api = ui_to_api(ui, _object_info(emulator.url))
    assert api["5:1"]["inputs"] == {"ckpt_name": "chosen.safetensors"}
    assert api["5:2"]["inputs"] == {"image": ["4", 0]}
