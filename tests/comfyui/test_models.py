"""Models from the server: lists read from /object_info, defaults from the user's last choice or the server's first
model, clear errors for a missing model, LoRA stacks, inpainting through /upload/mask — against the emulator."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest
from movie_director.clients.comfyui import client as comfy
from movie_director.clients.comfyui.emulator import EmulatorThread
from movie_director.clients.comfyui.models import (
    MAX_NAME,
    MAX_NAMES,
    MODEL_KINDS,
    combo_choices,
    lora_entries,
    model_lists,
    pick_model,
)
from movie_director.clients.comfyui.templates import ParamSpec, TemplateCatalog
from movie_director.runtime import BackendConfig, JobState, Runtime
from movie_director.runtime.errors import InvalidRequestError
from PIL import Image

# --------------------------------------------------------------------------------------------------------------------
# Parsing /object_info


def _loader(node: str, name: str, spec: Any) -> dict[str, Any]:
    return {node: {"input": {"required": {name: spec}}, "output": [], "name": node}}


def test_lists_come_from_the_loader_inputs_in_both_combo_shapes() -> None:
    info: dict[str, Any] = {
        **_loader("CheckpointLoaderSimple", "ckpt_name", [["sd15.safetensors", "sdxl.safetensors"], {"tooltip": "x"}]),
        **_loader("LoraLoader", "lora_name", ["COMBO", {"options": ["ink.safetensors", 7, None]}]),
        **_loader("UpscaleModelLoader", "model_name", [[]]),
    }
    lists = model_lists(info)
    assert lists == {
        "checkpoint": ["sd15.safetensors", "sdxl.safetensors"],
        "lora": ["ink.safetensors"],  # what is not a name is dropped: the server is not trusted
        "upscale_model": [],  # the loader, but no files
    }
    assert "controlnet" not in lists and "vae" not in lists  # no loader node: no list at all


def test_the_real_servers_lists_are_read_in_both_shapes() -> None:
    """Recorded from a real ComfyUI 0.3.75 without model files: V1 loaders send ``[[names], {...}]``, the V3
    UpscaleModelLoader ``["COMBO", {"options": [...]}]``, and VAELoader lists its built-in "pixel_space"."""
    recorded = json.loads((Path(__file__).parent / "data" / "comfyui-0.3.75-loaders.json").read_text())
    info = recorded["object_info"]
    assert info["UpscaleModelLoader"]["input"]["required"]["model_name"][0] == "COMBO"
    lists = model_lists(info)
    assert lists["checkpoint"] == lists["lora"] == lists["upscale_model"] == lists["controlnet"] == []
    assert lists["vae"] == ["pixel_space"]
    assert lists["sampler"][0] == "euler" and "dpmpp_2m" in lists["sampler"] and len(lists["sampler"]) == 42
    assert lists["scheduler"][0] == "simple" and "karras" in lists["scheduler"]
    catalog = TemplateCatalog()
    for template_id in ("txt2img", "img2img", "inpaint", "storyboard-frame"):
        missing = catalog.missing_requirements(template_id, {**object_info_of_emulator(), **info})
        assert missing == ["a checkpoint for checkpoint (none in ComfyUI's models/checkpoints folder)"], template_id
    with pytest.raises(InvalidRequestError) as err:
        catalog.get("txt2img").build({"prompt": "x"}, models=lists)
    assert err.value.message == "The ComfyUI server has no checkpoint at all"
    assert "models/checkpoints" in err.value.hint


def object_info_of_emulator() -> dict[str, Any]:
    """The emulator's node list (the real recording above adds only its loaders and samplers)."""
    from movie_director.clients.comfyui.emulator.nodes import NODES, Folders

    folders = Folders(Path("/nonexistent"), Path("/nonexistent"), Path("/nonexistent"))
    return {name: node.info(folders) for name, node in NODES.items()}


@pytest.mark.parametrize(
    "spec",
    [None, "x", [], ["INT", {"min": 0}], ["COMBO", {"options": "abc"}], ["COMBO", "options"], {"a": 1}, [3]],
)
def test_malformed_specs_are_no_combo(spec: Any) -> None:
    assert combo_choices(spec) is None


def test_a_hostile_list_is_cut_to_size() -> None:
    huge = [f"m{i}.safetensors" for i in range(MAX_NAMES + 50)] + ["x" * (MAX_NAME + 1), ""]
    assert combo_choices([huge]) == huge[:MAX_NAMES]


