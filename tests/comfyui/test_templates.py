"""ComfyUI workflow templates: building with parameters, the catalog, user files in three formats, UI conversion."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from movie_director.clients.comfyui.models import model_lists
from movie_director.clients.comfyui.templates import (
    PRESETS,
    RANDOM_SEED_MAX,
    ParamSpec,
    ParamTarget,
    Template,
    TemplateCatalog,
    infer_params,
    missing_requirements,
    ui_to_api,
)
from movie_director.runtime.errors import InvalidRequestError, NotFoundError
from pydantic import ValidationError

BUILTIN_IDS = {"txt2img", "img2img", "inpaint", "upscale", "invert", "storyboard-frame"}


# --------------------------------------------------------------------------------------------------------------------
# A small /object_info, shaped as ComfyUI 0.3.75 sends it


def _info(
    name: str,
    required: dict[str, list[Any]],
    outputs: tuple[str, ...] = (),
    optional: dict[str, list[Any]] | None = None,
    *,
    with_order: bool = True,
) -> dict[str, Any]:
    inputs: dict[str, Any] = {"required": required}
    if optional:
        inputs["optional"] = optional
    info: dict[str, Any] = {
        "input": inputs,
        "output": list(outputs),
        "output_is_list": [False] * len(outputs),
        "output_name": list(outputs),
        "name": name,
        "display_name": name,
        "description": "",
        "python_module": "nodes",
        "category": "test",
        "output_node": not outputs,
    }
    if with_order:
        info["input_order"] = {k: list(v) for k, v in inputs.items()}
    return info


SEED = ["INT", {"default": 0, "min": 0, "max": 2**64 - 1, "control_after_generate": True}]
RES = ["INT", {"default": 512, "min": 16, "max": 16384, "step": 8}]


def object_info(checkpoints: list[str] | None = None, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    nodes = [
        _info(
            "CheckpointLoaderSimple",
            {"ckpt_name": [checkpoints or ["emulator-v1.safetensors", "emulator-xl.safetensors"]]},
            ("MODEL", "CLIP", "VAE"),
        ),
        _info("CLIPTextEncode", {"text": ["STRING", {"multiline": True}], "clip": ["CLIP"]}, ("CONDITIONING",)),
        _info(
            "EmptyLatentImage",
            {"width": RES, "height": RES, "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}]},
            ("LATENT",),
        ),
        # No input_order here, as on servers older than 0.3.2x: the order of the keys is the widget order.
        _info(
            "KSampler",
            {
                "model": ["MODEL"],
                "seed": SEED,
                "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
                "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0}],
                "sampler_name": [["euler", "euler_ancestral", "dpmpp_2m"]],
                "scheduler": [["normal", "karras", "simple"]],
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT"],
                "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0}],
            },
            ("LATENT",),
            with_order=False,
        ),
        _info("VAEDecode", {"samples": ["LATENT"], "vae": ["VAE"]}, ("IMAGE",)),
        _info("VAEEncode", {"pixels": ["IMAGE"], "vae": ["VAE"]}, ("LATENT",)),
        _info(
            "VAEEncodeForInpaint",
            {"pixels": ["IMAGE"], "vae": ["VAE"], "mask": ["MASK"], "grow_mask_by": ["INT", {"min": 0, "max": 64}]},
            ("LATENT",),
        ),
        _info("SaveImage", {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "ComfyUI"}]}),
        _info("PreviewImage", {"images": ["IMAGE"]}),
        _info("ImageInvert", {"image": ["IMAGE"]}, ("IMAGE",)),
        _info("LoadImage", {"image": [["plate.png", "frame_0001.png"], {"image_upload": True}]}, ("IMAGE", "MASK")),
        _info(
            "ImageScale",
            {
                "image": ["IMAGE"],
                "upscale_method": [["nearest-exact", "bilinear", "area", "bicubic", "lanczos"]],
                "width": RES,
                "height": RES,
                "crop": [["disabled", "center"]],
            },
            ("IMAGE",),
        ),
    ]
    return {n["name"]: n for n in nodes if n["name"] not in drop}


def models() -> dict[str, list[str]]:
    """The test server's model lists, as the client reads them from its /object_info."""
    return model_lists(object_info())


