"""A UI-format workflow with nested subgraphs, as the current ComfyUI frontend saves one (shared by tests)."""

from __future__ import annotations

from typing import Any

OUTER = "6f1c2d3e-0000-4000-8000-00000000aaaa"
INNER = "6f1c2d3e-0000-4000-8000-00000000bbbb"


def _link(link_id: int, origin: int, origin_slot: int, target: int, target_slot: int, kind: str) -> dict[str, Any]:
    """A link inside a definition, object-style as the frontend writes them."""
    return {
        "id": link_id,
        "origin_id": origin,
        "origin_slot": origin_slot,
        "target_id": target,
        "target_slot": target_slot,
        "type": kind,
    }


def _in(name: str, kind: str, link: int | None, widget: bool = False) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "type": kind, "link": link}
    if widget:
        found["widget"] = {"name": name}
    return found


def subgraph_workflow(checkpoint: str) -> dict[str, Any]:
    """Root: instance 10 of OUTER (its inputs promoted as its own widgets, as the frontend's templates do) feeding a
    SaveImage. OUTER: checkpoint, prompts, latent, sampler, and instance 6 of INNER (decode + invert), whose inner
    node ids collide with OUTER's on purpose."""
    inner = {
        "id": INNER,
        "name": "Decode and invert",
        "inputs": [
            {"name": "samples", "type": "LATENT", "linkIds": [1]},
            {"name": "vae", "type": "VAE", "linkIds": [2]},
        ],
        "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [4, 999]}],  # 999: a stale id, as real files have
        "nodes": [
            {"id": 1, "type": "VAEDecode", "mode": 0, "inputs": [_in("samples", "LATENT", 1), _in("vae", "VAE", 2)]},
            {"id": 2, "type": "ImageInvert", "mode": 0, "inputs": [_in("image", "IMAGE", 3)]},
            {"id": 3, "type": "Note", "mode": 0, "inputs": [], "widgets_values": ["frontend only"]},
        ],
        "links": [
            _link(1, -10, 0, 1, 0, "LATENT"),
            _link(2, -10, 1, 1, 1, "VAE"),
            _link(3, 1, 0, 2, 0, "IMAGE"),
            _link(4, 2, 0, -20, 0, "IMAGE"),
        ],
    }
    outer = {
        "id": OUTER,
        "name": "Text to picture",
        "inputs": [
            {"name": "text", "type": "STRING", "linkIds": [10]},
            {"name": "seed", "type": "INT", "linkIds": [11]},
        ],
        "outputs": [{"name": "IMAGE", "type": "IMAGE", "linkIds": [19]}],
        "nodes": [
            {"id": 1, "type": "CheckpointLoaderSimple", "mode": 0, "inputs": [], "widgets_values": [checkpoint]},
            {
                "id": 2,
                "type": "CLIPTextEncode",
                "mode": 0,
                "inputs": [_in("clip", "CLIP", 12), _in("text", "STRING", 10, widget=True)],
                "widgets_values": ["the definition's default prompt"],
            },
            {
                "id": 3,
                "type": "CLIPTextEncode",
                "title": "Negative",
                "mode": 0,
                "inputs": [_in("clip", "CLIP", 13)],
                "widgets_values": ["blurry"],
            },
            {"id": 4, "type": "EmptyLatentImage", "mode": 0, "inputs": [], "widgets_values": [64, 48, 1]},
            {
                "id": 5,
                "type": "KSampler",
                "mode": 0,
                "inputs": [
                    _in("model", "MODEL", 14),
                    _in("positive", "CONDITIONING", 15),
                    _in("negative", "CONDITIONING", 16),
                    _in("latent_image", "LATENT", 17),
                    _in("seed", "INT", 11, widget=True),
                ],
                "widgets_values": [0, "fixed", 3, 7.0, "euler", "normal", 1.0],
            },
            {
                "id": 6,
                "type": INNER,
                "mode": 0,
                "inputs": [_in("samples", "LATENT", 18), _in("vae", "VAE", 20)],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [19]}],
            },
        ],
        "links": [
            _link(10, -10, 0, 2, 1, "STRING"),
            _link(11, -10, 1, 5, 4, "INT"),
            _link(12, 1, 1, 2, 0, "CLIP"),
            _link(13, 1, 1, 3, 0, "CLIP"),
            _link(14, 1, 0, 5, 0, "MODEL"),
            _link(15, 2, 0, 5, 1, "CONDITIONING"),
            _link(16, 3, 0, 5, 2, "CONDITIONING"),
            _link(17, 4, 0, 5, 3, "LATENT"),
            _link(18, 5, 0, 6, 0, "LATENT"),
            _link(20, 1, 2, 6, 1, "VAE"),
            _link(19, 6, 0, -20, 0, "IMAGE"),
        ],
    }
    return {
        "nodes": [
            {
                "id": 10,
                "type": OUTER,
                "mode": 0,
                "inputs": [],
                "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}],
                "properties": {"proxyWidgets": [["-1", "text"], ["-1", "seed"]]},
                "widgets_values": ["a red fox in the snow", 4242],
            },
            {"id": 20, "type": "SaveImage", "mode": 0, "inputs": [_in("images", "IMAGE", 1)], "widgets_values": ["sg"]},
        ],
        "links": [[1, 10, 0, 20, 0, "IMAGE"]],
        "definitions": {"subgraphs": [outer, inner]},
        "version": 0.4,
    }