def test_the_direct_still_stage_takes_the_chosen_checkpoint() -> None:
    from movie_director.clients.director import DirectOptions, _direct_scene, plan_scene
    from movie_director.runtime.jobs import JobOutputs

    assert "checkpoint" not in DirectOptions().image_params and DirectOptions().llm_model == ""
    spec = plan_scene("a scene", DirectOptions(image_params={"checkpoint": "film.safetensors"}, with_video=False))
    shots = spec.stages[0].model_copy(
        update={"outputs": JobOutputs(data={"shot_list": {"shots": [{"description": "a"}]}})}
    )
    (image, *_) = _direct_scene(shots, spec)
    assert image.backend == "comfyui" and image.request["params"]["checkpoint"] == "film.safetensors"


def test_malformed_object_info_gives_no_lists() -> None:
    bad: dict[str, Any] = {
        "CheckpointLoaderSimple": "nope",
        "LoraLoader": {"input": ["x"]},
        "VAELoader": {"input": {"required": "x"}},
        "KSampler": {"input": {"optional": {"sampler_name": [["euler"]]}}},
    }
    assert model_lists(bad) == {"sampler": ["euler"]}


def test_pick_model_prefers_the_given_then_the_last_choice_then_the_first() -> None:
    lists = {"checkpoint": ["a.safetensors", "b.safetensors"]}
    assert pick_model("checkpoint", "b.safetensors", lists) == "b.safetensors"
    assert pick_model("checkpoint", None, lists) == "a.safetensors"
    assert pick_model("checkpoint", "", lists, last_choice="b.safetensors") == "b.safetensors"
    assert pick_model("checkpoint", None, lists, last_choice="gone.safetensors") == "a.safetensors"


def test_a_missing_model_lists_what_the_server_has_and_where_models_go() -> None:
    lists = {"checkpoint": ["a.safetensors", "b.safetensors"], "lora": []}
    with pytest.raises(InvalidRequestError) as info:
        pick_model("checkpoint", "sdxl.safetensors", lists, param="checkpoint", server="http://gpu:8188")
    err = info.value
    assert "checkpoint 'sdxl.safetensors'" in err.message and "a.safetensors, b.safetensors" in err.message
    assert "http://gpu:8188" in err.message and "models/checkpoints" in err.hint
    assert err.details["available"] == ["a.safetensors", "b.safetensors"] and err.details["kind"] == "checkpoint"
    with pytest.raises(InvalidRequestError, match="has no LoRA at all") as info:
        pick_model("lora", "ink.safetensors", lists)
    assert "models/loras" in info.value.hint
    with pytest.raises(InvalidRequestError, match="has no ControlNetLoader node"):
        pick_model("controlnet", "canny.safetensors", lists)


def test_a_server_without_any_checkpoint_says_so_and_where_to_put_one() -> None:
    for lists in ({"checkpoint": []}, {}):
        with pytest.raises(InvalidRequestError) as info:
            pick_model("checkpoint", None, lists, param="checkpoint")
        assert "has no checkpoint" in info.value.message
        assert "models/checkpoints" in info.value.hint


def test_long_lists_are_shortened_in_the_message() -> None:
    names = [f"m{i:02}.safetensors" for i in range(40)]
    with pytest.raises(InvalidRequestError) as info:
        pick_model("checkpoint", "x.safetensors", {"checkpoint": names})
    assert "and 28 more" in info.value.message and len(info.value.details["available"]) == 40


def test_lora_entries_accept_dicts_pairs_and_names_and_name_bad_entries() -> None:
    entries = lora_entries(["a.safetensors", ("b.safetensors", 0.5), {"name": "c.safetensors", "strength_clip": 0.2}])
    assert entries == [
        {"name": "a.safetensors", "strength": 1.0, "strength_clip": 1.0},
        {"name": "b.safetensors", "strength": 0.5, "strength_clip": 0.5},
        {"name": "c.safetensors", "strength": 1.0, "strength_clip": 0.2},
    ]
    with pytest.raises(InvalidRequestError, match=r"loras\[1\] must have a LoRA file name"):
        lora_entries(["a", {"strength": 1}])
    with pytest.raises(InvalidRequestError, match=r"loras\[0\].strength must be a number"):
        lora_entries([("a", "strong")])
    with pytest.raises(InvalidRequestError, match="must be a list"):
        lora_entries("a.safetensors")