def ui_workflow() -> dict[str, Any]:
    """ComfyUI's default graph as the frontend saves it, plus a Reroute, a Note, a bypassed and a muted node."""

    def node(nid: int, kind: str, inputs: list[tuple[str, str, int | None]], widgets: list[Any], **extra: Any) -> dict:
        return {
            "id": nid,
            "type": kind,
            "pos": [0, 0],
            "size": [300, 100],
            "flags": {},
            "order": nid,
            "mode": extra.pop("mode", 0),
            "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
            "outputs": [],
            "properties": {"Node name for S&R": kind},
            "widgets_values": widgets,
            **extra,
        }

    return {
        "id": "0c7d2a3e-1111-4a4a-9c9c-123456789abc",
        "revision": 0,
        "last_node_id": 20,
        "last_link_id": 12,
        "nodes": [
            node(4, "CheckpointLoaderSimple", [], ["emulator-v1.safetensors"]),
            node(6, "CLIPTextEncode", [("clip", "CLIP", 3)], ["a lighthouse at dusk"], title="Positive"),
            node(7, "CLIPTextEncode", [("clip", "CLIP", 5)], ["blurry"], title="Negative Prompt"),
            node(5, "EmptyLatentImage", [], [640, 384, 1]),
            node(
                3,
                "KSampler",
                [
                    ("model", "MODEL", 1),
                    ("positive", "CONDITIONING", 4),
                    ("negative", "CONDITIONING", 6),
                    ("latent_image", "LATENT", 2),
                ],
                [156680208700286, "randomize", 25, 6.5, "euler", "normal", 1.0],
            ),
            node(20, "Reroute", [("", "*", 8)], [], properties={"showOutputText": False, "horizontal": False}),
            node(8, "VAEDecode", [("samples", "LATENT", 7), ("vae", "VAE", 12)], []),
            node(16, "ImageInvert", [("image", "IMAGE", 9)], [], mode=4),
            node(9, "SaveImage", [("images", "IMAGE", 11)], ["ComfyUI"], title="$prefix"),
            node(17, "PreviewImage", [("images", "IMAGE", 10)], [], mode=2),
            node(15, "Note", [], ["Lower the cfg for softer pictures."]),
        ],
        "links": [
            [1, 4, 0, 3, 0, "MODEL"],
            [2, 5, 0, 3, 3, "LATENT"],
            [3, 4, 1, 6, 0, "CLIP"],
            [4, 6, 0, 3, 1, "CONDITIONING"],
            [5, 4, 1, 7, 0, "CLIP"],
            [6, 7, 0, 3, 2, "CONDITIONING"],
            [7, 3, 0, 8, 0, "LATENT"],
            [8, 4, 2, 20, 0, "*"],
            [12, 20, 0, 8, 1, "VAE"],
            [9, 8, 0, 16, 0, "IMAGE"],
            [11, 16, 0, 9, 0, "IMAGE"],
            [10, 8, 0, 17, 0, "IMAGE"],
        ],
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1, "offset": [0, 0]}},
        "version": 0.4,
    }


def api_workflow() -> dict[str, Any]:
    """An "Export (API)" graph whose positive prompt node comes after the negative one, with default titles."""

    def n(kind: str, title: str | None = None, **inputs: Any) -> dict[str, Any]:
        return {"inputs": inputs, "class_type": kind, "_meta": {"title": title or kind}}

    return {
        "3": n(
            "KSampler",
            seed=5,
            steps=30,
            cfg=8.0,
            sampler_name="euler",
            scheduler="normal",
            denoise=1.0,
            model=["4", 0],
            positive=["7", 0],
            negative=["6", 0],
            latent_image=["5", 0],
        ),
        "4": n("CheckpointLoaderSimple", ckpt_name="emulator-xl.safetensors"),
        "5": n("EmptyLatentImage", width=1024, height=576, batch_size=1),
        "6": n("CLIPTextEncode", "CLIP Text Encode (Prompt)", text="ugly", clip=["4", 1]),
        "7": n("CLIPTextEncode", "CLIP Text Encode (Prompt)", text="a red car", clip=["4", 1]),
        "8": n("VAEDecode", samples=["3", 0], vae=["4", 2]),
        "9": n("SaveImage", "param:filename_prefix", filename_prefix="cars", images=["8", 0]),
    }


@pytest.fixture(scope="module")
def catalog() -> TemplateCatalog:
    return TemplateCatalog()


# --------------------------------------------------------------------------------------------------------------------
# Building