# --------------------------------------------------------------------------------------------------------------------
# Templates: model kinds and LoRA stacks

LISTS = {
    "checkpoint": ["base.safetensors", "film.safetensors"],
    "lora": ["ink.safetensors", "grain.safetensors"],
    "sampler": ["euler", "dpmpp_2m"],
    "scheduler": ["simple", "karras"],
}


@pytest.mark.parametrize("template_id", ["txt2img", "img2img", "storyboard-frame", "inpaint"])
def test_lora_stack_is_chained_between_the_checkpoint_and_its_users(template_id: str) -> None:
    template = TemplateCatalog().get(template_id)
    stack = [{"name": "ink.safetensors", "strength": 0.8}, ("grain.safetensors", 0.3, 0.1)]
    given = {"prompt": "x", "input_image": "p.png"} if template.param("input_image") else {"prompt": "x"}
    workflow = template.build({**given, "loras": stack}, models=LISTS)
    loras = sorted((nid for nid, n in workflow.items() if n["class_type"] == "LoraLoader"), key=int)
    assert len(loras) == 2
    first, second = (workflow[n]["inputs"] for n in loras)
    assert (first["model"], first["clip"]) == (["4", 0], ["4", 1])
    assert (second["model"], second["clip"]) == ([loras[0], 0], [loras[0], 1])
    assert (first["lora_name"], first["strength_model"], first["strength_clip"]) == ("ink.safetensors", 0.8, 0.8)
    assert (second["lora_name"], second["strength_model"], second["strength_clip"]) == ("grain.safetensors", 0.3, 0.1)
    users = {nid: n for nid, n in workflow.items() if nid not in loras}
    links = [v for n in users.values() for v in n["inputs"].values() if isinstance(v, list)]
    assert ["4", 0] not in links and ["4", 1] not in links, "every user of MODEL and CLIP goes through the LoRAs"
    assert workflow["3"]["inputs"]["model"] == [loras[1], 0]
    assert workflow["6"]["inputs"]["clip"] == workflow["7"]["inputs"]["clip"] == [loras[1], 1]
    assert workflow["8"]["inputs"]["vae"] == ["4", 2], "the VAE still comes from the checkpoint"
    without = template.build(given, models=LISTS)
    assert not any(n["class_type"] == "LoraLoader" for n in without.values())


def test_a_lora_the_server_lacks_is_named_with_what_it_has() -> None:
    template = TemplateCatalog().get("txt2img")
    with pytest.raises(InvalidRequestError) as info:
        template.build({"loras": ["ink.safetensors", "anime.safetensors"]}, models=LISTS)
    assert (
        "loras 'anime.safetensors'" in info.value.message and "ink.safetensors, grain.safetensors" in info.value.message
    )
    assert "models/loras" in info.value.hint


def test_model_defaults_come_from_the_last_choice_else_the_first() -> None:
    template = TemplateCatalog().get("txt2img")
    _, values = template.build_with_values({}, models=LISTS)
    assert (values["checkpoint"], values["sampler"], values["scheduler"]) == ("base.safetensors", "euler", "simple")
    last = {"checkpoint": "film.safetensors", "sampler": "dpmpp_2m", "scheduler": "gone"}
    workflow, values = template.build_with_values({}, models=LISTS, last_choices=last)
    assert workflow["4"]["inputs"]["ckpt_name"] == "film.safetensors"
    assert (workflow["3"]["inputs"]["sampler_name"], workflow["3"]["inputs"]["scheduler"]) == ("dpmpp_2m", "simple")


def test_a_model_parameter_may_not_name_a_file() -> None:
    with pytest.raises(ValueError, match="must not name a default file"):
        ParamSpec(name="checkpoint", type="model", kind="checkpoint", default="a.safetensors")
    with pytest.raises(ValueError, match="needs a 'kind'"):
        ParamSpec(name="checkpoint", type="model", kind="weights")


# --------------------------------------------------------------------------------------------------------------------
# Against the emulator, through the runtime


@pytest.fixture
def rt(emulator: EmulatorThread, tmp_path: Path) -> Any:
    runtime = Runtime(output_root=tmp_path / "out", cache_dir=tmp_path / "cache")
    runtime.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emulator.url))
    yield runtime
    runtime.stop()