def test_build_with_defaults_puts_values_on_the_right_inputs(catalog: TemplateCatalog) -> None:
    template = catalog.get("txt2img")
    before = json.dumps(template.workflow, sort_keys=True)
    workflow, values = template.build_with_values({"prompt": "a lighthouse"}, models=models())
    assert workflow["6"]["inputs"]["text"] == "a lighthouse"
    assert workflow["7"]["inputs"]["text"] == values["negative_prompt"]
    assert workflow["5"]["inputs"]["width"] == 512 and workflow["5"]["inputs"]["height"] == 512
    sampler = workflow["3"]["inputs"]
    assert (sampler["steps"], sampler["cfg"]) == (20, 7.0)
    assert 0 <= sampler["seed"] <= RANDOM_SEED_MAX and sampler["seed"] == values["seed"]
    assert sampler["positive"] == ["6", 0] and sampler["latent_image"] == ["5", 0]
    assert workflow["9"]["inputs"]["filename_prefix"] == "MovieDirector"
    assert workflow["9"]["_meta"]["title"] == "Save Image"
    assert json.dumps(template.workflow, sort_keys=True) == before, "build must never change the template"
    assert template.outputs == ["9"]
    assert template.required_models == {}, "a built-in template names no model file"
    assert workflow["4"]["inputs"]["ckpt_name"] == values["checkpoint"] == "emulator-v1.safetensors"  # the first
    assert (sampler["sampler_name"], sampler["scheduler"]) == ("euler", "normal")
    assert template.required_nodes == {
        "CheckpointLoaderSimple",
        "CLIPTextEncode",
        "EmptyLatentImage",
        "KSampler",
        "VAEDecode",
        "SaveImage",
    }


def test_build_with_explicit_values(catalog: TemplateCatalog) -> None:
    workflow = catalog.get("txt2img").build(
        {"prompt": "p", "negative_prompt": "n", "width": 1024, "height": 576, "steps": 33, "seed": 42, "cfg": 4},
        models=models(),
    )
    assert workflow["6"]["inputs"]["text"] == "p" and workflow["7"]["inputs"]["text"] == "n"
    assert (workflow["5"]["inputs"]["width"], workflow["5"]["inputs"]["height"]) == (1024, 576)
    sampler = workflow["3"]["inputs"]
    assert (sampler["steps"], sampler["seed"], sampler["cfg"]) == (33, 42, 4.0)
    assert isinstance(sampler["cfg"], float)


def test_img2img_upscale_invert_and_storyboard(catalog: TemplateCatalog) -> None:
    img2img = catalog.get("img2img")
    workflow = img2img.build({"prompt": "x", "input_image": "plate.png"}, models=models())
    assert workflow["10"] == {
        "class_type": "LoadImage",
        "inputs": {"image": "plate.png"},
        "_meta": {"title": "Load Image"},
    }
    assert workflow["11"]["inputs"]["pixels"] == ["10", 0] and workflow["3"]["inputs"]["latent_image"] == ["11", 0]
    assert workflow["3"]["inputs"]["denoise"] == 0.6
    assert (
        img2img.build({"input_image": "plate.png", "denoise": 0.25}, models=models())["3"]["inputs"]["denoise"] == 0.25
    )
    with pytest.raises(InvalidRequestError, match="input_image is required"):
        img2img.build({"prompt": "x"}, models=models())

    upscale = catalog.get("upscale").build(
        {"input_image": "a.png", "width": 2048, "height": 0, "upscale_method": "area"}
    )
    assert upscale["1"]["inputs"]["image"] == "a.png"
    assert upscale["2"]["inputs"] | {"image": None} == {
        "image": None,
        "upscale_method": "area",
        "width": 2048,
        "height": 0,
        "crop": "disabled",
    }
    assert catalog.get("invert").build({"input_image": "b.png"})["2"]["inputs"]["image"] == ["1", 0]

    frame = catalog.get("storyboard-frame")
    assert {"storyboard", "film"} <= set(frame.tags) and frame.category == "txt2img"
    built = frame.build({"prompt": "wide shot"}, models=models())
    assert (built["5"]["inputs"]["width"], built["5"]["inputs"]["height"]) == (768, 432)