def _image_job(rt: Runtime, **request: Any) -> Any:
    request.setdefault("params", {}).setdefault("steps", 2)
    return rt.submit("comfyui", "image", {"template": "txt2img", **request}).wait(30)


def test_the_models_job_lists_what_the_server_has(rt: Runtime, emulator: EmulatorThread) -> None:
    job = rt.submit("comfyui", "models", {}).wait(20)
    assert job.state is JobState.SUCCEEDED, job.error
    models = job.outputs.data["models"]
    assert models["checkpoint"] == emulator.folders.checkpoints and models["lora"] == emulator.folders.loras
    assert "euler" in models["sampler"] and "normal" in models["scheduler"]
    assert job.outputs.data["server"] == emulator.url and job.outputs.data["choices"] == {}

    emulator.folders.checkpoints.append("added-later.safetensors")
    cached = rt.submit("comfyui", "models", {}).wait(20)
    assert "added-later.safetensors" not in cached.outputs.data["models"]["checkpoint"], "served from the cache"
    fresh = rt.submit("comfyui", "models", {"refresh": True}).wait(20)
    assert "added-later.safetensors" in fresh.outputs.data["models"]["checkpoint"]


def test_first_run_uses_the_servers_first_checkpoint_then_the_users_last_choice(
    rt: Runtime, emulator: EmulatorThread
) -> None:
    first = _image_job(rt, params={"prompt": "a"})
    assert first.state is JobState.SUCCEEDED, first.error
    assert first.request["resolved_params"]["checkpoint"] == emulator.folders.checkpoints[0]
    chosen = emulator.folders.checkpoints[1]
    second = _image_job(rt, params={"prompt": "b", "checkpoint": chosen})
    assert second.state is JobState.SUCCEEDED, second.error
    third = _image_job(rt, params={"prompt": "c"})
    assert third.request["resolved_params"]["checkpoint"] == chosen
    assert emulator.emulator.history[third.id]["prompt"][2]["4"]["inputs"]["ckpt_name"] == chosen
    listed = rt.submit("comfyui", "models", {}).wait(20)
    assert listed.outputs.data["choices"]["checkpoint"] == chosen


def test_an_own_workflow_runs_with_its_saved_checkpoint_or_the_one_picked(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    """A film-maker's "Export (API)" workflow in the templates folder: its checkpoint is a picker like the built-ins'
    (the sidebar draws one for it); nothing picked keeps the file it was saved with, even after another choice."""
    from support import txt2img

    saved, other = emulator.folders.checkpoints[1], emulator.folders.checkpoints[0]
    workflow = txt2img(steps=2)
    workflow["1"]["inputs"]["ckpt_name"] = saved
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "my shot.json").write_text(json.dumps(workflow))
    runtime = Runtime(output_root=tmp_path / "out", cache_dir=tmp_path / "cache")
    config = BackendConfig(name="comfyui", urls=emulator.url, options={"templates_dir": str(folder)})
    runtime.register_backend("comfyui", comfy.factory, config)
    try:
        picked = runtime.submit("comfyui", "image", {"template": "my-shot", "params": {"checkpoint": other}}).wait(30)
        kept = runtime.submit("comfyui", "image", {"template": "my-shot"}).wait(30)
    finally:
        runtime.stop()
    assert picked.state is JobState.SUCCEEDED and kept.state is JobState.SUCCEEDED, (picked.error, kept.error)
    assert emulator.emulator.history[picked.id]["prompt"][2]["1"]["inputs"]["ckpt_name"] == other
    assert emulator.emulator.history[kept.id]["prompt"][2]["1"]["inputs"]["ckpt_name"] == saved


def test_a_missing_checkpoint_fails_listing_the_servers_and_the_folder(rt: Runtime, emulator: EmulatorThread) -> None:
    job = _image_job(rt, params={"prompt": "a", "checkpoint": "sdxl-base.safetensors"})
    assert job.state is JobState.FAILED and job.error is not None and job.error.code == "invalid_request"
    text = job.error.message
    assert "sdxl-base.safetensors" in text and all(name in text for name in emulator.folders.checkpoints)
    assert "models/checkpoints" in text
    assert job.id not in emulator.emulator.history, "refused before anything was sent"