def test_presets_apply_under_explicit_values(catalog: TemplateCatalog) -> None:
    template = catalog.get("txt2img")
    _, draft = template.build_with_values({}, preset="draft", models=models())
    _, high = template.build_with_values({}, preset="high", models=models())
    assert (draft["steps"], high["steps"]) == (PRESETS["draft"]["steps"], PRESETS["high"]["steps"]) == (8, 40)
    assert draft["cfg"] == PRESETS["draft"]["cfg"]
    assert template.build({}, preset="standard", models=models())["3"]["inputs"]["steps"] == 20
    assert template.build({"steps": 12}, preset="high", models=models())["3"]["inputs"]["steps"] == 12
    # A template without steps/cfg ignores them; an unknown preset is refused.
    assert catalog.get("invert").build({"input_image": "a.png"}, preset="high")["2"]["class_type"] == "ImageInvert"
    with pytest.raises(InvalidRequestError, match=r"unknown quality preset 'ultra'.*draft, standard, high"):
        template.build({}, preset="ultra")


def test_presets_are_clamped_to_a_templates_range() -> None:
    template = Template(
        id="tiny",
        workflow={
            "1": {"class_type": "KSampler", "inputs": {"steps": 4}},
            "2": {"class_type": "SaveImage", "inputs": {}},
        },
        params=[
            ParamSpec(
                name="steps", type="int", default=4, min=1, max=10, targets=[ParamTarget(node="1", input="steps")]
            )
        ],
    )
    assert template.build({}, preset="high")["1"]["inputs"]["steps"] == 10


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"steps": 500}, "steps must be between 1 and 150, got 500"),
        ({"steps": 0}, "steps must be between 1 and 150, got 0"),
        ({"cfg": 31.5}, "cfg must be between 1.0 and 30.0, got 31.5"),
        ({"width": 4096}, "width must be between 64 and 2048, got 4096"),
        ({"seed": -2}, "seed must be between -1 and 18446744073709551615, got -2"),
        ({"steps": "many"}, "steps must be an integer, got str 'many'"),
        ({"steps": 2.5}, "steps must be an integer, got float 2.5"),
        ({"steps": True}, "steps must be an integer, got bool True"),
        ({"cfg": "high"}, "cfg must be a number, got str 'high'"),
        ({"prompt": 12}, "prompt must be a string, got int 12"),
    ],
)
def test_bad_values_are_refused_naming_the_parameter(catalog: TemplateCatalog, values: dict, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        catalog.get("txt2img").build(values)
    assert info.value.message == message
    assert info.value.backend == "comfyui"
    assert info.value.details["param"] == next(iter(values))


def test_choice_and_image_values_are_checked(catalog: TemplateCatalog) -> None:
    upscale = catalog.get("upscale")
    with pytest.raises(
        InvalidRequestError, match=r"upscale_method must be one of 'nearest-exact', .*'lanczos', got 'magic'"
    ):
        upscale.build({"input_image": "a.png", "upscale_method": "magic"})
    with pytest.raises(InvalidRequestError, match="input_image must be a file name on the server"):
        upscale.build({"input_image": ""})


def test_unknown_parameter_is_refused(catalog: TemplateCatalog) -> None:
    with pytest.raises(InvalidRequestError, match=r"unknown parameter\(s\) sharpness for template 'txt2img'") as info:
        catalog.get("txt2img").build({"prompt": "x", "sharpness": 3})
    assert "steps" in info.value.details["known"]


def test_random_seed_is_resolved_and_reported(catalog: TemplateCatalog) -> None:
    template = catalog.get("txt2img")
    seeds = set()
    for given in (-1, None, -1, None):
        workflow, values = template.build_with_values({"seed": given}, models=models())
        assert 0 <= values["seed"] <= RANDOM_SEED_MAX
        assert workflow["3"]["inputs"]["seed"] == values["seed"]
        seeds.add(values["seed"])
    assert len(seeds) > 1
    assert template.build({"seed": 2**40}, models=models())["3"]["inputs"]["seed"] == 2**40


def test_targets_by_title_and_template_validation() -> None:
    workflow = {
        "a": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}, "_meta": {"title": "Shot Prompt"}},
        "b": {"class_type": "CLIPTextEncode", "inputs": {"text": ""}, "_meta": {"title": "shot prompt "}},
        "c": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}},
    }
    template = Template(
        id="titled",
        workflow=workflow,
        params=[ParamSpec(name="prompt", default="", targets=[ParamTarget(title="Shot Prompt", input="text")])],
    )
    built = template.build({"prompt": "hello"})
    assert built["a"]["inputs"]["text"] == built["b"]["inputs"]["text"] == "hello"
    assert template.outputs == ["c"] and template.name == "Titled"
    with pytest.raises(ValidationError, match="points at node titled 'Nope'"):
        Template(
            id="bad", workflow=workflow, params=[ParamSpec(name="p", targets=[ParamTarget(title="Nope", input="t")])]
        )
    with pytest.raises(ValidationError, match="exactly one of 'node'"):
        ParamTarget(node="1", title="x", input="t")
    with pytest.raises(ValidationError, match="steps must be between 1 and 10, got 50"):
        ParamSpec(name="steps", type="int", default=50, min=1, max=10)