def test_a_checkpoint_added_since_the_list_was_read_is_found(rt: Runtime, emulator: EmulatorThread) -> None:
    assert rt.submit("comfyui", "models", {}).wait(20).state is JobState.SUCCEEDED  # the list is cached now
    emulator.folders.checkpoints.append("new.safetensors")
    job = _image_job(rt, params={"prompt": "a", "checkpoint": "new.safetensors"})
    assert job.state is JobState.SUCCEEDED, job.error


def test_a_workflow_naming_a_missing_model_is_refused_with_the_servers_list(
    rt: Runtime, emulator: EmulatorThread
) -> None:
    from support import txt2img

    workflow = txt2img()
    workflow["1"]["inputs"]["ckpt_name"] = "sdxl-base.safetensors"
    job = rt.submit("comfyui", "image", {"workflow": workflow}).wait(20)
    assert job.state is JobState.FAILED and job.error is not None
    assert "checkpoint sdxl-base.safetensors for CheckpointLoaderSimple.ckpt_name" in job.error.message
    assert emulator.folders.checkpoints[0] in job.error.message and "models/checkpoints" in job.error.message


def test_a_server_with_no_checkpoint_says_so(tmp_path: Path) -> None:
    emu = EmulatorThread(step_delay=0.0, checkpoints=[]).start()
    runtime = Runtime(output_root=tmp_path / "out")
    runtime.register_backend("comfyui", comfy.factory, BackendConfig(name="comfyui", urls=emu.url))
    try:
        job = _image_job(runtime, params={"prompt": "a"})
        assert job.state is JobState.FAILED and job.error is not None
        assert "has no checkpoint" in job.error.message and "models/checkpoints" in job.error.message
    finally:
        runtime.stop()
        emu.stop()


def test_a_lora_stack_runs_on_the_server(rt: Runtime, emulator: EmulatorThread) -> None:
    loras = [{"name": emulator.folders.loras[0], "strength": 0.7}, {"name": emulator.folders.loras[1]}]
    job = _image_job(rt, params={"prompt": "a", "loras": loras})
    assert job.state is JobState.SUCCEEDED, job.error
    prompt = emulator.emulator.history[job.id]["prompt"][2]
    assert [n["inputs"]["lora_name"] for n in prompt.values() if n["class_type"] == "LoraLoader"] == [
        emulator.folders.loras[0],
        emulator.folders.loras[1],
    ]


def _png(path: Path, size: tuple[int, int], color: tuple[int, ...], mode: str = "RGB") -> Path:
    Image.new(mode, size, color).save(path)
    return path


def test_inpainting_uploads_the_mask_with_upload_mask_semantics(
    rt: Runtime, emulator: EmulatorThread, tmp_path: Path
) -> None:
    plate = _png(tmp_path / "plate.png", (64, 48), (10, 200, 10))
    mask = Image.new("RGBA", (64, 48), (0, 0, 0, 255))  # opaque = keep
    mask.paste((0, 0, 0, 0), (0, 0, 32, 48))  # transparent left half = repaint
    mask.save(tmp_path / "mask.png")
    job = rt.submit(
        "comfyui",
        "image",
        {
            "template": "inpaint",
            "params": {"prompt": "a red door", "steps": 2},
            "images": {"input_image": str(plate)},
            "masks": {"input_image": str(tmp_path / "mask.png")},
        },
    ).wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    used = job.request["resolved_params"]["input_image"]
    stored = emulator.folders.input_dir / used
    with Image.open(stored) as img:  # the server kept the picture and took the mask's alpha
        assert img.mode == "RGBA" and img.size == (64, 48)
        assert img.getpixel((50, 10)) == (10, 200, 10, 255) and img.getpixel((5, 10))[3] == 0
    with Image.open(job.outputs.files[0].path) as out:
        assert out.convert("RGB").getpixel((60, 40)) == (10, 200, 10), "outside the mask the picture is kept"
    # The same picture and mask again: nothing is uploaded twice.
    uploads = emulator.emulator.upload_count
    again = rt.submit(
        "comfyui",
        "image",
        {
            "template": "inpaint",
            "params": {"prompt": "a blue door", "steps": 2},
            "images": {"input_image": str(plate)},
            "masks": {"input_image": str(tmp_path / "mask.png")},
        },
    ).wait(30)
    assert again.state is JobState.SUCCEEDED and emulator.emulator.upload_count == uploads