# --------------------------------------------------------------------------------------------------------------------
# Catalog


def test_catalog_lists_filters_and_gets(catalog: TemplateCatalog) -> None:
    assert set(catalog.ids) == BUILTIN_IDS and catalog.problems == []
    assert {t.id for t in catalog.list(category="txt2img")} == {"txt2img", "storyboard-frame"}
    assert [t.id for t in catalog.list(tags=["storyboard", "film"])] == ["storyboard-frame"]
    assert [t.id for t in catalog.list(tags="film", category="img2img")] == []
    assert {t.id for t in catalog.list(backend="comfyui")} == BUILTIN_IDS
    assert catalog.list(backend="forge") == []
    assert all(t.source == "builtin" for t in catalog.list())
    with pytest.raises(NotFoundError, match="no template 'txt3img'; known templates: img2img, inpaint, invert") as info:
        catalog.get("txt3img")
    assert info.value.details["known"] == sorted(BUILTIN_IDS)


def test_builtin_templates_only_use_emulated_nodes(catalog: TemplateCatalog) -> None:
    allowed = {
        "CheckpointLoaderSimple",
        "CLIPTextEncode",
        "EmptyLatentImage",
        "KSampler",
        "VAEDecode",
        "VAEEncode",
        "SaveImage",
        "LoadImage",
        "ImageScale",
        "ImageInvert",
        "EmptyImage",
        "LoraLoader",
        "VAEEncodeForInpaint",
    }
    for template in catalog.list():
        assert template.required_nodes <= allowed, template.id
        assert missing_requirements(template, object_info()) == [], template.id


def test_builtin_templates_pass_the_emulators_validation(catalog: TemplateCatalog, tmp_path: Path) -> None:
    try:
        from movie_director.clients.comfyui.emulator.graph import validate_prompt
        from movie_director.clients.comfyui.emulator.nodes import NODES, Folders
    except ImportError as ex:  # the emulator is built alongside; do not fail this module for it
        pytest.skip(f"emulator unavailable: {ex}")
    from PIL import Image

    folders = Folders(tmp_path / "in", tmp_path / "out", tmp_path / "tmp")
    for d in (folders.input_dir, folders.output_dir, folders.temp_dir):
        d.mkdir()
    Image.new("RGB", (64, 48), "white").save(folders.input_dir / "plate.png")
    values = {"prompt": "a lighthouse", "input_image": "plate.png"}
    for template in catalog.list():
        given = {k: v for k, v in values.items() if template.param(k)}
        served = {name: node.info(folders) for name, node in NODES.items()}
        workflow = template.build(given, preset="draft", models=model_lists(served))
        result = validate_prompt(workflow, NODES, folders)
        assert result.ok, (template.id, result)


def test_user_folder_in_our_format_and_plain_api_format(tmp_path: Path) -> None:
    ours = {
        "id": "noir",
        "name": "Noir still",
        "category": "txt2img",
        "tags": ["film", "noir"],
        "workflow": api_workflow(),
        "params": [
            {"name": "prompt", "type": "str", "default": "", "targets": [{"node": "7", "input": "text"}]},
            {
                "name": "grain",
                "type": "choice",
                "default": "euler",
                "choices": ["euler", "dpmpp_2m"],
                "targets": [{"title": "KSampler", "input": "sampler_name"}],
            },
        ],
    }
    (tmp_path / "noir.json").write_text(json.dumps(ours))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Car Shot.json").write_text(json.dumps(api_workflow()))
    catalog = TemplateCatalog(folders=[tmp_path])
    assert catalog.problems == []

    noir = catalog.get("noir")
    assert noir.source == str(tmp_path / "noir.json") and [t.id for t in catalog.list(tags="noir")] == ["noir"]
    built = noir.build({"prompt": "rain", "grain": "dpmpp_2m"})
    assert built["7"]["inputs"]["text"] == "rain" and built["3"]["inputs"]["sampler_name"] == "dpmpp_2m"

    car = catalog.get("car-shot")
    assert car.category == "txt2img" and car.tags == ["user"] and car.outputs == ["9"]
    params = {p.name: p for p in car.params}
    assert set(params) == {
        "prompt",
        "negative_prompt",
        "steps",
        "seed",
        "cfg",
        "denoise",
        "width",
        "height",
        "filename_prefix",
        "checkpoint",
        "loras",
    }
    assert params["prompt"].targets == [ParamTarget(node="7", input="text")]  # the sampler's positive input
    assert params["negative_prompt"].targets == [ParamTarget(node="6", input="text")]
    assert (params["steps"].default, params["seed"].default, params["width"].default) == (30, 5, 1024)
    built = car.build({"prompt": "a blue car", "steps": 12, "filename_prefix": "shots/car", "width": 768})
    assert built["7"]["inputs"]["text"] == "a blue car" and built["6"]["inputs"]["text"] == "ugly"
    assert (built["3"]["inputs"]["steps"], built["3"]["inputs"]["seed"]) == (12, 5)
    assert built["9"]["inputs"]["filename_prefix"] == "shots/car" and built["5"]["inputs"]["width"] == 768
    assert car.required_models == {"CheckpointLoaderSimple": ["emulator-xl.safetensors"]}


def test_an_own_workflow_keeps_its_checkpoint_unless_another_is_picked() -> None:
    """A plain API workflow's checkpoint loader becomes the checkpoint picker (and the LoRA stack), as the built-in
    templates have them; with nothing picked the workflow keeps the file it was saved with, not the last choice."""
    template = Template(id="car", workflow=api_workflow(), params=infer_params(api_workflow()))
    params = {p.name: p for p in template.params}
    assert (params["checkpoint"].type, params["checkpoint"].kind) == ("model", "checkpoint")
    assert params["checkpoint"].saved == "emulator-xl.safetensors" and params["checkpoint"].default is None
    last = {"checkpoint": "emulator-v1.safetensors"}

    kept, values = template.build_with_values({}, models=models(), last_choices=last)
    assert kept["4"]["inputs"]["ckpt_name"] == "emulator-xl.safetensors" == values["checkpoint"]
    picked, _ = template.build_with_values({"checkpoint": "emulator-v1.safetensors"}, models=models())
    assert picked["4"]["inputs"]["ckpt_name"] == "emulator-v1.safetensors"

    lists = {**models(), "lora": ["ink.safetensors"]}
    styled, _ = template.build_with_values({"loras": [{"name": "ink.safetensors", "strength": 0.5}]}, models=lists)
    lora = next(n for n in styled.values() if n["class_type"] == "LoraLoader")
    assert lora["inputs"]["model"] == ["4", 0] and lora["inputs"]["lora_name"] == "ink.safetensors"
    assert styled["3"]["inputs"]["model"] != ["4", 0], "the sampler now takes the model through the LoRA"

    elsewhere = {**models(), "checkpoint": ["other.safetensors"]}
    with pytest.raises(InvalidRequestError) as err:  # saved with a file this server lacks: said, never swapped
        template.build_with_values({}, models=elsewhere)
    assert "emulator-xl.safetensors" in err.value.message and "other.safetensors" in err.value.message
    assert missing_requirements(template, object_info()) == []  # a per-job choice: the template is usable


def test_only_comfyuis_checkpoint_loaders_become_a_checkpoint_picker() -> None:
    video = api_workflow()
    video["4"]["class_type"] = "ImageOnlyCheckpointLoader"  # outputs MODEL, CLIP_VISION, VAE: no LoRA chain
    params = {p.name: p for p in infer_params(video)}
    assert params["checkpoint"].saved == "emulator-xl.safetensors" and "loras" not in params
    custom = api_workflow()
    custom["4"]["class_type"] = "SomeCustomLoader"  # its ckpt_name may list another folder
    assert not {"checkpoint", "loras"} & {p.name for p in infer_params(custom)}
    titled = api_workflow()
    titled["4"]["_meta"]["title"] = "$model"
    assert "checkpoint" not in {p.name for p in infer_params(titled)}  # the film-maker's own name wins
    with pytest.raises(ValidationError):
        ParamSpec(name="x", type="str", saved="a.safetensors")