def test_a_mask_of_another_size_fails_the_job_cleanly(rt: Runtime, tmp_path: Path) -> None:
    plate = _png(tmp_path / "plate.png", (64, 48), (10, 200, 10))
    mask = _png(tmp_path / "mask.png", (8, 8), (0, 0, 0, 0), "RGBA")
    job = rt.submit(
        "comfyui",
        "image",
        {"template": "inpaint", "params": {"prompt": "x"}, "images": {"input_image": str(plate)},
         "masks": {"input_image": str(mask)}},
    ).wait(30)  # fmt: skip
    assert job.state is JobState.FAILED and job.error is not None, "a refused mask must fail the job, not hang it"
    assert "could not apply the mask for input_image" in job.error.message and "as large as" in job.error.message


def test_an_image_with_alpha_needs_no_mask_upload(rt: Runtime, emulator: EmulatorThread, tmp_path: Path) -> None:
    img = Image.new("RGBA", (64, 48), (10, 200, 10, 255))
    img.paste((0, 0, 0, 0), (0, 0, 16, 16))
    img.save(tmp_path / "cutout.png")
    job = rt.submit(
        "comfyui",
        "image",
        {
            "template": "inpaint",
            "params": {"prompt": "x", "steps": 2},
            "images": {"input_image": str(tmp_path / "cutout.png")},
        },
    ).wait(30)
    assert job.state is JobState.SUCCEEDED, job.error
    assert emulator.emulator.upload_count == 1


# --------------------------------------------------------------------------------------------------------------------
# No product default names a stand-in's model


def _standin_names() -> set[str]:
    from movie_director.clients.comfyui.emulator import nodes
    from movie_director.clients.llm import standin as llm_standin

    # Wan2GP's stand-in offers Wan2GP's real model types (t2v_1.3B...): the video defaults are another issue's.
    names = {"emulator-v1", "director-llm", llm_standin.MODEL, *nodes.CHECKPOINTS, *nodes.LORAS}
    names |= {Path(n).stem for n in (*nodes.CHECKPOINTS, *nodes.LORAS)}
    return names


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, (list, tuple, set)):
        return [s for v in value for s in _strings(v)]
    return []


def test_no_builtin_template_names_a_standin_model() -> None:
    names = _standin_names()
    for template in TemplateCatalog().list():
        found = [s for s in _strings(template.model_dump()) if any(n in s for n in names)]
        assert not found, (template.id, found)
        model_params = [p for p in template.params if p.type == "model"]
        assert all(p.default is None for p in model_params)
        assert not template.required_models, f"{template.id} names a model file"


ROOT = Path(__file__).resolve().parents[2]


def _standins() -> Any:
    """``scripts/standins.py``, the one list of test peers (never shipped)."""
    spec = importlib.util.spec_from_file_location("md_standins", ROOT / "scripts" / "standins.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code_strings(source: str) -> list[str]:
    """The string literals of a module, docstrings left out (a doctest may show a stand-in's name; code may not)."""
    tree = ast.parse(source)
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_no_shipped_default_names_a_standin_model() -> None:
    """Operators, panels, director options, preferences, runtime and clients (except the stand-ins themselves)."""
    names, standins = _standin_names(), _standins()
    skip_dirs = {"tests", ".venv", "scripts", "docs", "__pycache__", ".git", "build", "dist", "wheels"}
    found, scanned = [], 0
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in skip_dirs and not d.startswith(".")]
        for file in files:
            path = Path(folder) / file
            rel = path.relative_to(ROOT).as_posix()
            if path.suffix not in (".py", ".json", ".toml") or standins.is_standin(rel):
                continue
            scanned += 1
            text = path.read_text(encoding="utf-8")
            values = _code_strings(text) if path.suffix == ".py" else [text]
            found += [f"{rel}: {n}" for n in names if any(n in v for v in values)]
    assert scanned > 50 and not found, found


def test_the_scan_would_catch_a_standin_default(tmp_path: Path) -> None:
    template = copy.deepcopy(TemplateCatalog().get("upscale").model_dump())
    template["workflow"]["1"]["inputs"]["image"] = "emulator-v1.safetensors"
    assert any(any(n in s for n in _standin_names()) for s in _strings(template))
    assert set(MODEL_KINDS) >= {"checkpoint", "lora", "vae", "upscale_model", "controlnet", "sampler", "scheduler"}