def test_title_binding_wins_over_well_known_nodes() -> None:
    workflow = api_workflow()
    workflow["10"] = {"class_type": "LoadImage", "inputs": {"image": "plate.png"}, "_meta": {"title": "$plate"}}
    workflow["11"] = {"class_type": "LoadImage", "inputs": {"image": "x.png"}, "_meta": {"title": "Load Image"}}
    workflow["6"]["_meta"]["title"] = "param:prompt"
    params = {p.name: p for p in infer_params(workflow)}
    assert params["plate"].type == "str" and params["plate"].default == "plate.png"
    assert params["prompt"].targets == [ParamTarget(node="6", input="text")]
    assert params["input_image"].targets == [ParamTarget(node="11", input="image")] and params["input_image"].required
    assert "negative_prompt" not in params  # its only candidate is taken by the title


def test_ui_format_conversion() -> None:
    api = ui_to_api(ui_workflow(), object_info())
    assert set(api) == {"3", "4", "5", "6", "7", "8", "9"}  # no Note, Reroute, bypassed or muted node
    assert api["3"] == {
        "inputs": {
            "model": ["4", 0],
            "seed": 156680208700286,
            "steps": 25,
            "cfg": 6.5,
            "sampler_name": "euler",
            "scheduler": "normal",
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
            "denoise": 1.0,
        },
        "class_type": "KSampler",
        "_meta": {"title": "KSampler"},
    }
    assert api["8"]["inputs"] == {"samples": ["3", 0], "vae": ["4", 2]}  # through the Reroute
    assert api["9"]["inputs"] == {"images": ["8", 0], "filename_prefix": "ComfyUI"}  # through the bypassed node
    assert api["9"]["_meta"]["title"] == "$prefix"
    assert api["5"]["inputs"] == {"width": 640, "height": 384, "batch_size": 1}
    assert api["6"]["inputs"] == {"text": "a lighthouse at dusk", "clip": ["4", 1]}
    assert api["4"]["inputs"] == {"ckpt_name": "emulator-v1.safetensors"}

    with pytest.raises(InvalidRequestError, match=r"does not know node type.*ImageInvert, KSampler") as info:
        ui_to_api(_with_active_invert(), object_info(drop=("KSampler", "ImageInvert")))
    assert info.value.details["missing_nodes"] == ["ImageInvert", "KSampler"]


def test_ui_widget_fed_by_a_primitive_node_keeps_its_value() -> None:
    ui = ui_workflow()
    sampler = next(n for n in ui["nodes"] if n["id"] == 3)
    sampler["inputs"].append({"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 13})
    sampler["widgets_values"][0:2] = [99, "fixed"]
    ui["nodes"].append({"id": 30, "type": "PrimitiveNode", "mode": 0, "inputs": [], "widgets_values": [99, "fixed"]})
    ui["links"].append([13, 30, 0, 3, 4, "INT"])
    api = ui_to_api(ui, object_info())
    assert api["3"]["inputs"]["seed"] == 99 and api["3"]["inputs"]["steps"] == 25
    assert "30" not in api


def _with_active_invert() -> dict[str, Any]:
    ui = ui_workflow()
    for node in ui["nodes"]:
        if node["type"] == "ImageInvert":
            node["mode"] = 0
    return ui


def test_ui_format_user_template_converted_at_load_or_later(tmp_path: Path) -> None:
    (tmp_path / "lighthouse.json").write_text(json.dumps(ui_workflow()))
    loaded = TemplateCatalog(object_info=object_info, folders=[tmp_path]).get("lighthouse")
    assert not loaded.needs_conversion and loaded.category == "txt2img"

    catalog = TemplateCatalog(folders=[tmp_path])
    pending = catalog.get("lighthouse")
    assert pending.needs_conversion and pending.category == "txt2img"
    assert "KSampler" in pending.required_nodes and "Note" not in pending.required_nodes
    assert [t.id for t in catalog.list(category="txt2img") if t.needs_conversion] == ["lighthouse"]
    with pytest.raises(InvalidRequestError, match="UI-format workflow"):
        pending.build({})
    with pytest.raises(InvalidRequestError, match="needs the server's node list"):
        catalog.resolve("lighthouse")

    template = catalog.resolve("lighthouse", object_info())
    assert catalog.get("lighthouse") is template and not template.needs_conversion
    params = {p.name: p for p in template.params}
    assert set(params) == {
        *("prompt", "negative_prompt", "steps", "seed", "cfg", "denoise", "width", "height", "prefix"),
        *("checkpoint", "loras"),  # its checkpoint loader: a picker, the saved file by default
    }
    assert params["negative_prompt"].targets == [ParamTarget(node="7", input="text")]
    built = template.build({"prompt": "a storm", "seed": 7, "prefix": "storm"})
    assert built["6"]["inputs"]["text"] == "a storm" and built["7"]["inputs"]["text"] == "blurry"
    assert built["3"]["inputs"]["seed"] == 7 and built["9"]["inputs"]["filename_prefix"] == "storm"
    assert template.outputs == ["9"]


def test_bad_user_files_are_skipped_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "dangling.json").write_text(
        json.dumps({"workflow": api_workflow(), "params": [{"name": "p", "targets": [{"node": "99", "input": "x"}]}]})
    )
    (tmp_path / "odd.json").write_text(
        json.dumps({"nodes": [{"id": 1, "type": "KSampler"}], "links": [["x", 1, 0, 2, 0]]})
    )
    (tmp_path / "good.json").write_text(json.dumps(api_workflow()))
    with caplog.at_level(logging.WARNING):
        catalog = TemplateCatalog(object_info=object_info(), folders=[tmp_path, tmp_path / "missing"])
    assert "good" in catalog.ids and set(catalog.ids) >= BUILTIN_IDS
    problems = {path.name: message for path, message in catalog.problems}
    assert set(problems) == {"broken.json", "list.json", "dangling.json", "odd.json", "missing"}
    assert "not valid JSON" in problems["broken.json"]
    assert "does not hold a JSON object" in problems["list.json"]
    assert "malformed UI-format workflow" in problems["odd.json"]
    assert "points at node 99" in problems["dangling.json"]
    assert "broken.json" in caplog.text


def test_missing_requirements_names_node_types_and_model_files(tmp_path: Path) -> None:
    catalog = TemplateCatalog()
    info = object_info(checkpoints=["sd15.safetensors"])
    assert catalog.missing_requirements("txt2img", info) == [], "the server's own checkpoint is used"
    no_models = object_info()
    no_models["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = [[]]
    assert catalog.missing_requirements("txt2img", no_models) == [
        "a checkpoint for checkpoint (none in ComfyUI's models/checkpoints folder)"
    ]
    assert catalog.missing_requirements("img2img", object_info(drop=("VAEEncode",))) == ["node type VAEEncode"]
    assert catalog.missing_requirements("invert", info) == []  # the input picture is uploaded per job

    workflow = api_workflow()
    workflow["3"]["class_type"] = "KSamplerAdvanced"
    workflow["3"]["inputs"]["sampler_name"] = "heun"
    catalog.add(Template(id="adv", workflow=workflow))
    assert catalog.missing_requirements("adv", info) == [
        "node type KSamplerAdvanced",
        "checkpoint emulator-xl.safetensors for CheckpointLoaderSimple.ckpt_name (the server has: sd15.safetensors;"
        " checkpoints go in ComfyUI's models/checkpoints folder)",  # one rule with the client's: what it has
    ]
    workflow = api_workflow()
    workflow["3"]["inputs"]["sampler_name"] = "heun"
    assert missing_requirements(Template(id="heun", workflow=workflow), object_info()) == [
        "sampler heun for KSampler.sampler_name (the server has: euler, euler_ancestral, dpmpp_2m)"
    ]

    (tmp_path / "ui.json").write_text(json.dumps(_with_active_invert()))
    catalog.add_folder(tmp_path)
    assert catalog.missing_requirements("ui", object_info(drop=("ImageInvert",))) == ["node type ImageInvert"]
    # Its checkpoint is a picker: the template is usable on a server without the saved file, and a job that picks
    # nothing is told what the server has (the client's rule for every model choice).
    assert catalog.missing_requirements("ui", object_info(checkpoints=["other.ckpt"])) == []
    resolved = catalog.resolve("ui", object_info(checkpoints=["other.ckpt"]))
    with pytest.raises(InvalidRequestError, match=r"emulator-v1\.safetensors.*other\.ckpt"):
        resolved.build_with_values({}, models=model_lists(object_info(checkpoints=["other.ckpt"])))


def test_reload_picks_up_a_template_added_to_a_user_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from movie_director.clients.comfyui.templates import TemplateCatalog

    catalog = TemplateCatalog(folders=[tmp_path])
    assert "mine" not in catalog.ids
    workflow = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "m"}}}  # fmt: skip
    (tmp_path / "mine.json").write_text(json.dumps(workflow))
    catalog.reload()
    assert "mine" in catalog.ids
